import type { PlanRecord, PlannedCluster, SplitOptions } from 'discluster-protocol';
import type { KnownHost } from './hosts/hostRegistry.js';
import {
  failoverPlan,
  initialPlan,
  movedShardCount,
  numberClusters,
  rebalancePlan,
  type HostShares,
  type PlanHost,
} from './plan/index.js';
import type { GatewayBot } from './gatewayBot.js';

/**
 * Plan records from the pure planner (plan/): the first plan, a failover and a rebalance each give
 * a new record with the next epoch, or null when nothing would change.
 */

export function planHostOf(host: KnownHost): PlanHost {
  return { id: host.facts.hostId, role: host.facts.role, cores: host.facts.cores, load15: host.facts.load15 };
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

function splitOptions(hosts: readonly KnownHost[], maxConcurrency: number): (hostId: string) => SplitOptions {
  const perCluster = new Map(hosts.map((host) => [host.facts.hostId, host.facts.shardsPerCluster]));
  return (hostId) => ({ shardsPerCluster: perCluster.get(hostId) ?? 10, maxConcurrency });
}

function record(
  base: { epoch: number; shardCount: number; gateway: GatewayBot },
  shares: HostShares,
  previous: ReadonlyMap<string, readonly PlannedCluster[]>,
  hosts: readonly KnownHost[],
  nextClusterId: number,
): PlanRecord {
  const maxConcurrency = base.gateway.session_start_limit.max_concurrency;
  const layout = numberClusters(shares, previous, splitOptions(hosts, maxConcurrency), nextClusterId);
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
    stopped: null,
    updatedAt: Date.now(),
  };
}

/** The first plan over the hosts that announced themselves. */
export function firstPlan(
  hosts: readonly KnownHost[],
  shardCount: number,
  gateway: GatewayBot,
  epoch: number,
): PlanRecord {
  const shares = initialPlan(hosts.map(planHostOf), shardCount, gateway.session_start_limit.max_concurrency);
  return record({ epoch, shardCount, gateway }, shares, new Map(), hosts, 0);
}

/** Moves the shards of `lost` hosts (only theirs) to the remaining online hosts. */
export function planAfterLoss(
  plan: PlanRecord,
  lost: readonly string[],
  remaining: readonly KnownHost[],
): { plan: PlanRecord; moved: number } {
  const before = sharesOf(plan);
  const after = failoverPlan(
    before,
    lost,
    remaining.map(planHostOf),
    plan.shardCount,
    plan.gateway.session_start_limit.max_concurrency,
  );
  return {
    plan: record({ ...plan, epoch: plan.epoch + 1 }, after, clustersOf(plan), remaining, plan.nextClusterId),
    moved: movedShardCount(before, after),
  };
}

/** Shares by weight again over `online` hosts with the fewest moves; null if already balanced. */
export function planRebalanced(
  plan: PlanRecord,
  online: readonly KnownHost[],
): { plan: PlanRecord; moved: number } | null {
  const before = sharesOf(plan);
  const after = rebalancePlan(
    before,
    online.map(planHostOf),
    plan.shardCount,
    plan.gateway.session_start_limit.max_concurrency,
  );
  const moved = movedShardCount(before, after);
  if (moved === 0) return null;
  return {
    plan: record({ ...plan, epoch: plan.epoch + 1 }, after, clustersOf(plan), online, plan.nextClusterId),
    moved,
  };
}
