import type { Logger } from '../logger.js';

/** What a rolling restart needs from the supervisor. */
export interface RollingTarget {
  /** Clusters serving now, in the order to restart them. */
  onlineClusterIds(): number[];
  /** Shutdown, wait for the exit, start again; resolves once the new process is started. */
  restartCluster(clusterId: number): Promise<void>;
  /** True once every shard of the cluster is ready; false after `timeoutMs`. */
  waitReady(clusterId: number, timeoutMs: number): Promise<boolean>;
}

export interface RollingOptions {
  readonly logger: Logger;
  /** Bound of the wait for a restarted cluster's shards; on timeout the restart goes on with the next. */
  readonly readyTimeoutMs: number;
  /** Asked between clusters: a newer command (assign, revoke, stop-all) ends the restart early. */
  readonly interrupted: () => boolean;
}

/** Default bound of the per-cluster ready wait: resuming shards is quick, identifying may queue. */
export const ROLLING_READY_TIMEOUT_MS = 120_000;

/**
 * Restarts a host's clusters one at a time, each resuming its sessions (leases are kept, so no
 * shard moves): the next one only goes down once the previous one serves again, so at most one
 * cluster's shards are closed at any moment. Returns the ids it restarted.
 */
export async function rollingRestart(target: RollingTarget, options: RollingOptions): Promise<number[]> {
  const order = target.onlineClusterIds();
  const restarted: number[] = [];
  options.logger.info({ clusters: order }, 'rolling restart: starting');
  for (const clusterId of order) {
    if (options.interrupted()) {
      options.logger.warn({ restarted }, 'rolling restart interrupted by a newer command');
      break;
    }
    // Gone or given up since the walk began: nothing to restart.
    if (!target.onlineClusterIds().includes(clusterId)) continue;
    await target.restartCluster(clusterId);
    restarted.push(clusterId);
    if (!(await target.waitReady(clusterId, options.readyTimeoutMs)))
      options.logger.warn(
        { clusterId, readyTimeoutMs: options.readyTimeoutMs },
        'rolling restart: cluster not ready in time; going on with the next',
      );
  }
  options.logger.info({ restarted }, 'rolling restart: done');
  return restarted;
}
