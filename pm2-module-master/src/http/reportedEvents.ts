import type { FleetView } from './statusSource.js';

/** Looks up the dispatch-event count a host last reported for one shard of one of its clusters. */
export type EventLookup = (hostId: string, clusterId: number, shardId: number) => number | undefined;

/**
 * Event counts from the hosts' latest reports (`FleetStatus` leaves them out). Only hosts the
 * status shows online count: a lost host's last report says nothing about now.
 */
export function reportedEvents(view: FleetView): EventLookup {
  const online = new Set(view.status.hosts.filter((host) => host.state === 'online').map((host) => host.id));
  const counts = new Map<string, number>();
  for (const host of view.hosts) {
    if (!online.has(host.hostId)) continue;
    for (const cluster of host.clusters)
      for (const shard of cluster.shards ?? [])
        counts.set(`${host.hostId}/${cluster.clusterId}/${shard.id}`, shard.events);
  }
  return (hostId, clusterId, shardId) => counts.get(`${hostId}/${clusterId}/${shardId}`);
}
