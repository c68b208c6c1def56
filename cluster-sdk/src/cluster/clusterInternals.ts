import { DisclusterError, ErrorCode } from 'discluster-protocol/errors';

/**
 * What the SDK's own adapters (`discluster-sdk/discord.js`) need from a cluster and bot code does
 * not get: kept in a WeakMap rather than on the cluster, so `util.inspect(cluster)` cannot reach it,
 * and not exported from the package (its `exports` map allows no deep imports).
 */
export interface ClusterInternals {
  /** The bot token, once the assignment is known (discord.js's `login` takes it). */
  readonly token: () => string | null;
  /** The intents the cluster identifies with (discord.js's caches follow its `intents` option). */
  readonly intents: number;
  /** Reports a failure the cluster survived as its `error` event (stderr without a listener). */
  readonly reportError: (error: Error) => void;
  /** Resolves once `start()` knows the assignment and `cluster.rest` is authorised. */
  readonly restBound: Promise<void>;
}

const registry = new WeakMap<object, ClusterInternals>();

export function registerClusterInternals(cluster: object, internals: ClusterInternals): void {
  registry.set(cluster, internals);
}

/** A cluster's internals; a clear error for anything that is not a `Cluster` of this SDK copy. */
export function clusterInternals(cluster: object): ClusterInternals {
  const internals = registry.get(cluster);
  if (!internals)
    throw new DisclusterError(
      ErrorCode.InvalidOption,
      'expected a Cluster of discluster-sdk (from the same copy of the package as discluster-sdk/discord.js)',
    );
  return internals;
}
