import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { budgetBucket, identifyBucket, identifyWaitersBucket } from 'discluster-protocol/kv';
import { openBucket, requireTtlAtLeast } from 'discluster-runtime';
import type { ResolvedNatsIdentifyThrottlerOptions } from './options.js';

/** The three buckets a {@link NatsIdentifyThrottler} works with. */
export interface IdentifyBuckets {
  /** One slot per rate-limit key; TTL = window + margin. */
  readonly slots: KV;
  /** Waiting shards' announcements. */
  readonly waiters: KV;
  /** The TTL the waiter bucket really has. */
  readonly waiterTtlMs: number;
  /** The daily session-start budget (no TTL). */
  readonly budget: KV;
}

/**
 * Creates (or binds to) the bot's identify buckets. Throws `DISCLUSTER_ERR_BUCKET_CONFIG_MISMATCH`
 * if an existing slot bucket has a shorter TTL than this process's window + margin.
 */
export async function openIdentifyBuckets(
  nc: NatsConnection,
  options: Readonly<ResolvedNatsIdentifyThrottlerOptions>,
): Promise<IdentifyBuckets> {
  const common = {
    storage: options.storage,
    replicas: options.replicas,
    timeoutMs: options.requestTimeoutMs,
  };
  const slotsName = identifyBucket(options.bot);
  const slots = await openBucket(nc, {
    ...common,
    name: slotsName,
    ttlMs: options.slotTtlMs,
    description: 'Discluster identify slots: one per rate-limit key, TTL = identify window + margin',
  });
  requireTtlAtLeast(slots, slotsName, options.slotTtlMs, 'the identify window plus safety margin');
  const waiters = await openBucket(nc, {
    ...common,
    name: identifyWaitersBucket(options.bot),
    ttlMs: options.waiterTtlMs,
    description: 'Discluster shards waiting to identify (refreshed while waiting)',
  });
  const budget = await openBucket(nc, {
    ...common,
    name: budgetBucket(options.bot),
    ttlMs: 0,
    description: 'Discluster daily session-start budget',
  });
  return {
    slots: slots.kv,
    waiters: waiters.kv,
    // An existing waiter bucket keeps its TTL; liveness must follow what the server does.
    waiterTtlMs: waiters.ttlMs > 0 ? waiters.ttlMs : options.waiterTtlMs,
    budget: budget.kv,
  };
}
