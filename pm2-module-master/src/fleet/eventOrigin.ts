import type { FleetEvent, PlanRecord } from 'discluster-protocol';

/**
 * Why MASTER should not believe a fleet event, or null if the plan backs it (issue 13 h): the
 * cluster must be planned on the host that reports it (running generation or a reshard's new one),
 * and a fatal close must name one of that cluster's shards. Anyone allowed to publish an event
 * could otherwise stop the whole fleet, or make it reshard, with one message.
 */
export function eventMismatch(plan: PlanRecord | null, event: FleetEvent): string | null {
  if (!plan) return 'there is no plan yet, so no cluster runs';
  const generations = [
    { shardCount: plan.shardCount, hosts: plan.hosts },
    ...(plan.reshard ? [{ shardCount: plan.reshard.shardCount, hosts: plan.reshard.hosts }] : []),
  ];
  const clusters = generations.flatMap((generation) =>
    (generation.hosts[event.hostId] ?? []).filter((cluster) => cluster.clusterId === event.clusterId),
  );
  if (clusters.length === 0) return `cluster ${event.clusterId} is not planned on host ${event.hostId}`;
  if (event.type === 'fatal' && !clusters.some((cluster) => cluster.shardIds.includes(event.shardId)))
    return `shard ${event.shardId} is not served by cluster ${event.clusterId}`;
  return null;
}
