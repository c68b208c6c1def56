import { clusterSize, type PlanRecord } from 'discluster-protocol';
import { hostResplit, type ResplitGroup } from '../plan/resplitSteps.js';

/**
 * Plan records of a rolling re-split (`discluster resplit`), pure. Each step swaps, on every host
 * that has one left, the first group of clusters (plan/resplitSteps.ts) for clusters of the new
 * size under new ids; the shards stay on their host, so each RESUMEs after the old cluster saved
 * its session and released its lease (CONTROL stops removed clusters before it starts new ones).
 */

export interface ResplitStep {
  readonly plan: PlanRecord;
  /** Ids of the clusters the step starts. */
  readonly started: readonly number[];
  /** Ids of the clusters the step stops. */
  readonly stopped: readonly number[];
}

export interface ResplitCounts {
  /** Target clusters already of the new size, over every host. */
  readonly done: number;
  readonly total: number;
  /** Groups left that hold a cluster with a standing failure: a resplit leaves them as they are. */
  readonly skipped: number;
}

/**
 * The cluster size a re-split to `shardsPerCluster` aims at under the plan's `max_concurrency`
 * (the same rounding every other plan uses; see `clusterSize`).
 */
export function resplitSize(plan: PlanRecord, shardsPerCluster: number): number {
  return clusterSize({
    shardsPerCluster,
    maxConcurrency: plan.gateway.session_start_limit.max_concurrency,
    fleetClusterSize: shardsPerCluster,
  });
}

/** A group may be swapped unless one of its clusters gave up (held, or a failure not cleared yet). */
function swappable(group: ResplitGroup, failed: ReadonlySet<number>): boolean {
  return group.replaced.every((cluster) => !failed.has(cluster.clusterId));
}

function failedIds(plan: PlanRecord): Set<number> {
  return new Set((plan.failures ?? []).map((record) => record.clusterId));
}

/** How far `plan` is from clusters of `size` shards on every host. */
export function resplitCounts(plan: PlanRecord, size: number): ResplitCounts {
  const failed = failedIds(plan);
  let done = 0;
  let total = 0;
  let skipped = 0;
  for (const clusters of Object.values(plan.hosts)) {
    const host = hostResplit(clusters, size);
    done += host.done;
    total += host.total;
    skipped += host.groups.filter((group) => !swappable(group, failed)).length;
  }
  return { done, total, skipped };
}

/**
 * The plan after the next step towards clusters of `size` shards, or null when no host has a
 * group left it may swap. Hosts in `skipHosts` (lost: a failover moves their shards first) wait.
 */
export function resplitStep(
  plan: PlanRecord,
  size: number,
  skipHosts: ReadonlySet<string>,
  now: number,
): ResplitStep | null {
  const failed = failedIds(plan);
  let nextId = plan.nextClusterId;
  const hosts: PlanRecord['hosts'] = {};
  const started: number[] = [];
  const stopped: number[] = [];
  for (const hostId of Object.keys(plan.hosts).sort()) {
    const clusters = plan.hosts[hostId] ?? [];
    hosts[hostId] = [...clusters];
    if (skipHosts.has(hostId)) continue;
    const group = hostResplit(clusters, size).groups.find((candidate) => swappable(candidate, failed));
    if (!group) continue;
    const gone = new Set(group.replaced.map((cluster) => cluster.clusterId));
    const added = group.chunks.map((shardIds) => ({ clusterId: nextId++, shardIds: [...shardIds] }));
    hosts[hostId] = [...clusters.filter((cluster) => !gone.has(cluster.clusterId)), ...added].sort(
      (a, b) => a.clusterId - b.clusterId,
    );
    started.push(...added.map((cluster) => cluster.clusterId));
    stopped.push(...gone);
  }
  if (started.length === 0) return null;
  return {
    plan: { ...plan, epoch: plan.epoch + 1, hosts, nextClusterId: nextId, updatedAt: now },
    started,
    stopped: stopped.sort((a, b) => a - b),
  };
}
