import { Client, IntentsBitField, type ClientOptions } from 'discord.js';
import { DisclusterError, ErrorCode } from 'discluster-protocol/errors';
import type { Cluster } from '../cluster/Cluster.js';
import { clusterInternals, type ClusterInternals } from '../cluster/clusterInternals.js';
import { asError } from '../util/redact.js';
import { ClusterEventFeed } from './ClusterEventFeed.js';
import { ClusterShardingStrategy } from './ClusterShardingStrategy.js';

/**
 * discord.js's `ClientOptions`, less what the cluster decides: its shards (`shards`, `shardCount`)
 * and how they connect (`ws.buildStrategy`, `ws.buildIdentifyThrottler`). `intents` defaults to the
 * cluster's; a different value is an error (discord.js would cache for events that never come).
 */
export type DiscordJsClientOptions = Omit<ClientOptions, 'intents' | 'shards' | 'shardCount'> & {
  readonly intents?: ClientOptions['intents'];
};

const CLUSTER_DECIDES = ['shards', 'shardCount'] as const;
const CLUSTER_CONNECTS = ['buildStrategy', 'buildIdentifyThrottler'] as const;

/**
 * A discord.js `Client` on this cluster's shards: its gateway is a strategy that opens no socket
 * (the cluster's shards identify, resume and fence as always), its REST is `cluster.rest` (the
 * fleet's rate limits). It logs in by itself once `cluster.start()` has the assignment; call
 * `cluster.start()` as usual and never `client.login()`.
 */
export function createDiscordJsClient(cluster: Cluster, options: DiscordJsClientOptions = {}): Client {
  const internals = clusterInternals(cluster);
  checkOptions(options, internals.intents);
  // Created first: it holds the shards' events until discord.js has logged in and connects.
  const feed = new ClusterEventFeed(cluster, internals.reportError);
  const client = new Client({
    ...options,
    intents: options.intents ?? internals.intents,
    ws: { ...options.ws, buildStrategy: (manager) => new ClusterShardingStrategy(manager, cluster, feed) },
  });
  useClusterRest(client, cluster);
  void internals.restBound.then(() => logIn(client, cluster, internals));
  return client;
}

function checkOptions(options: DiscordJsClientOptions, clusterIntents: number): void {
  const given = options as Record<string, unknown>;
  const ws = (options.ws ?? {}) as Record<string, unknown>;
  const taken = [
    ...CLUSTER_DECIDES.filter((key) => given[key] !== undefined),
    ...CLUSTER_CONNECTS.filter((key) => ws[key] !== undefined).map((key) => `ws.${key}`),
  ];
  if (taken.length > 0)
    throw new DisclusterError(
      ErrorCode.InvalidOption,
      `createDiscordJsClient: ${taken.join(', ')} come from the cluster; leave them out`,
    );
  if (options.intents === undefined) return;
  const intents = IntentsBitField.resolve(options.intents);
  if (intents !== clusterIntents)
    throw new DisclusterError(
      ErrorCode.InvalidOption,
      `createDiscordJsClient: intents ${intents} differ from the cluster's ${clusterIntents}; leave them out to use the cluster's`,
    );
}

/**
 * `client.rest` is a public, assignable property: discord.js sends through whatever it holds. The
 * REST it built in its constructor is never used, so its sweep timers are stopped.
 */
function useClusterRest(client: Client, cluster: Cluster): void {
  client.rest.clearHashSweeper();
  client.rest.clearHandlerSweeper();
  client.rest = cluster.rest;
}

/**
 * `login` is discord.js's only public way to start its gateway. It needs the token (it re-sets it on
 * `client.rest`, which already has it, and fetches GET /gateway/bot through it) and the shard ids,
 * which in a fleet are known only now.
 */
async function logIn(client: Client, cluster: Cluster, internals: ClusterInternals): Promise<void> {
  const token = internals.token();
  if (token === null) return;
  client.options.shards = [...cluster.shardIds];
  client.options.shardCount = cluster.shardCount;
  try {
    await client.login(token);
  } catch (error) {
    // discord.js destroys itself after a failed login, which also clears client.rest's token:
    // cluster.rest must keep working for the cluster and other code.
    cluster.rest.setToken(token);
    const cause = asError(error);
    internals.reportError(new Error(`discord.js client: login failed: ${cause.message}`, { cause }));
  }
}
