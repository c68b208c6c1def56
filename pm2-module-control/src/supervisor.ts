import {
  CLUSTER_CONTROL_TOPIC,
  CLUSTER_ID_ENV,
  ClusterToControlSchema,
  DisclusterError,
  ErrorCode,
  type AssignMessage,
  type ClusterReport,
  type ControlToCluster,
  type GatewayBotSchema,
  type NatsAccess,
} from 'discluster-protocol';
import type { z } from 'zod';
import {
  isReady,
  newRun,
  notify,
  reportOf,
  waitForRun,
  type ClusterRun,
  type RunGeneration,
} from './clusterRun.js';
import type { LeaseClaim, LeaseHolder, ShardLeases } from './leaseKeeper.js';
import type { Logger } from './logger.js';
import type { Pm2Client, Pm2Json } from './pm2Api.js';
import { decideOnExit, type RestartPolicyOptions } from './restartPolicy.js';
import { WATCH_TICK_MS, hungFor, newReportWatch, recordReport, shardStates } from './silenceWatch.js';

/**
 * Runs one host's clusters as pm2 processes and keeps them running. Every process it manages lives
 * in namespace `discluster-<bot>` and is named `discluster-<bot>-cluster-<id>`; it acts only on
 * those names, so processes an operator started by hand are never touched. No cluster starts
 * before its shards' leases are ours (leaseKeeper.ts).
 */

/** What CONTROL runs, after it opened the token. */
export interface HostAssignment {
  readonly epoch: number;
  readonly shardCount: number;
  readonly gateway: z.infer<typeof GatewayBotSchema>;
  readonly clusterIds: readonly number[];
  readonly clusters: readonly PlannedClusterOf[];
  readonly token: string;
  /** A reshard's new generation on this host, run beside `clusters` in standby. */
  readonly next?: {
    readonly shardCount: number;
    readonly clusterIds: readonly number[];
    readonly clusters: readonly PlannedClusterOf[];
  };
}

interface PlannedClusterOf {
  readonly clusterId: number;
  readonly shardIds: readonly number[];
}

export interface SupervisorOptions {
  readonly pm2: Pm2Client;
  readonly bot: string;
  /** Absolute path of the bot's entry file. */
  readonly script: string;
  readonly nats: NatsAccess;
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

/** pm2's `kill_timeout` for clusters: shards close for resume and sessions are saved on SIGINT. */
const KILL_TIMEOUT_MS = 15_000;

type LaunchKind = 'start' | 'restart' | 'adopt';

/** Supervises the clusters of one assignment at a time. */
export class ClusterSupervisor {
  private readonly namespace: string;
  private readonly runs = new Map<string, ClusterRun>();
  private readonly shutdownTimeoutMs: number;
  private assignment: HostAssignment | undefined;
  private listening = false;
  private swept = false;
  /** Keepalives being sent, and the newest round's clusters waiting behind them (see keepalive()). */
  private keepaliveSending: Promise<void> | null = null;
  private keepaliveNext: readonly number[] | null = null;
  private readonly clock: () => number;
  private readonly killProcess: (pid: number) => void;
  private watchTimer: NodeJS.Timeout | undefined;
  private lastWatchTick = 0;

  public constructor(private readonly options: SupervisorOptions) {
    this.namespace = `discluster-${options.bot}`;
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? KILL_TIMEOUT_MS + 5_000;
    this.clock = options.clock ?? (() => performance.now());
    this.killProcess = options.killProcess ?? ((pid) => process.kill(pid, 'SIGKILL'));
  }

  /** pm2 process name of a cluster. */
  public processName(clusterId: number): string {
    return `${this.namespace}-cluster-${clusterId}`;
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
   * started or is waiting for another host to give up its shards.
   */
  public async apply(assignment: HostAssignment): Promise<void> {
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
    const processes = await this.ourProcesses();
    const launches: Promise<void>[] = [];
    for (const [name, cluster] of wanted) {
      const existing = this.runs.get(name);
      if (existing) {
        existing.epoch = assignment.epoch;
        // A reshard's new generation becomes the plan: it stops being standby, keeps running.
        existing.standby = cluster.generation.standby;
        existing.clusterIds = [...cluster.generation.clusterIds];
        await this.sendAssign(name, existing).catch(() => undefined);
        continue;
      }
      const run = newRun(cluster.clusterId, cluster.shardIds, assignment.epoch, cluster.generation);
      this.runs.set(name, run);
      const proc = processes.get(name);
      if (proc?.['pm2_env']?.['status'] === 'online') {
        run.adopted = true;
        launches.push(this.launch(name, run, 'adopt', proc));
        continue;
      }
      // A leftover that is not running: start clean rather than revive pm2's old description.
      if (proc) await this.options.pm2.delete(proc['pm_id'] as number).catch(() => undefined);
      launches.push(this.launch(name, run, 'start'));
    }
    await Promise.all(launches);
    if (!this.swept) {
      this.swept = true;
      void this.options.leases.sweep([...this.runs.values()].map((run) => this.claimOf(run)));
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
    const name = this.processName(clusterId);
    const run = this.runs.get(name);
    if (!run || run.stopping || run.state === 'stopped')
      throw new DisclusterError(ErrorCode.InvalidOption, `cluster ${clusterId} does not run on this host`);
    if (run.restartRequested)
      throw new DisclusterError(ErrorCode.InvalidOption, `cluster ${clusterId} is already restarting`);
    run.restartRequested = true;
    clearTimeout(run.timer);
    try {
      await run.pending.catch(() => undefined);
      const proc = await this.procOf(name);
      const exitsBefore = run.exits;
      let stillRunning = false;
      if (proc?.['pm2_env']?.['status'] === 'online') {
        const exited = waitForRun(run, () => run.exits > exitsBefore || run.stopping, this.shutdownTimeoutMs);
        await this.sendToCluster(name, { v: 1, type: 'shutdown', reason: 'restart requested' });
        stillRunning = !(await exited);
        if (stillRunning)
          this.options.logger.warn({ name }, 'cluster did not exit after shutdown; pm2 stops it');
      }
      if (run.stopping) return;
      this.options.logger.info({ name }, 'starting the cluster again');
      run.failedStarts = 0;
      run.fatal = false;
      await this.launch(name, run, proc ? 'restart' : 'start');
      // pm2 stopped the old process itself: its exit must not pass for a crash of the new one.
      if (stillRunning) await waitForRun(run, () => run.exits > exitsBefore, KILL_TIMEOUT_MS);
    } finally {
      run.restartRequested = false;
    }
  }

  /** Resolves true once every shard of the cluster reported ready, false after `timeoutMs`. */
  public waitReady(clusterId: number, timeoutMs: number): Promise<boolean> {
    const run = this.runs.get(this.processName(clusterId));
    if (!run) return Promise.resolve(false);
    return waitForRun(run, () => isReady(run) || run.stopping, timeoutMs).then(() => isReady(run));
  }

  /** CONTROL cannot renew the cluster's leases: it must close its shards now (leaseKeeper.ts). */
  public fence(clusterId: number): void {
    const name = this.processName(clusterId);
    const run = this.runs.get(name);
    if (!run || run.stopping) return;
    this.options.logger.warn({ name }, 'telling the cluster to fence');
    this.sendToCluster(name, { v: 1, type: 'fence', reason: 'CONTROL cannot renew the shard leases' }).catch(
      (error: unknown) => this.options.logger.error({ err: error, name }, 'could not send fence'),
    );
  }

  /**
   * Every lease of these clusters was just renewed: tell each (`keepalive`), so it knows CONTROL is
   * alive and renewing (a cluster that stops hearing it fences itself). Not to clusters being
   * stopped, nor to processes that are not online. One pm2 list per round, not one per cluster;
   * a round that comes while the previous one is still being sent goes out right after it.
   */
  public keepalive(clusterIds: readonly number[]): void {
    this.keepaliveNext = clusterIds;
    if (this.keepaliveSending) return;
    this.keepaliveSending = (async () => {
      for (let next = this.keepaliveNext; next !== null; next = this.keepaliveNext) {
        this.keepaliveNext = null;
        await this.sendKeepalives(next);
      }
    })()
      .catch((error: unknown) => this.options.logger.warn({ err: error }, 'could not send keepalives'))
      .finally(() => (this.keepaliveSending = null));
  }

  /** Another host holds one of the cluster's shards: stop it for good. */
  public leaseLost(clusterId: number, holder: LeaseHolder): void {
    const name = this.processName(clusterId);
    const run = this.runs.get(name);
    if (!run) return;
    void this.abandon(name, run, `shard ${holder.shardId} is now leased by host ${holder.hostId}`);
  }

  /** Clears timers; leaves the processes to pm2 (they keep serving while CONTROL restarts). */
  public close(): void {
    this.keepaliveNext = null;
    clearInterval(this.watchTimer);
    for (const run of this.runs.values()) {
      clearTimeout(run.timer);
      run.abort.abort();
    }
  }

  private claimOf(run: ClusterRun): LeaseClaim {
    return {
      clusterId: run.clusterId,
      shardIds: run.shardIds,
      shardCount: run.shardCount,
      epoch: this.assignment?.epoch ?? run.epoch,
    };
  }

  /**
   * Takes the cluster's leases, then starts, restarts or adopts its process. Resolves once it is
   * running or blocked (another host holds a shard, or NATS fails): it goes on in the background.
   */
  private launch(name: string, run: ClusterRun, launchKind: LaunchKind, proc?: Pm2Json): Promise<void> {
    let kind = launchKind;
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    if (kind !== 'adopt') run.state = 'starting';
    run.pending = (async () => {
      let outcome = await this.options.leases.acquire(this.claimOf(run), {
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
        this.options.logger.warn(
          { name, shardId: outcome.holder.shardId, holder: outcome.holder.hostId },
          'a running process of this cluster has a shard leased by another host: replacing it once the shard is free',
        );
        run.restartRequested = true; // its exit is expected, not a crash
        await this.shutDownProcess(name, run, `shard ${outcome.holder.shardId} is leased by another host`);
        run.restartRequested = false;
        if (run.stopping) return;
        kind = 'start';
        run.adopted = false;
        run.state = 'starting';
        notify(run);
        outcome = await this.options.leases.acquire(this.claimOf(run), {
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
          name,
          run,
          `shard ${outcome.holder.shardId} is leased by host ${outcome.holder.hostId}`,
          true,
        );
        return;
      }
      if (kind === 'adopt') {
        this.options.logger.info({ name, pid: proc?.['pid'] }, 'adopting a running cluster process');
        const uptime = proc?.['pm2_env']?.['pm_uptime'];
        run.startedAt = typeof uptime === 'number' ? uptime : Date.now();
        await this.sendAssign(name, run);
        // Its leases were just taken over: say so now rather than a renewal round later, so the
        // time CONTROL was away does not grow by one (the cluster fences after fenceAfterMs without).
        await this.sendToCluster(name, this.keepaliveMessage(run));
        return;
      }
      const pmId = kind === 'restart' ? await this.pmIdOf(name) : undefined;
      if (pmId === undefined) await this.start(name, run);
      else await this.options.pm2.restart(pmId);
    })()
      .catch((error: unknown) =>
        this.options.logger.error({ err: error, name }, 'could not start the cluster'),
      )
      .finally(settle);
    return settled;
  }

  private async start(name: string, run: ClusterRun): Promise<void> {
    await this.options.pm2.start({
      name,
      namespace: this.namespace,
      script: this.options.script,
      // Only the cluster id: the token and NATS credentials go over pm2 IPC (promise 4).
      env: { [CLUSTER_ID_ENV]: String(run.clusterId) },
      // pm2 copies the caller's whole environment into the app unless filtered, and CONTROL's
      // environment holds its own settings (`discluster-control` JSON, nats_pass). Every key
      // contains '', so this filters all of it; `filter_env: true` is ignored by pm2 7 here.
      filter_env: [''],
      // CONTROL, not pm2, decides about restarts (restartPolicy.ts).
      autorestart: false,
      kill_timeout: KILL_TIMEOUT_MS,
    });
  }

  /** Stops a cluster the plan no longer wants (or revoked), then frees its shards for the next owner. */
  private async stopOne(name: string): Promise<void> {
    const run = this.runs.get(name);
    if (!run) return;
    run.stopping = true;
    run.abort.abort();
    clearTimeout(run.timer);
    this.runs.delete(name);
    notify(run);
    await run.pending.catch(() => undefined);
    try {
      const pmId = await this.pmIdOf(name);
      // pm2 answers once the process is gone (SIGINT: shards close for resume; SIGKILL after kill_timeout).
      if (pmId !== undefined) await this.options.pm2.delete(pmId);
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
  private async abandon(name: string, run: ClusterRun, reason: string, fromLaunch = false): Promise<void> {
    if (run.stopping) return;
    run.stopping = true;
    run.state = 'stopped';
    run.abort.abort();
    clearTimeout(run.timer);
    notify(run);
    this.options.logger.error({ name, reason }, 'stopping the cluster for good (no restart)');
    if (!fromLaunch) await run.pending.catch(() => undefined);
    await this.shutDownProcess(name, run, reason);
    await this.options.leases.release(run.clusterId);
  }

  /** `shutdown` over IPC (shards close for resume), wait for the exit, remove the process. */
  private async shutDownProcess(name: string, run: ClusterRun, reason: string): Promise<void> {
    try {
      const pmId = await this.pmIdOf(name);
      if (pmId !== undefined) {
        const exitsBefore = run.exits;
        const exited = waitForRun(run, () => run.exits > exitsBefore, this.shutdownTimeoutMs);
        await this.sendToCluster(name, { v: 1, type: 'shutdown', reason: reason.slice(0, 512) });
        await exited;
        await this.options.pm2.delete(pmId);
      }
    } catch (error) {
      this.options.logger.warn({ err: error, name }, 'could not stop the cluster process');
    }
  }

  /** Our namespace's cluster processes by name (never anyone else's). */
  private async ourProcesses(): Promise<Map<string, Pm2Json>> {
    const pattern = new RegExp(`^${this.namespace}-cluster-\\d+$`);
    const found = new Map<string, Pm2Json>();
    for (const proc of await this.options.pm2.list()) {
      const name = String(proc['name']);
      if (proc['pm2_env']?.['namespace'] === this.namespace && pattern.test(name)) found.set(name, proc);
    }
    return found;
  }

  /**
   * Deletes cluster processes of our namespace that this CONTROL does not track and the assignment
   * does not want: left over from before a CONTROL restart (`pm2 set` restarts the module while
   * its clusters keep running). Only names of our own pattern in our own namespace qualify.
   */
  private async removeStrays(wanted: ReadonlySet<string>): Promise<void> {
    for (const [name, proc] of await this.ourProcesses()) {
      if (wanted.has(name) || this.runs.has(name)) continue;
      this.options.logger.info({ name }, 'removing a cluster process left from an earlier assignment');
      await this.options.pm2.delete(proc['pm_id'] as number);
    }
  }

  private async listen(): Promise<void> {
    if (this.listening) return;
    this.listening = true;
    const bus = await this.options.pm2.bus();
    bus.on('process:msg', (packet) => this.onMessage(packet));
    bus.on('process:event', (packet) => this.onEvent(packet));
    this.lastWatchTick = this.clock();
    this.watchTimer = setInterval(() => this.watchClusters(), WATCH_TICK_MS);
    this.watchTimer.unref();
  }

  /**
   * The hung-cluster watchdog (silenceWatch.ts): a cluster process that stopped reporting for
   * several of its report intervals while pm2 still sees it online has a blocked event loop. It is
   * SIGKILLed (a blocked loop never runs a SIGINT handler, and pm2 would wait `kill_timeout` for
   * nothing); its exit then goes through the restart policy like any crash, and the new process
   * RESUMEs the shards. Skipped while CONTROL itself was too busy to read the pm2 bus.
   */
  private watchClusters(): void {
    const now = this.clock();
    const late = now - this.lastWatchTick > WATCH_TICK_MS * 4;
    this.lastWatchTick = now;
    // CONTROL's own loop stalled: reports may be waiting unread on the bus, so silence proves nothing.
    if (late) return;
    for (const [name, run] of this.runs) {
      if (run.killing || run.stopping || run.restartRequested || run.state !== 'online') continue;
      const hung = hungFor(run.watch, now);
      if (hung) void this.killHung(name, run, hung.limitMs);
    }
  }

  private async killHung(name: string, run: ClusterRun, limitMs: number): Promise<void> {
    run.killing = true;
    const watch = run.watch;
    try {
      const proc = await this.procOf(name);
      // A pm2 daemon that was itself stalled answers the list late and forwards the reports it held
      // meanwhile: give them one tick to arrive before deciding.
      await new Promise((resolve) => setTimeout(resolve, WATCH_TICK_MS));
      const pid: unknown = proc?.['pid'];
      const silentMs = this.clock() - (watch.lastAt ?? this.clock());
      // Re-checked after the pm2 call: a report came, the process was replaced, or it is being stopped.
      if (
        run.watch !== watch ||
        silentMs < limitMs ||
        // Stopped meanwhile, or CONTROL is closing (close() aborts every run).
        run.abort.signal.aborted ||
        run.stopping ||
        run.restartRequested ||
        proc?.['pm2_env']?.['status'] !== 'online' ||
        typeof pid !== 'number' ||
        pid <= 0
      ) {
        run.killing = false;
        return;
      }
      this.options.logger.error(
        {
          name,
          pid,
          silentMs: Math.round(silentMs),
          limitMs,
          reportIntervalMs: Math.round(watch.longestGapMs),
        },
        'cluster stopped reporting (event loop blocked?): killing it; it restarts and resumes its shards',
      );
      this.killProcess(pid);
    } catch (error) {
      run.killing = false;
      this.options.logger.error({ err: error, name }, 'could not kill the silent cluster');
    }
  }

  private ours(packet: Pm2Json): ClusterRun | undefined {
    const proc = packet['process'] as Pm2Json | undefined;
    if (!proc || proc['namespace'] !== this.namespace) return undefined;
    return this.runs.get(String(proc['name']));
  }

  private onMessage(packet: Pm2Json): void {
    const run = this.ours(packet);
    if (!run) return;
    const name = this.processName(run.clusterId);
    const parsed = ClusterToControlSchema.safeParse(packet['data']);
    if (!parsed.success || parsed.data.clusterId !== run.clusterId) {
      this.options.logger.warn({ name }, 'dropped an invalid message from a cluster');
      return;
    }
    const message = parsed.data;
    switch (message.type) {
      case 'hello':
        if (run.stopping) return;
        this.sendAssign(name, run).catch((error: unknown) =>
          this.options.logger.error({ err: error, name }, 'could not send the assignment'),
        );
        return;
      case 'status':
        recordReport(run.watch, shardStates(message.shards), this.clock());
        run.reportedReady = true;
        if (!run.stopping) run.state = 'online';
        run.shards = message.shards;
        this.checkAdopted(name, run);
        notify(run);
        if (run.standby) this.options.onStandbyReport?.();
        return;
      case 'fatal':
        run.fatal = true;
        this.options.onFatal(run.clusterId, message.shardId, message.code, message.reason);
        return;
      case 'fenced':
        this.options.logger.warn({ name, epoch: message.epoch }, 'cluster fenced its shards');
        return;
      case 'confirm':
        void this.onConfirm(name, run, message.epoch);
        return;
    }
  }

  /** An adopted process serves what an earlier plan gave it: restart it if that is not this plan's shards. */
  private checkAdopted(name: string, run: ClusterRun): void {
    if (!run.adopted || !run.shards) return;
    run.adopted = false;
    const reported = run.shards.map((shard) => shard.id).sort((a, b) => a - b);
    const planned = [...run.shardIds].sort((a, b) => a - b);
    if (reported.join() === planned.join()) return;
    this.options.logger.warn(
      { name, reported, planned },
      'adopted cluster serves other shards; restarting it',
    );
    this.restartCluster(run.clusterId).catch((error: unknown) =>
      this.options.logger.error({ err: error, name }, 'could not restart the adopted cluster'),
    );
  }

  /** After a fence the cluster asks whether it may reconnect: yes only if every lease is (again) ours. */
  private async onConfirm(name: string, run: ClusterRun, epoch: number): Promise<void> {
    if (run.confirming || run.stopping) return;
    run.confirming = true;
    try {
      const outcome = await this.options.leases.confirm(run.clusterId);
      // NATS did not answer: the cluster asks again until it gets an answer.
      if (outcome === 'unknown' || run.stopping) return;
      const current = this.assignment?.epoch ?? epoch;
      // It only accepts an answer for the epoch it runs: bring it to ours first.
      if (epoch !== current) await this.sendAssign(name, run);
      const confirmed = outcome === 'confirmed';
      await this.sendToCluster(name, { v: 1, type: 'confirm-reply', epoch: current, confirmed });
      this.options.logger.info({ name, epoch: current, confirmed }, 'answered confirm');
      if (!confirmed) await this.abandon(name, run, 'leases not confirmed after a fence');
    } catch (error) {
      this.options.logger.error({ err: error, name }, 'could not answer confirm');
    } finally {
      run.confirming = false;
    }
  }

  private async sendAssign(name: string, run: ClusterRun): Promise<void> {
    const assignment = this.assignment;
    if (!assignment) return;
    const message: AssignMessage = {
      v: 1,
      type: 'assign',
      epoch: assignment.epoch,
      clusterId: run.clusterId,
      shardIds: [...run.shardIds],
      shardCount: run.shardCount,
      bot: this.options.bot,
      token: assignment.token,
      gateway: assignment.gateway,
      clusterIds: [...run.clusterIds],
      ...(run.standby ? { standby: true } : {}),
      nats: this.options.nats,
      // Cut off from NATS, it closes its shards before its leases can expire (promise 2).
      fenceAfterMs: this.options.leases.fenceAfterMs,
    };
    await this.sendToCluster(name, message);
  }

  private keepaliveMessage(run: ClusterRun): ControlToCluster {
    return { v: 1, type: 'keepalive', epoch: this.assignment?.epoch ?? run.epoch };
  }

  private async sendKeepalives(clusterIds: readonly number[]): Promise<void> {
    const processes = await this.ourProcesses();
    await Promise.all(
      clusterIds.map(async (clusterId) => {
        const name = this.processName(clusterId);
        const run = this.runs.get(name);
        if (!run || run.stopping) return;
        const proc = processes.get(name);
        if (proc?.['pm2_env']?.['status'] !== 'online') return;
        try {
          await this.options.pm2.send(
            proc['pm_id'] as number,
            CLUSTER_CONTROL_TOPIC,
            this.keepaliveMessage(run),
          );
        } catch (error) {
          // It may be exiting right now; the next round tries again.
          this.options.logger.debug({ err: error, name }, 'could not send keepalive');
        }
      }),
    );
  }

  private async sendToCluster(name: string, message: ControlToCluster): Promise<void> {
    const pmId = await this.pmIdOf(name);
    if (pmId === undefined) return;
    await this.options.pm2.send(pmId, CLUSTER_CONTROL_TOPIC, message);
  }

  private async procOf(name: string): Promise<Pm2Json | undefined> {
    return (await this.options.pm2.list()).find(
      (proc) => proc['name'] === name && proc['pm2_env']?.['namespace'] === this.namespace,
    );
  }

  private async pmIdOf(name: string): Promise<number | undefined> {
    const found = await this.procOf(name);
    return typeof found?.['pm_id'] === 'number' ? found['pm_id'] : undefined;
  }

  private onEvent(packet: Pm2Json): void {
    const run = this.ours(packet);
    if (!run) return;
    const name = this.processName(run.clusterId);
    if (packet['event'] === 'online') {
      run.startedAt = Date.now();
      run.reportedReady = false;
      run.watch = newReportWatch();
      run.killing = false;
      return;
    }
    if (packet['event'] !== 'exit') return;
    run.exits++;
    run.watch = newReportWatch();
    run.killing = false;
    notify(run);
    if (run.stopping) return;
    if (run.restartRequested) {
      run.state = 'restarting';
      return;
    }
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
        void this.launch(name, run, 'restart');
      }, decision.delayMs);
      return;
    }
    run.state = decision.action === 'give-up' ? 'failed' : 'stopped';
    if (decision.action === 'give-up')
      this.options.onClusterFailed(run.clusterId, decision.attempts, decision.reason);
    // Its process is gone for good: free its shards for whoever gets them next.
    void this.options.leases.release(run.clusterId);
  }
}
