import { DisclusterError, ErrorCode } from './errors.js';

/**
 * How a host's shards become clusters (seed 003; docs/architecture.md "Planning and supervision
 * rules"). MASTER calls this for each host while building its plan and sends the result in the
 * assignment, so cluster ids are numbered once, by MASTER, and unique across the fleet; CONTROL only
 * runs what it is given.
 */

/** One cluster of a plan. */
export interface PlannedCluster {
  readonly clusterId: number;
  readonly shardIds: readonly number[];
}

export interface SplitOptions {
  /** The host's `shards_per_cluster` setting (default 10). Ignored when `maxConcurrency` is above 1. */
  readonly shardsPerCluster: number;
  /** Discord's `max_concurrency`: above 1, a cluster holds that many shards, or a multiple of it. */
  readonly maxConcurrency: number;
  /**
   * The fleet's shards per cluster, set by `discluster resplit` and kept in the plan: it wins over
   * the host's setting (a whole multiple of `maxConcurrency`; see {@link clusterSizeProblem}).
   */
  readonly fleetClusterSize?: number | undefined;
  /** Id of the first cluster; the rest follow consecutively (default 0). */
  readonly firstClusterId?: number;
}

function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1)
    throw new DisclusterError(ErrorCode.InvalidOption, `${name} must be a positive integer, got ${value}`);
  return value;
}

/**
 * Shards per cluster under `options`: the fleet's size when set; else `maxConcurrency` when above 1
 * (one shard of every rate-limit key), else `shardsPerCluster`. A fleet size that is no multiple
 * of `maxConcurrency` (Discord raised it since the re-split) is rounded down to one, at least
 * `maxConcurrency`: planning goes on, every cluster still holds whole buckets.
 */
export function clusterSize(options: SplitOptions): number {
  const concurrency = positiveInt('maxConcurrency', options.maxConcurrency);
  if (options.fleetClusterSize !== undefined) {
    const size = positiveInt('fleetClusterSize', options.fleetClusterSize);
    return Math.max(1, Math.floor(size / concurrency)) * concurrency;
  }
  return concurrency > 1 ? concurrency : positiveInt('shardsPerCluster', options.shardsPerCluster);
}

/**
 * Why `shardsPerCluster` cannot be the fleet's cluster size under `maxConcurrency` (`discluster
 * resplit`), or null. Above 1, it must be a whole multiple of `maxConcurrency`; at most 1000.
 */
export function clusterSizeProblem(shardsPerCluster: number, maxConcurrency: number): string | null {
  if (!Number.isSafeInteger(shardsPerCluster) || shardsPerCluster < 1 || shardsPerCluster > 1000)
    return `shards per cluster must be a whole number from 1 to 1000, got ${String(shardsPerCluster)}`;
  if (maxConcurrency > 1 && shardsPerCluster % maxConcurrency !== 0)
    return `shards per cluster must be a multiple of max_concurrency (${maxConcurrency}), so every cluster identifies whole buckets: try ${Math.max(1, Math.round(shardsPerCluster / maxConcurrency)) * maxConcurrency}`;
  return null;
}

/**
 * Splits `shardIds` into clusters of {@link clusterSize} shards, in ascending shard order; only the
 * last cluster may be smaller. Every shard appears exactly once. With `maxConcurrency > 1` and a
 * host range aligned to `maxConcurrency` (MASTER's planner keeps host shares whole multiples of it
 * where possible), each cluster holds one shard of every rate-limit key, so its shards can
 * IDENTIFY together.
 */
export function splitIntoClusters(shardIds: readonly number[], options: SplitOptions): PlannedCluster[] {
  const size = clusterSize(options);
  const first = options.firstClusterId ?? 0;
  if (!Number.isSafeInteger(first) || first < 0)
    throw new DisclusterError(ErrorCode.InvalidClusterId, `firstClusterId must be >= 0, got ${first}`);
  const sorted = [...shardIds].sort((a, b) => a - b);
  sorted.forEach((id, index) => {
    if (!Number.isSafeInteger(id) || id < 0)
      throw new DisclusterError(ErrorCode.InvalidShard, `shard id must be a non-negative integer, got ${id}`);
    if (index > 0 && sorted[index - 1] === id)
      throw new DisclusterError(ErrorCode.InvalidShard, `shard ${id} is listed twice`);
  });
  const clusters: PlannedCluster[] = [];
  for (let start = 0; start < sorted.length; start += size) {
    clusters.push({ clusterId: first + clusters.length, shardIds: sorted.slice(start, start + size) });
  }
  return clusters;
}
