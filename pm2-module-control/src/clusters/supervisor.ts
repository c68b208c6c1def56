import {
  DisclusterError,
  ErrorCode,
  sourceAddressOf,
  type ClusterReport,
  type NatsAccess,
} from 'discluster-protocol';
import type { LeaseHolder, ShardLeases } from '../leases/shardLeases.js';
import type { Logger } from '../logger.js';
import type { Pm2Client, Pm2Json } from '../pm2/daemonClient.js';
import { KILL_TIMEOUT_MS, ProcessTable } from '../pm2/processTable.js';
import { HangWatchdog } from '../watchdog/hangWatchdog.js';
import { ClusterLauncher } from './clusterLauncher.js';
import { ClusterLink } from './clusterLink.js';
import {
  isReady,
  newRun,
  notify,
  reportOf,
  waitForRun,
  type ClusterRun,
  type RunGeneration,
  type ShardStatus,
} from './clusterRun.js';
import type { HostAssignment } from './hostAssignment.js';
import type { RestartPolicyOptions } from './restartPolicy.js';

export type { HostAssignment } from './hostAssignment.js';

/**
 * A reshard's new generation starts one cluster at a time: the next once the previous one sent its
 * first status report (it booted), or after this long at most.
 */
export const STANDBY_BOOT_WAIT_MS = 30_000;

export interface SupervisorOptions {
  readonly pm2: Pm2Client;
  readonly bot: string;
  /** Absolute path of the bot's entry file. */
  readonly script: string;
  readonly nats: NatsAccess;
  /**
   * CONTROL's `source_addresses`: cluster `id` binds its gateway and REST sockets to
   * `sourceAddresses[id % length]`. Empty or absent: the operating system picks.
   */
  readonly sourceAddresses?: readonly string[];
  readonly policy: RestartPolicyOptions;
  readonly leases: ShardLeases;
  readonly logger: Logger;
  /** Called once when a cluster is given up on. */
  readonly onClusterFailed: (clusterId: number, attempts: number, reason: string) => void;
  /** Called on every status report of a reshard's new-generation cluster (MASTER waits for them). */
  readonly onStandbyReport?: () => void;
  /** Called when a cluster reports a fatal gateway close. */
  readonly onFatal: (clusterId: number, shardId: number, code: number, reason: string) => void;
  /** How long a cluster told to shut down may take to exit before pm2 stops it (default 20 s). */
  readonly shutdownTimeoutMs?: number;
  /** Monotonic milliseconds for the hung-cluster watchdog (tests may replace it). */
  readonly clock?: () => number;
  /** Ends a hung cluster process by pid (default: SIGKILL; tests may replace it). */
  readonly killProcess?: (pid: number) => void;
}

/**
 * Runs one host's clusters as pm2 processes and keeps them running, one assignment at a time: it
 * reconciles the clusters it runs with the plan, and decides what each cluster's messages and
 * exits mean. The parts: the pm2 process table (pm2/processTable.ts), the messages both ways
 * (clusterLink.ts), starting and stopping through the leases (clusterLauncher.ts), and the hang
 * watchdog (watchdog/hangWatchdog.ts).
 */
export class ClusterSupervisor {
  private readonly runs = new Map<string, ClusterRun>();
  private readonly table: ProcessTable;
  private readonly link: ClusterLink;
  private readonly launcher: ClusterLauncher;
  private readonly watchdog: HangWatchdog;
  private assignment: HostAssignment | undefined;
  private listening = false;
  private swept = false;
  /** New-generation clusters waiting for their turn to start (see startInTurn). */
  private readonly unlaunched = new Set<ClusterRun>();
  /** Bumped by every apply: a turn-by-turn start of an older one stops there. */
  private applies = 0;

  public constructor(private readonly options: SupervisorOptions) {
    const { leases, logger } = options;
    const assignment = () => this.assignment;
    this.table = new ProcessTable(options.pm2, options.bot, options.script);
    this.link = new ClusterLink({
      table: this.table,
      bot: options.bot,
      nats: options.nats,
      logger,
      runOf: (name) => this.runs.get(name),
      assignment,
      fenceAfterMs: () => leases.fenceAfterMs,
      sourceAddressOf: (clusterId) => sourceAddressOf(options.sourceAddresses ?? [], clusterId),
    });
    this.launcher = new ClusterLauncher({
      table: this.table,
      link: this.link,
      leases,
      logger,
      policy: options.policy,
      shutdownTimeoutMs: options.shutdownTimeoutMs ?? KILL_TIMEOUT_MS + 5_000,
      assignment,
      onClusterFailed: options.onClusterFailed,
    });
    this.watchdog = new HangWatchdog({
      table: this.table,
      logger,
      clock: options.clock ?? (() => performance.now()),
      killProcess: options.killProcess ?? ((pid) => process.kill(pid, 'SIGKILL')),
      runs: () => this.runs,
    });
    this.link.on('hello', (run) => this.onHello(run));
    this.link.on('status', (run, shards) => this.onStatus(run, shards));
    this.link.on('fatal', (run, shardId, code, reason) => {
      run.fatal = true;
      options.onFatal(run.clusterId, shardId, code, reason);
    });
    this.link.on('confirm', (run, epoch) => void this.onConfirm(run, epoch));
  }

  /** pm2 process name of a cluster. */
  public processName(clusterId: number): string {
    return this.table.nameOf(clusterId);
  }

  /** Clusters and their state, for heartbeats. */
  public report(): ClusterReport[] {
    return [...this.runs.values()].map(reportOf);
  }

  /** Ids of the clusters serving now, in order (what a rolling restart walks through). */
  public onlineClusterIds(): number[] {
    return [...this.runs.values()]
      .filter((run) => run.state === 'online' && !run.stopping)
      .map((run) => run.clusterId)
      .sort((a, b) => a - b);
  }

  /**
   * Makes the running clusters match `assignment`: stops ours that are no longer in it, adopts
   * wanted ones still running from an earlier CONTROL boot, starts the others, and re-sends the
   * assignment to ones that keep their shards (new epoch). Resolves once every new cluster has
   * started or is waiting for another host to give up its shards, except a reshard's new
   * generation: it starts one cluster after another in the background ({@link startInTurn}).
   */
  public async apply(assignment: HostAssignment): Promise<void> {
    const turn = ++this.applies;
    await this.listen();
    this.assignment = assignment;
    const current: RunGeneration = {
      shardCount: assignment.shardCount,
      standby: false,
      clusterIds: assignment.clusterIds,
    };
    const wanted = new Map(
      assignment.clusters.map((c) => [this.processName(c.clusterId), { ...c, generation: current }]),
    );
    if (assignment.next) {
      const generation: RunGeneration = {
        shardCount: assignment.next.shardCount,
        standby: true,
        clusterIds: assignment.next.clusterIds,
      };
      for (const c of assignment.next.clusters)
        wanted.set(this.processName(c.clusterId), { ...c, generation });
    }
    await this.removeStrays(new Set(wanted.keys()));
    for (const [name, run] of this.runs) {
      const next = wanted.get(name);
      const changed =
        !next ||
        next.shardIds.join() !== run.shardIds.join() ||
        next.generation.shardCount !== run.shardCount;
      // Stopped for good (its lease was lost) under an older plan: a newer plan that still wants it starts it afresh.
      const retry = run.state === 'stopped' && !run.fatal && assignment.epoch > run.epoch;
      if (changed || retry) await this.stopOne(name);
    }
    const processes = await this.table.list();
    const launches: Promise<void>[] = [];
    const standby: ClusterRun[] = [];
    for (const [name, cluster] of wanted) {
      const existing = this.runs.get(name);
      if (existing) {
        existing.epoch = assignment.epoch;
        // A reshard's new generation becomes the plan: it stops being standby, keeps running.
        existing.standby = cluster.generation.standby;
        existing.clusterIds = [...cluster.generation.clusterIds];
        if (this.unlaunched.has(existing)) {
          // Its turn had not come under the previous assignment: it comes under this one.
          if (existing.standby) standby.push(existing);
          else {
            this.unlaunched.delete(existing);
            launches.push(this.launcher.launch(existing, 'start'));
          }
          continue;
        }
        await this.link.sendAssign(existing).catch(() => undefined);
        continue;
      }
      const run = newRun(cluster.clusterId, cluster.shardIds, assignment.epoch, cluster.generation);
      this.runs.set(name, run);
      const proc = processes.get(name);
      if (proc?.['pm2_env']?.['status'] === 'online') {
        run.adopted = true;
        launches.push(this.launcher.launch(run, 'adopt', proc));
        continue;
      }
      // A leftover that is not running: start clean rather than revive pm2's old description.
      if (proc) await this.table.delete(proc['pm_id'] as number).catch(() => undefined);
      if (cluster.generation.standby) {
        this.unlaunched.add(run);
        standby.push(run);
      } else launches.push(this.launcher.launch(run, 'start'));
    }
    await Promise.all(launches);
    void this.startInTurn(standby, turn);
    if (!this.swept) {
      this.swept = true;
      void this.options.leases.sweep([...this.runs.values()].map((run) => this.launcher.claimOf(run)));
    }
  }

  /**
   * Starts a reshard's new generation one cluster at a time, each once the previous one booted
   * (its first status report), or exited, was stopped, or {@link STANDBY_BOOT_WAIT_MS} passed.
   * Processes booting side by side take every core for seconds (a CI run with 8 new clusters on
   * 2 cores): the old generation, which serves meanwhile, and this CONTROL, which renews its
   * leases and sends its keepalives, then got no CPU for up to 3 s, and every old cluster
   * fenced itself ("no keepalive from CONTROL") with no new shard ready to serve instead.
   * The new generation is not in a hurry: its shards identify a few per window anyway.
   */
  private async startInTurn(runs: readonly ClusterRun[], turn: number): Promise<void> {
    for (const run of runs) {
      // A newer assignment (a rollback, the end of the reshard) takes over the ones left.
      if (turn !== this.applies) return;
      if (!this.unlaunched.delete(run) || run.stopping) continue;
      const exits = run.exits;
      await this.launcher.launch(run, 'start');
      await waitForRun(
        run,
        () =>
          run.reportedReady ||
          run.stopping ||
          run.exits > exits ||
          run.state === 'failed' ||
          run.state === 'stopped',
        STANDBY_BOOT_WAIT_MS,
      );
    }
  }

  /** Stops every cluster of this CONTROL (stop-all). */
  public async stopAll(): Promise<void> {
    for (const name of [...this.runs.keys()]) await this.stopOne(name);
  }

  /** Stops the given clusters. */
  public async revoke(clusterIds: readonly number[]): Promise<void> {
    for (const id of clusterIds) {
      const name = this.processName(id);
      if (this.runs.has(name)) await this.stopOne(name);
    }
  }

  /**
   * Restarts one cluster without giving up its leases: `shutdown` over IPC (it closes its shards
   * for resume and saves their sessions), waits for the exit, starts it again. Resolves once the
   * new process is started (not yet ready; see {@link waitReady}).
   */
  public async restartCluster(clusterId: number): Promise<void> {
    const run = this.runs.get(this.processName(clusterId));
    if (!run || run.stopping || run.state === 'stopped')
      throw new DisclusterError(ErrorCode.InvalidOption, `cluster ${clusterId} does not run on this host`);
    if (run.restartRequested)
      throw new DisclusterError(ErrorCode.InvalidOption, `cluster ${clusterId} is already restarting`);
    await this.launcher.restart(run);
  }

  /** Resolves true once every shard of the cluster reported ready, false after `timeoutMs`. */
  public waitReady(clusterId: number, timeoutMs: number): Promise<boolean> {
    const run = this.runs.get(this.processName(clusterId));
    if (!run) return Promise.resolve(false);
    return waitForRun(run, () => isReady(run) || run.stopping, timeoutMs).then(() => isReady(run));
  }

  /** CONTROL cannot renew the cluster's leases: it must close its shards now (leaseKeeper.ts). */
  public fence(clusterId: number): void {
    const run = this.runs.get(this.processName(clusterId));
    if (!run || run.stopping) return;
    this.link.fence(run);
  }

  /** Every lease of these clusters was just renewed: each is told so (see ClusterLink.keepalive). */
  public keepalive(clusterIds: readonly number[], renewedAt?: number): void {
    this.link.keepalive(clusterIds, renewedAt);
  }

  /**
   * The lease time changed (MASTER set another bucket TTL): every cluster gets its assignment again,
   * same epoch, with the new `fenceAfterMs`, so one cut off from NATS fences by the new time too.
   */
  public leaseTimesChanged(): void {
    for (const run of this.runs.values()) {
      if (run.stopping) continue;
      this.sendAssign(run, 'warn', 'could not send the new fence time');
    }
  }

  /** Another host holds one of the cluster's shards: stop it for good. */
  public leaseLost(clusterId: number, holder: LeaseHolder): void {
    const run = this.runs.get(this.processName(clusterId));
    if (!run) return;
    void this.launcher.abandon(run, `shard ${holder.shardId} is now leased by host ${holder.hostId}`);
  }

  /** Clears timers; leaves the processes to pm2 (they keep serving while CONTROL restarts). */
  public close(): void {
    this.link.close();
    this.watchdog.stop();
    for (const run of this.runs.values()) {
      clearTimeout(run.timer);
      run.abort.abort();
    }
  }

  /** Stops a cluster the plan no longer wants, or revoked. */
  private async stopOne(name: string): Promise<void> {
    const run = this.runs.get(name);
    if (!run) return;
    this.runs.delete(name);
    this.unlaunched.delete(run);
    await this.launcher.stop(run);
  }

  /**
   * Deletes cluster processes of our namespace that this CONTROL does not track and the assignment
   * does not want: left over from before a CONTROL restart (`pm2 set` restarts the module while
   * its clusters keep running). Only names of our own pattern in our own namespace qualify.
   */
  private async removeStrays(wanted: ReadonlySet<string>): Promise<void> {
    for (const [name, proc] of await this.table.list()) {
      if (wanted.has(name) || this.runs.has(name)) continue;
      this.options.logger.info({ name }, 'removing a cluster process left from an earlier assignment');
      await this.table.delete(proc['pm_id'] as number);
    }
  }

  private async listen(): Promise<void> {
    if (this.listening) return;
    this.listening = true;
    const bus = await this.table.bus();
    bus.on('process:msg', (packet) => this.link.receive(packet));
    bus.on('process:event', (packet) => this.onProcessEvent(packet));
    this.watchdog.start();
  }

  /** Sends `run` its assignment without waiting; a failure is logged at `level` as `failure`. */
  private sendAssign(run: ClusterRun, level: 'warn' | 'error', failure: string): void {
    this.link
      .sendAssign(run)
      .catch((error: unknown) =>
        this.options.logger[level]({ err: error, name: this.processName(run.clusterId) }, failure),
      );
  }

  private onHello(run: ClusterRun): void {
    if (run.stopping) return;
    this.sendAssign(run, 'error', 'could not send the assignment');
  }

  private onStatus(run: ClusterRun, shards: ShardStatus[]): void {
    this.watchdog.reported(run, shards);
    run.reportedReady = true;
    if (!run.stopping) run.state = 'online';
    run.shards = shards;
    this.checkAdopted(run);
    notify(run);
    if (run.standby) this.options.onStandbyReport?.();
  }

  /** An adopted process serves what an earlier plan gave it: restart it if that is not this plan's shards. */
  private checkAdopted(run: ClusterRun): void {
    if (!run.adopted || !run.shards) return;
    run.adopted = false;
    const reported = run.shards.map((shard) => shard.id).sort((a, b) => a - b);
    const planned = [...run.shardIds].sort((a, b) => a - b);
    if (reported.join() === planned.join()) return;
    const name = this.processName(run.clusterId);
    this.options.logger.warn(
      { name, reported, planned },
      'adopted cluster serves other shards; restarting it',
    );
    this.restartCluster(run.clusterId).catch((error: unknown) =>
      this.options.logger.error({ err: error, name }, 'could not restart the adopted cluster'),
    );
  }

  /** After a fence the cluster asks whether it may reconnect: yes only if every lease is (again) ours. */
  private async onConfirm(run: ClusterRun, epoch: number): Promise<void> {
    if (run.confirming || run.stopping) return;
    const name = this.processName(run.clusterId);
    run.confirming = true;
    try {
      const outcome = await this.options.leases.confirm(run.clusterId);
      // NATS did not answer: the cluster asks again until it gets an answer.
      if (outcome === 'unknown' || run.stopping) return;
      const current = this.assignment?.epoch ?? epoch;
      // It only accepts an answer for the epoch it runs: bring it to ours first.
      if (epoch !== current) await this.link.sendAssign(run);
      const confirmed = outcome === 'confirmed';
      await this.link.confirmReply(run, current, confirmed);
      this.options.logger.info({ name, epoch: current, confirmed }, 'answered confirm');
      if (!confirmed) await this.launcher.abandon(run, 'leases not confirmed after a fence');
    } catch (error) {
      this.options.logger.error({ err: error, name }, 'could not answer confirm');
    } finally {
      run.confirming = false;
    }
  }

  /** pm2 lifecycle events of our processes: a new process is online, or one exited. */
  private onProcessEvent(packet: Pm2Json): void {
    const name = this.table.nameIn(packet);
    const run = name === undefined ? undefined : this.runs.get(name);
    if (!run) return;
    if (packet['event'] === 'online') {
      run.startedAt = Date.now();
      run.reportedReady = false;
      this.watchdog.forget(run);
      return;
    }
    if (packet['event'] !== 'exit') return;
    run.exits++;
    this.watchdog.forget(run);
    notify(run);
    if (run.stopping) return;
    if (run.restartRequested) {
      run.state = 'restarting';
      return;
    }
    this.launcher.exited(run);
  }
}
