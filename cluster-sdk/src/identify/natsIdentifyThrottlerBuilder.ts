import type { WebSocketManager } from '@discordjs/ws';
import type { NatsConnection } from '@nats-io/transport-node';
import { NatsIdentifyThrottler } from './NatsIdentifyThrottler.js';
import type { NatsIdentifyThrottlerOptions } from './options.js';

/** Options of {@link natsIdentifyThrottlerBuilder}: shard count and concurrency default to the manager's. */
export type NatsIdentifyThrottlerBuilderOptions = Omit<
  NatsIdentifyThrottlerOptions,
  'shardCount' | 'maxConcurrency'
> &
  Partial<Pick<NatsIdentifyThrottlerOptions, 'shardCount' | 'maxConcurrency'>>;

/** A `buildIdentifyThrottler` for @discordjs/ws that builds one {@link NatsIdentifyThrottler} per manager. */
export type NatsIdentifyThrottlerBuilder = (manager: WebSocketManager) => Promise<NatsIdentifyThrottler>;

/**
 * Makes a `buildIdentifyThrottler` option for `WebSocketManager`. Per manager it creates one
 * {@link NatsIdentifyThrottler} with the manager's shard count and
 * `session_start_limit.max_concurrency`, stores a fresh `/gateway/bot` budget in KV, and lets
 * the throttler refetch it when the budget blocks past its reset time.
 *
 * The throttler is memoised per manager: @discordjs/ws may call the builder concurrently for
 * shards that wait at the same time. Close it with `await (await builder(manager)).close()`.
 *
 * @example
 * ```ts
 * const manager = new WebSocketManager({
 *   intents, rest, ...store.managerOptions(),
 *   buildIdentifyThrottler: natsIdentifyThrottlerBuilder(nc, { bot: 'my-bot' }),
 * });
 * ```
 */
export function natsIdentifyThrottlerBuilder(
  nc: NatsConnection,
  options: NatsIdentifyThrottlerBuilderOptions = {},
): NatsIdentifyThrottlerBuilder {
  const built = new WeakMap<WebSocketManager, Promise<NatsIdentifyThrottler>>();
  return (manager) => {
    let throttler = built.get(manager);
    if (!throttler) {
      throttler = build(nc, options, manager);
      built.set(manager, throttler);
      // A failed build may be retried by the next shard.
      throttler.catch(() => built.delete(manager));
    }
    return throttler;
  };
}

async function build(
  nc: NatsConnection,
  options: NatsIdentifyThrottlerBuilderOptions,
  manager: WebSocketManager,
): Promise<NatsIdentifyThrottler> {
  // Fresh, not the manager's cache (kept for up to reset_after): a stale reset time could pass
  // for a new daily period and restore starts already spent. Taking the time before the request
  // errs towards an earlier reset, which mergeBudget treats as the same period (the safe side).
  const observedAt = Date.now();
  const info = await manager.fetchGatewayInformation(true);
  const throttler = await NatsIdentifyThrottler.create(nc, {
    sessionStartLimitSource: async () => (await manager.fetchGatewayInformation(true)).session_start_limit,
    ...options,
    shardCount: options.shardCount ?? (await manager.getShardCount()),
    maxConcurrency: options.maxConcurrency ?? info.session_start_limit.max_concurrency,
  });
  try {
    await throttler.updateBudget(info.session_start_limit, observedAt);
  } catch (error) {
    await throttler.close();
    throw error;
  }
  return throttler;
}
