import {
  DisclusterError,
  ErrorCode,
  splitIntoClusters,
  type PlannedCluster,
  type SplitOptions,
} from 'discluster-protocol';
import type { HostShares } from './shardPlan.js';

/**
 * Clusters per host with ids that stay stable across plans: a cluster whose shards do not change is
 * not restarted and keeps its IPC id (`cluster.id`, the target of `ipc.emitTo`/`request`).
 */

/** Every host's clusters, sorted by id, and the id the next new cluster should get. */
export interface ClusterLayout {
  readonly clusters: ReadonlyMap<string, readonly PlannedCluster[]>;
  /** Greater than every cluster id in this layout and in the `previous` one it was built from. */
  readonly nextClusterId: number;
}

function byId(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function checkClusterId(what: string, id: number): void {
  if (!Number.isSafeInteger(id) || id < 0)
    throw new DisclusterError(
      ErrorCode.InvalidClusterId,
      `${what} must be a non-negative integer, got ${String(id)}`,
    );
}

/**
 * Numbers the clusters of a new plan.
 *
 * 1. Kept clusters: every previous cluster (of any host) whose whole, non-empty shard set now belongs
 *    to one host stays on that host with its id and shards, even when it moved there (a failover to
 *    a standby keeps the ids). Previous clusters are considered in ascending id order; one that
 *    repeats an id or a shard of a cluster already kept (a corrupt previous layout) is not kept, and
 *    its shards are renumbered like any others.
 * 2. New clusters: each host's remaining shards, hosts in ascending id order, are split with
 *    `splitIntoClusters(shards, splitOptionsOf(hostId))` and numbered from `nextClusterId` upward,
 *    skipping every id of `previous` (kept or not), so an id never changes meaning from one plan to
 *    the next and ids are unique fleet-wide.
 *
 * Kept clusters keep their old size: a changed `shards_per_cluster` applies to new clusters only
 * (pass an empty `previous` to re-split everything). Every host of `shares` appears, possibly with
 * `[]`; hosts only in `previous` do not. Shard ids must be non-negative integers held by one host.
 */
export function numberClusters(
  shares: HostShares,
  previous: ReadonlyMap<string, readonly PlannedCluster[]>,
  splitOptionsOf: (hostId: string) => SplitOptions,
  nextClusterId: number,
): ClusterLayout {
  checkClusterId('nextClusterId', nextClusterId);
  const owners = new Map<number, string>();
  for (const [hostId, shards] of shares) {
    for (const shard of shards) {
      if (!Number.isSafeInteger(shard) || shard < 0)
        throw new DisclusterError(
          ErrorCode.InvalidShard,
          `host ${hostId} holds shard ${String(shard)}, which is not a non-negative integer`,
        );
      const other = owners.get(shard);
      if (other !== undefined)
        throw new DisclusterError(
          ErrorCode.InvalidShard,
          `shard ${shard} is held by both ${other} and ${hostId}`,
        );
      owners.set(shard, hostId);
    }
  }

  const previousClusters: PlannedCluster[] = [];
  for (const hostId of [...previous.keys()].sort(byId)) {
    for (const cluster of previous.get(hostId) ?? []) {
      checkClusterId(`cluster id on host ${hostId}`, cluster.clusterId);
      previousClusters.push(cluster);
    }
  }
  previousClusters.sort((a, b) => a.clusterId - b.clusterId); // stable: equal ids keep host order
  const usedIds = new Set(previousClusters.map((cluster) => cluster.clusterId));

  const clusters = new Map<string, PlannedCluster[]>(
    [...shares.keys()].sort(byId).map((hostId) => [hostId, []]),
  );
  const keptIds = new Set<number>();
  const claimed = new Set<number>();
  for (const cluster of previousClusters) {
    const first = cluster.shardIds[0];
    if (first === undefined || keptIds.has(cluster.clusterId)) continue;
    const host = owners.get(first);
    const own = new Set<number>();
    const whole = cluster.shardIds.every((shard) => {
      const ok = owners.get(shard) === host && !claimed.has(shard) && !own.has(shard);
      own.add(shard);
      return ok;
    });
    if (host === undefined || !whole) continue;
    for (const shard of own) claimed.add(shard);
    keptIds.add(cluster.clusterId);
    clusters.get(host)?.push({ clusterId: cluster.clusterId, shardIds: [...own].sort((a, b) => a - b) });
  }

  let next = nextClusterId;
  for (const [hostId, hostClusters] of clusters) {
    const rest = (shares.get(hostId) ?? []).filter((shard) => !claimed.has(shard));
    for (const cluster of splitIntoClusters(rest, splitOptionsOf(hostId))) {
      while (usedIds.has(next)) next++;
      hostClusters.push({ clusterId: next, shardIds: cluster.shardIds });
      usedIds.add(next);
      next++;
    }
    hostClusters.sort((a, b) => a.clusterId - b.clusterId);
  }
  for (const id of usedIds) if (id >= next) next = id + 1;
  return { clusters, nextClusterId: next };
}
