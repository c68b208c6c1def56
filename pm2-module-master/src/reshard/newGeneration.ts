import { randomBytes } from 'node:crypto';
import type { PlanRecord } from 'discluster-protocol';
import { drainedOf, firstPlan } from '../fleetPlans.js';
import type { GatewayBot } from '../gatewayBot.js';
import type { KnownHost } from '../hosts/hostRegistry.js';

type Reshard = NonNullable<PlanRecord['reshard']>;

/**
 * The plan with a reshard to `shardCount` started: the new generation is planned over `hosts`
 * like a first plan (same weights, pins and drained hosts, whole buckets), its cluster ids follow every id in use, and the
 * epoch moves on so every CONTROL gets the new generation beside its running clusters.
 */
export function planWithReshard(
  plan: PlanRecord,
  hosts: readonly KnownHost[],
  shardCount: number,
  gateway: GatewayBot,
  reason: string,
): PlanRecord {
  const layout = firstPlan(hosts, shardCount, gateway, plan.epoch + 1, drainedOf(plan), plan.clusterSize);
  const offset = plan.nextClusterId;
  const reshard: Reshard = {
    id: randomBytes(9).toString('base64url'),
    shardCount,
    phase: 'starting',
    hosts: Object.fromEntries(
      Object.entries(layout.hosts).map(([hostId, clusters]) => [
        hostId,
        clusters.map((cluster) => ({
          clusterId: cluster.clusterId + offset,
          shardIds: [...cluster.shardIds],
        })),
      ]),
    ),
    reason,
    startedAt: Date.now(),
  };
  return {
    ...plan,
    epoch: plan.epoch + 1,
    gateway,
    reshard,
    nextClusterId: offset + layout.nextClusterId,
    updatedAt: Date.now(),
  };
}

/** The plan once the new generation serves: it becomes the plan, the old one is let go. */
export function planAfterReshard(plan: PlanRecord): PlanRecord {
  const reshard = plan.reshard;
  if (!reshard) return plan;
  return {
    ...plan,
    epoch: plan.epoch + 1,
    shardCount: reshard.shardCount,
    hosts: reshard.hosts,
    reshard: null,
    updatedAt: Date.now(),
  };
}

/** The plan with the reshard rolled back: the new generation is stopped, nothing else changes. */
export function planWithoutReshard(plan: PlanRecord): PlanRecord {
  return { ...plan, epoch: plan.epoch + 1, reshard: null, updatedAt: Date.now() };
}

/** Every cluster id of one generation, ascending. */
export function generationClusterIds(hosts: PlanRecord['hosts']): number[] {
  return Object.values(hosts)
    .flatMap((clusters) => clusters.map((cluster) => cluster.clusterId))
    .sort((a, b) => a - b);
}
