import type { FleetStatus } from 'discluster-protocol';
import { reportedEvents } from './reportedEvents.js';
import { standbyMessage } from './standbyMessage.js';
import type { StatusSource } from './statusSource.js';

/** What the status page renders, pushed by `/api/events` (one JSON document per message). */
export interface PageSnapshot {
  /** This MASTER's instance id. */
  readonly instanceId: string;
  readonly leading: boolean;
  /** Why there is no status (this MASTER stands by), else null. */
  readonly notice: string | null;
  readonly status: FleetStatus | null;
  /** The plan's `session_start_limit` as of MASTER's last GET /gateway/bot (not live). */
  readonly sessionStarts: { readonly remaining: number; readonly total: number } | null;
  /** Cluster id → dispatch events its shards counted, from its host's last report. */
  readonly clusterEvents: Readonly<Record<string, number>>;
}

/** The page's view of this MASTER now; a standby looks up who leads. */
export async function pageSnapshot(source: StatusSource): Promise<PageSnapshot> {
  const view = source.fleetView();
  if (!view)
    return {
      instanceId: source.instanceId,
      leading: false,
      notice: standbyMessage(source.instanceId, await source.currentLeader().catch(() => null)),
      status: null,
      sessionStarts: null,
      clusterEvents: {},
    };
  const eventsOf = reportedEvents(view);
  const clusterEvents: Record<string, number> = {};
  for (const host of view.status.hosts)
    for (const cluster of host.clusters) {
      let sum = 0;
      for (const shard of cluster.shards) sum += eventsOf(host.id, cluster.id, shard.id) ?? 0;
      clusterEvents[String(cluster.id)] = sum;
    }
  const limit = view.plan?.gateway.session_start_limit;
  return {
    instanceId: source.instanceId,
    leading: true,
    notice: null,
    status: view.status,
    sessionStarts: limit ? { remaining: limit.remaining, total: limit.total } : null,
    clusterEvents,
  };
}
