import type { PlanRecord, PlannedCluster, SplitOptions } from 'discluster-protocol';
import type { KnownHost } from './hosts/hostRegistry.js';
import {
  movedShardCount,
  numberClusters,
  placeFailover,
  placeInitial,
  placeRebalance,
  pinAlignment,
  placementProblem,
  type HostShares,
  type PlacementHost,
} from './plan/index.js';
import type { GatewayBot } from './gatewayBot.js';

/**
 * Plan records from the pure planner (plan/): the first plan, a failover and a rebalance each give
 * a new record with the next epoch, or null when nothing would change.
 */

export function planHostOf(host: KnownHost): PlacementHost {
  return {
    id: host.facts.hostId,
    role: host.facts.role,
    cores: host.facts.cores,
    load15: host.facts.load15,
    weight: host.facts.weight ?? 1,
    pins: host.facts.pinShards ?? null,
  };
}

/** The hosts `discluster drain` holds empty, as the plan keeps them. */
export function drainedOf(plan: Pick<PlanRecord, 'drained'> | null): ReadonlySet<string> {
  return new Set(plan?.drained ?? []);
}

/**
 * A warning for pins that do not follow `max_concurrency` buckets (they are honoured, but a cluster
 * of such a pin holds shards of two buckets, which identify in two windows), or null.
 */
export function pinAlignmentWarning(
  hosts: readonly KnownHost[],
  shardCount: number,
  maxConcurrency: number,
): string | null {
  if (maxConcurrency <= 1) return null;
  const off = pinAlignment(hosts.map(planHostOf), shardCount, maxConcurrency);
  return off.length === 0
    ? null
    : `pin_shards not aligned to max_concurrency (${maxConcurrency}) buckets, honoured as written; their clusters mix buckets and identify over more windows: ${off.join('; ')}`;
}

/** Why the `hosts`' pins cannot be placed over `shardCount` shards, or null (see placement.ts). */
export function hostsPlacementProblem(hosts: readonly KnownHost[], shardCount: number): string | null {
  return placementProblem(hosts.map(planHostOf), shardCount);
}

function sharesOf(plan: PlanRecord): HostShares {
  return new Map(
    Object.entries(plan.hosts).map(([hostId, clusters]) => [
      hostId,
      clusters.flatMap((cluster) => cluster.shardIds).sort((a, b) => a - b),
    ]),
  );
}

function clustersOf(plan: PlanRecord): Map<string, readonly PlannedCluster[]> {
  return new Map(Object.entries(plan.hosts));
}

/** New clusters' size: the fleet's (`discluster resplit`) when set, else each host's `shards_per_cluster`. */
function splitOptions(
  hosts: readonly KnownHost[],
  maxConcurrency: number,
  fleetSize: number | undefined,
): (hostId: string) => SplitOptions {
  const perCluster = new Map(hosts.map((host) => [host.facts.hostId, host.facts.shardsPerCluster]));
  return (hostId) => ({
    shardsPerCluster: perCluster.get(hostId) ?? 10,
    maxConcurrency,
    fleetClusterSize: fleetSize,
  });
}

function record(
  base: {
    epoch: number;
    shardCount: number;
    gateway: GatewayBot;
    drained?: readonly string[] | undefined;
    clusterSize?: number | undefined;
    resplit?: PlanRecord['resplit'];
  },
  shares: HostShares,
  previous: ReadonlyMap<string, readonly PlannedCluster[]>,
  hosts: readonly KnownHost[],
  nextClusterId: number,
): PlanRecord {
  const maxConcurrency = base.gateway.session_start_limit.max_concurrency;
  const layout = numberClusters(
    shares,
    previous,
    splitOptions(hosts, maxConcurrency, base.clusterSize),
    nextClusterId,
  );
  return {
    v: 1,
    epoch: base.epoch,
    shardCount: base.shardCount,
    gateway: base.gateway,
    hosts: Object.fromEntries(
      [...layout.clusters].map(([hostId, clusters]) => [
        hostId,
        clusters.map((cluster) => ({ clusterId: cluster.clusterId, shardIds: [...cluster.shardIds] })),
      ]),
    ),
    nextClusterId: layout.nextClusterId,
    ...(base.drained && base.drained.length > 0 ? { drained: [...base.drained] } : {}),
    // The fleet's cluster size and a running re-split outlive every re-plan.
    ...(base.clusterSize !== undefined ? { clusterSize: base.clusterSize } : {}),
    ...(base.resplit ? { resplit: base.resplit } : {}),
    stopped: null,
    updatedAt: Date.now(),
  };
}

/**
 * The first plan over the hosts that announced themselves (pins and weights included; `drained`
 * hosts, for a reshard's new generation, get nothing).
 */
export function firstPlan(
  hosts: readonly KnownHost[],
  shardCount: number,
  gateway: GatewayBot,
  epoch: number,
  drained: ReadonlySet<string> = new Set(),
  clusterSize?: number,
): PlanRecord {
  const shares = placeInitial(
    hosts.map(planHostOf),
    shardCount,
    gateway.session_start_limit.max_concurrency,
    drained,
  );
  return record({ epoch, shardCount, gateway, clusterSize }, shares, new Map(), hosts, 0);
}

/**
 * Moves the shards of `lost` hosts (only theirs, plus pinned shards back to their pinned host and a
 * drained host's shards) to the remaining online hosts. `unplaced`: shards nothing could take,
 * left with their holder (see placeFailover).
 */
export function planAfterLoss(
  plan: PlanRecord,
  lost: readonly string[],
  remaining: readonly KnownHost[],
  drained: ReadonlySet<string> = drainedOf(plan),
): { plan: PlanRecord; moved: number; unplaced: readonly number[] } {
  const before = sharesOf(plan);
  const { shares: after, unplaced } = placeFailover(
    before,
    lost,
    remaining.map(planHostOf),
    plan.shardCount,
    plan.gateway.session_start_limit.max_concurrency,
    drained,
  );
  return {
    plan: record(
      { ...plan, epoch: plan.epoch + 1, drained: [...drained].sort() },
      after,
      clustersOf(plan),
      remaining,
      plan.nextClusterId,
    ),
    moved: movedShardCount(before, after),
    unplaced,
  };
}

/** Shares by weight again over `online` hosts with the fewest moves; null if already balanced. */
export function planRebalanced(
  plan: PlanRecord,
  online: readonly KnownHost[],
): { plan: PlanRecord; moved: number } | null {
  const before = sharesOf(plan);
  const after = placeRebalance(
    before,
    online.map(planHostOf),
    plan.shardCount,
    plan.gateway.session_start_limit.max_concurrency,
    drainedOf(plan),
  );
  const moved = movedShardCount(before, after);
  if (moved === 0) return null;
  return {
    plan: record({ ...plan, epoch: plan.epoch + 1 }, after, clustersOf(plan), online, plan.nextClusterId),
    moved,
  };
}
