import { DisclusterError, ErrorCode, toWireError, type ClusterReport } from 'discluster-protocol';
import type { ActionReply, Pm2Io } from 'discluster-runtime';

/** What the pm2 metrics and actions read and do. */
export interface HostSurfaceSource {
  /** The clusters as the heartbeat reports them. */
  clusters(): ClusterReport[];
  /** The answer of `pm2 trigger discluster-control status`: the host's heartbeat facts. */
  status(): unknown;
  /** `pm2 trigger discluster-control restart-cluster <id>`. */
  restartCluster(clusterId: number): Promise<void>;
}

/** Host summary numbers: what `pm2 show discluster-control` and `pm2 monit` display. */
export function hostSummary(clusters: readonly ClusterReport[]) {
  const shards = clusters.flatMap((cluster) => cluster.shards ?? []);
  return {
    clustersOnline: clusters.filter((cluster) => cluster.state === 'online').length,
    shardsReady: shards.filter((shard) => shard.state === 'ready').length,
    shardsTotal: clusters.reduce((n, cluster) => n + cluster.shardIds.length, 0),
    restarts: clusters.reduce((n, cluster) => n + cluster.restarts, 0),
    /** Shards queued for IDENTIFY permission (rate-limit window or session-start budget). */
    identifyWaits: shards.filter((shard) => shard.state === 'waiting').length,
  };
}

/**
 * Registers CONTROL's metrics (`pm2_env.axm_monitor`) and actions (`pm2_env.axm_actions`).
 * Metric values are numbers, so exporters that parse `axm_monitor` get numbers.
 */
export function registerPm2Surface(io: Pm2Io, source: HostSurfaceSource): void {
  const summary = () => hostSummary(source.clusters());
  io.metric({ name: 'clusters online', value: () => summary().clustersOnline });
  io.metric({ name: 'shards ready', value: () => summary().shardsReady });
  io.metric({ name: 'shards total', value: () => summary().shardsTotal });
  io.metric({ name: 'restarts', value: () => summary().restarts });
  io.metric({ name: 'identify waits', value: () => summary().identifyWaits });
  io.action('status', (reply: ActionReply) => reply(source.status()));
  io.action('restart-cluster', (param: unknown, reply: ActionReply) => {
    let clusterId: number;
    try {
      clusterId = parseClusterId(param);
    } catch (error) {
      reply({ ok: false, error: toWireError(error) });
      return;
    }
    source.restartCluster(clusterId).then(
      () => reply({ ok: true, clusterId }),
      (error: unknown) => reply({ ok: false, clusterId, error: toWireError(error) }),
    );
  });
}

/** `pm2 trigger … restart-cluster 3` passes "3"; the pm2 API may pass a number. */
export function parseClusterId(param: unknown): number {
  const text = typeof param === 'number' ? String(param) : typeof param === 'string' ? param.trim() : '';
  if (!/^\d{1,9}$/.test(text))
    throw new DisclusterError(
      ErrorCode.InvalidClusterId,
      'restart-cluster needs a cluster id: pm2 trigger discluster-control restart-cluster <id>',
    );
  return Number(text);
}
