import {
  CLUSTER_CONTROL_TOPIC,
  CLUSTER_ID_ENV,
  ClusterToControlSchema,
  type AssignMessage,
  type ClusterReport,
  type GatewayBotSchema,
  type NatsAccess,
  type ShardStatusSchema,
} from 'discluster-protocol';
import type { z } from 'zod';
import type { Logger } from './logger.js';
import type { Pm2Client, Pm2Json } from './pm2Api.js';
import { decideOnExit, type RestartPolicyOptions } from './restartPolicy.js';

/**
 * Runs one host's clusters as pm2 processes and keeps them running. Every process it manages lives
 * in namespace `discluster-<bot>` and is named `discluster-<bot>-cluster-<id>`; it acts only on
 * those names, so processes an operator started by hand are never touched.
 */

/** What CONTROL runs, after it opened the token. */
export interface HostAssignment {
  readonly epoch: number;
  readonly shardCount: number;
  readonly gateway: z.infer<typeof GatewayBotSchema>;
  readonly clusterIds: readonly number[];
  readonly clusters: readonly { readonly clusterId: number; readonly shardIds: readonly number[] }[];
  readonly token: string;
}

export interface SupervisorOptions {
  readonly pm2: Pm2Client;
  readonly bot: string;
  /** Absolute path of the bot's entry file. */
  readonly script: string;
  readonly nats: NatsAccess;
  readonly policy: RestartPolicyOptions;
  readonly logger: Logger;
  /** Called once when a cluster is given up on. */
  readonly onClusterFailed: (clusterId: number, attempts: number, reason: string) => void;
  /** Called when a cluster reports a fatal gateway close. */
  readonly onFatal: (clusterId: number, shardId: number, code: number, reason: string) => void;
}

interface ClusterRun {
  readonly clusterId: number;
  readonly shardIds: readonly number[];
  state: ClusterReport['state'];
  restarts: number;
  failedStarts: number;
  startedAt: number;
  reportedReady: boolean;
  fatal: boolean;
  stopping: boolean;
  shards?: z.infer<typeof ShardStatusSchema>[];
  timer?: NodeJS.Timeout;
}

/** Supervises the clusters of one assignment at a time. */
export class ClusterSupervisor {
  private readonly namespace: string;
  private readonly runs = new Map<string, ClusterRun>();
  private assignment: HostAssignment | undefined;
  private listening = false;

  public constructor(private readonly options: SupervisorOptions) {
    this.namespace = `discluster-${options.bot}`;
  }

  /** pm2 process name of a cluster. */
  public processName(clusterId: number): string {
    return `${this.namespace}-cluster-${clusterId}`;
  }

  /** Clusters and their state, for heartbeats. */
  public report(): ClusterReport[] {
    return [...this.runs.values()].map((run) => ({
      clusterId: run.clusterId,
      state: run.state,
      restarts: run.restarts,
      shardIds: [...run.shardIds],
      ...(run.shards ? { shards: run.shards } : {}),
    }));
  }

  /**
   * Makes the running clusters match `assignment`: stops ours that are no longer in it, starts
   * the new ones, and re-sends the assignment to ones that keep their shards (new epoch).
   */
  public async apply(assignment: HostAssignment): Promise<void> {
    await this.listen();
    this.assignment = assignment;
    const wanted = new Map(assignment.clusters.map((c) => [this.processName(c.clusterId), c]));
    await this.removeStrays(new Set(wanted.keys()));
    for (const [name, run] of this.runs) {
      const next = wanted.get(name);
      if (!next || next.shardIds.join() !== run.shardIds.join()) await this.stopOne(name);
    }
    for (const [name, cluster] of wanted) {
      const existing = this.runs.get(name);
      if (existing) {
        await this.sendAssign(name, existing).catch(() => undefined);
        continue;
      }
      const run: ClusterRun = {
        clusterId: cluster.clusterId,
        shardIds: [...cluster.shardIds],
        state: 'starting',
        restarts: 0,
        failedStarts: 0,
        startedAt: Date.now(),
        reportedReady: false,
        fatal: false,
        stopping: false,
      };
      this.runs.set(name, run);
      await this.launch(name, run);
    }
  }

  /** Stops every cluster of this CONTROL (stop-all, revoke of everything, shutdown). */
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

  /** Clears timers; leaves the processes to pm2 (they keep serving while CONTROL restarts). */
  public close(): void {
    for (const run of this.runs.values()) clearTimeout(run.timer);
  }

  /**
   * Deletes cluster processes of our namespace that this CONTROL does not track and the assignment
   * does not want: left over from before a CONTROL restart (`pm2 set` restarts the module while
   * its clusters keep running). Only names of our own pattern in our own namespace qualify.
   */
  private async removeStrays(wanted: ReadonlySet<string>): Promise<void> {
    const pattern = new RegExp(`^${this.namespace}-cluster-\\d+$`);
    for (const proc of await this.options.pm2.list()) {
      const name = String(proc['name']);
      if (proc['pm2_env']?.['namespace'] !== this.namespace || !pattern.test(name)) continue;
      if (wanted.has(name) || this.runs.has(name)) continue;
      this.options.logger.info({ name }, 'removing a cluster process left from an earlier assignment');
      await this.options.pm2.delete(proc['pm_id'] as number);
    }
  }

  private async launch(name: string, run: ClusterRun): Promise<void> {
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
      // Shards close for resume and sessions are saved on SIGINT; give them time.
      kill_timeout: 15_000,
    });
  }

  private async stopOne(name: string): Promise<void> {
    const run = this.runs.get(name);
    if (!run) return;
    run.stopping = true;
    clearTimeout(run.timer);
    this.runs.delete(name);
    try {
      const pmId = await this.pmIdOf(name);
      if (pmId !== undefined) await this.options.pm2.delete(pmId);
    } catch (error) {
      this.options.logger.warn({ err: error, name }, 'could not delete cluster process');
    }
  }

  private async listen(): Promise<void> {
    if (this.listening) return;
    this.listening = true;
    const bus = await this.options.pm2.bus();
    bus.on('process:msg', (packet) => this.onMessage(packet));
    bus.on('process:event', (packet) => this.onEvent(packet));
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
        this.sendAssign(name, run).catch((error: unknown) =>
          this.options.logger.error({ err: error, name }, 'could not send the assignment'),
        );
        return;
      case 'status':
        run.reportedReady = true;
        run.state = 'online';
        run.shards = message.shards;
        return;
      case 'fatal':
        run.fatal = true;
        this.options.onFatal(run.clusterId, message.shardId, message.code, message.reason);
        return;
      default:
        // fenced / confirm: lease handling is MASTER-side work not built yet (issue 4 part 5+).
        return;
    }
  }

  private async sendAssign(name: string, run: ClusterRun): Promise<void> {
    const assignment = this.assignment;
    if (!assignment) return;
    const pmId = await this.pmIdOf(name);
    if (pmId === undefined) return;
    const message: AssignMessage = {
      v: 1,
      type: 'assign',
      epoch: assignment.epoch,
      clusterId: run.clusterId,
      shardIds: [...run.shardIds],
      shardCount: assignment.shardCount,
      bot: this.options.bot,
      token: assignment.token,
      gateway: assignment.gateway,
      clusterIds: [...assignment.clusterIds],
      nats: this.options.nats,
    };
    await this.options.pm2.send(pmId, CLUSTER_CONTROL_TOPIC, message);
  }

  private async pmIdOf(name: string): Promise<number | undefined> {
    const found = (await this.options.pm2.list()).find(
      (proc) => proc['name'] === name && proc['pm2_env']?.['namespace'] === this.namespace,
    );
    return typeof found?.['pm_id'] === 'number' ? found['pm_id'] : undefined;
  }

  private onEvent(packet: Pm2Json): void {
    const run = this.ours(packet);
    if (!run) return;
    const name = this.processName(run.clusterId);
    if (packet['event'] === 'online') {
      run.startedAt = Date.now();
      run.reportedReady = false;
      return;
    }
    if (packet['event'] !== 'exit' || run.stopping) return;
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
        run.state = 'starting';
        this.pmIdOf(name)
          .then((pmId) => (pmId === undefined ? undefined : this.options.pm2.restart(pmId)))
          .catch((error: unknown) => this.options.logger.error({ err: error, name }, 'restart failed'));
      }, decision.delayMs);
    } else if (decision.action === 'give-up') {
      run.state = 'failed';
      this.options.onClusterFailed(run.clusterId, decision.attempts, decision.reason);
    } else {
      run.state = 'stopped';
    }
  }
}
