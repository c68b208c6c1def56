import { shardForGuild, type PlanRecord, type WhichResult } from 'discluster-protocol';

/** Where `guildId` is served under `plan` (`discluster which`): its shard, and that shard's cluster and host. */
export function locateGuild(plan: PlanRecord, guildId: string): WhichResult {
  const shardId = shardForGuild(guildId, plan.shardCount);
  for (const [hostId, clusters] of Object.entries(plan.hosts))
    for (const cluster of clusters)
      if (cluster.shardIds.includes(shardId))
        return { guildId, shardId, shardCount: plan.shardCount, clusterId: cluster.clusterId, hostId };
  return { guildId, shardId, shardCount: plan.shardCount, clusterId: null, hostId: null };
}
