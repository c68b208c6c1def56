import type { LeaseClaim, ShardLeases } from '../leases/shardLeases.js';
import type { Logger } from '../logger.js';
import type { Pm2Json } from '../pm2/daemonClient.js';
import { KILL_TIMEOUT_MS, type ProcessTable } from '../pm2/processTable.js';
import type { ClusterLink } from './clusterLink.js';
import { notify, waitForRun, type ClusterRun } from './clusterRun.js';
import type { HostAssignment } from './hostAssignment.js';
import { decideOnExit, type RestartPolicyOptions } from './restartPolicy.js';

export type LaunchKind = 'start' | 'restart' | 'adopt';

export interface ClusterLauncherOptions {
  readonly table: ProcessTable;
  readonly link: ClusterLink;
  readonly leases: ShardLeases;
  readonly logger: Logger;
  readonly policy: RestartPolicyOptions;
  /** How long a cluster told to shut down may take to exit before pm2 stops it. */
  readonly shutdownTimeoutMs: number;
  /** The assignment in force (its epoch goes into the lease records). */
  readonly assignment: () => HostAssignment | undefined;
  /** Called once when a cluster is given up on. */
  readonly onClusterFailed: (clusterId: number, attempts: number, reason: string) => void;
}

/**
 * Starts, restarts, adopts and stops one cluster's process. No process starts (or is adopted)
 * before every lease of its shards is ours (leaseKeeper.ts), and every process gone for good has
 * its leases released, so the next owner starts at once.
 */
export class ClusterLauncher {
  public constructor(private readonly options: ClusterLauncherOptions) {}

  public claimOf(run: ClusterRun): LeaseClaim {
    return {
      clusterId: run.clusterId,
      shardIds: run.shardIds,
      shardCount: run.shardCount,
      epoch: this.options.assignment()?.epoch ?? run.epoch,
    };
  }

  /**
   * Takes the cluster's leases, then starts, restarts or adopts its process. Resolves once it is
   * running or blocked (another host holds a shard, or NATS fails): it goes on in the background.
   */
  public launch(run: ClusterRun, launchKind: LaunchKind, proc?: Pm2Json): Promise<void> {
    const { leases, link, logger, table } = this.options;
    const name = table.nameOf(run.clusterId);
    let kind = launchKind;
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    if (kind !== 'adopt') run.state = 'starting';
    run.pending = (async () => {
      let outcome = await leases.acquire(this.claimOf(run), {
        whenHeld: kind === 'adopt' ? 'fail' : 'wait',
        signal: run.abort.signal,
        onBlocked: settle,
      });
      if (outcome.kind === 'aborted' || run.stopping) return;
      if (outcome.kind === 'held' && kind === 'adopt') {
        // This plan wants the cluster here, but a shard of it is still leased elsewhere (a
        // rebalance hands it back while the other host winds down, or a failover happened while
        // this CONTROL was away): the old process must not serve it. Replace the process once the
        // shards are free, as a fresh start would.
        settle();
        logger.warn(
          { name, shardId: outcome.holder.shardId, holder: outcome.holder.hostId },
          'a running process of this cluster has a shard leased by another host: replacing it once the shard is free',
        );
        run.restartRequested = true; // its exit is expected, not a crash
        await this.shutDownProcess(run, `shard ${outcome.holder.shardId} is leased by another host`);
        run.restartRequested = false;
        if (run.stopping) return;
        kind = 'start';
        run.adopted = false;
        run.state = 'starting';
        notify(run);
        outcome = await leases.acquire(this.claimOf(run), {
          whenHeld: 'wait',
          signal: run.abort.signal,
          onBlocked: () => undefined,
        });
        if (outcome.kind === 'aborted' || run.stopping) return;
      }
      if (outcome.kind === 'held') {
        // The assignment does not wait for an adopted process to wind down.
        settle();
        await this.abandon(
          run,
          `shard ${outcome.holder.shardId} is leased by host ${outcome.holder.hostId}`,
          true,
        );
        return;
      }
      if (kind === 'adopt') {
        logger.info({ name, pid: proc?.['pid'] }, 'adopting a running cluster process');
        const uptime = proc?.['pm2_env']?.['pm_uptime'];
        run.startedAt = typeof uptime === 'number' ? uptime : Date.now();
        await link.sendAssign(run);
        // Its leases were just taken over: say so now rather than a renewal round later, so the
        // time CONTROL was away does not grow by one (the cluster fences after fenceAfterMs without).
        await link.sendKeepalive(run);
        return;
      }
      const pmId = kind === 'restart' ? await table.pmIdOf(name) : undefined;
      if (pmId === undefined) await table.start(name, run.clusterId);
      else await table.restart(pmId);
    })()
      .catch((error: unknown) => logger.error({ err: error, name }, 'could not start the cluster'))
      .finally(settle);
    return settled;
  }

  /**
   * Restarts one cluster without giving up its leases: `shutdown` over IPC (it closes its shards
   * for resume and saves their sessions), waits for the exit, starts it again. Resolves once the
   * new process is started (not yet ready).
   */
  public async restart(run: ClusterRun): Promise<void> {
    const { link, logger, table } = this.options;
    const name = table.nameOf(run.clusterId);
    run.restartRequested = true;
    clearTimeout(run.timer);
    try {
      await run.pending.catch(() => undefined);
      const proc = await table.find(name);
      const exitsBefore = run.exits;
      let stillRunning = false;
      if (proc?.['pm2_env']?.['status'] === 'online') {
        const exited = waitForRun(
          run,
          () => run.exits > exitsBefore || run.stopping,
          this.options.shutdownTimeoutMs,
        );
        await link.shutdown(run, 'restart requested');
        stillRunning = !(await exited);
        if (stillRunning) logger.warn({ name }, 'cluster did not exit after shutdown; pm2 stops it');
      }
      if (run.stopping) return;
      logger.info({ name }, 'starting the cluster again');
      run.failedStarts = 0;
      run.fatal = false;
      await this.launch(run, proc ? 'restart' : 'start');
      // pm2 stopped the old process itself: its exit must not pass for a crash of the new one.
      if (stillRunning) await waitForRun(run, () => run.exits > exitsBefore, KILL_TIMEOUT_MS);
    } finally {
      run.restartRequested = false;
    }
  }

  /** Stops a cluster the plan no longer wants (or revoked), then frees its shards for the next owner. */
  public async stop(run: ClusterRun): Promise<void> {
    const name = this.options.table.nameOf(run.clusterId);
    run.stopping = true;
    run.abort.abort();
    clearTimeout(run.timer);
    notify(run);
    await run.pending.catch(() => undefined);
    try {
      const pmId = await this.options.table.pmIdOf(name);
      if (pmId !== undefined) await this.options.table.delete(pmId);
    } catch (error) {
      this.options.logger.warn({ err: error, name }, 'could not delete cluster process');
    }
    await this.options.leases.release(run.clusterId);
  }

  /**
   * Stops a cluster for good without a new plan (its lease went to another host, or was not
   * confirmed): `shutdown` over IPC, wait for the exit, remove the process. It stays in the report
   * as `stopped` until the next plan.
   */
  public async abandon(run: ClusterRun, reason: string, fromLaunch = false): Promise<void> {
    if (run.stopping) return;
    run.stopping = true;
    run.state = 'stopped';
    run.abort.abort();
    clearTimeout(run.timer);
    notify(run);
    this.options.logger.error(
      { name: this.options.table.nameOf(run.clusterId), reason },
      'stopping the cluster for good (no restart)',
    );
    if (!fromLaunch) await run.pending.catch(() => undefined);
    await this.shutDownProcess(run, reason);
    await this.options.leases.release(run.clusterId);
  }

  /** The cluster's process exited on its own (crash, hang kill, fatal close): restart it, or give up. */
  public exited(run: ClusterRun): void {
    const name = this.options.table.nameOf(run.clusterId);
    const decision = decideOnExit(
      {
        kind: run.fatal ? 'fatal' : 'crashed',
        reportedReady: run.reportedReady,
        uptimeMs: Date.now() - run.startedAt,
      },
      run.failedStarts,
      this.options.policy,
    );
    this.options.logger.warn({ name, decision }, 'cluster exited');
    if (decision.action === 'restart') {
      run.failedStarts = decision.failedStarts;
      run.state = 'restarting';
      run.timer = setTimeout(() => {
        run.restarts++;
        // Through the leases again: a cluster never starts on shards CONTROL cannot vouch for.
        void this.launch(run, 'restart');
      }, decision.delayMs);
      return;
    }
    run.state = decision.action === 'give-up' ? 'failed' : 'stopped';
    if (decision.action === 'give-up')
      this.options.onClusterFailed(run.clusterId, decision.attempts, decision.reason);
    // Its process is gone for good: free its shards for whoever gets them next.
    void this.options.leases.release(run.clusterId);
  }

  /** `shutdown` over IPC (shards close for resume), wait for the exit, remove the process. */
  private async shutDownProcess(run: ClusterRun, reason: string): Promise<void> {
    const name = this.options.table.nameOf(run.clusterId);
    try {
      const pmId = await this.options.table.pmIdOf(name);
      if (pmId !== undefined) {
        const exitsBefore = run.exits;
        const exited = waitForRun(run, () => run.exits > exitsBefore, this.options.shutdownTimeoutMs);
        await this.options.link.shutdown(run, reason);
        await exited;
        await this.options.table.delete(pmId);
      }
    } catch (error) {
      this.options.logger.warn({ err: error, name }, 'could not stop the cluster process');
    }
  }
}
