import { EventEmitter } from 'node:events';
import {
  ClusterToControlSchema,
  type AssignMessage,
  type ControlToCluster,
  type NatsAccess,
} from 'discluster-protocol';
import type { Logger } from '../logger.js';
import type { Pm2Json } from '../pm2/daemonClient.js';
import type { ProcessTable } from '../pm2/processTable.js';
import type { ClusterRun, ShardStatus } from './clusterRun.js';
import type { HostAssignment } from './hostAssignment.js';

/** Messages of a cluster process, validated and matched to its run. */
export interface ClusterLinkEvents {
  /** The process (new, or restarted) asks for its assignment. */
  hello: [run: ClusterRun];
  /** Every shard's state: on each change, and at least every `statusIntervalMs`. */
  status: [run: ClusterRun, shards: ShardStatus[]];
  /** A shard got a fatal gateway close: the fleet must stop rather than restart the cluster. */
  fatal: [run: ClusterRun, shardId: number, code: number, reason: string];
  /** After a fence: may its shards reconnect under this epoch? Asked again until answered. */
  confirm: [run: ClusterRun, epoch: number];
}

export interface ClusterLinkOptions {
  readonly table: ProcessTable;
  readonly bot: string;
  readonly nats: NatsAccess;
  readonly logger: Logger;
  /** The run of one of our processes, by name; undefined for a process CONTROL does not run. */
  readonly runOf: (name: string) => ClusterRun | undefined;
  /** The assignment in force (undefined before the first). */
  readonly assignment: () => HostAssignment | undefined;
  /** The fence time in force: half the lease time, which may change at run time (leaseKeeper.ts). */
  readonly fenceAfterMs: () => number;
  /** The local address a cluster binds its sockets to (`source_addresses`), or undefined. */
  readonly sourceAddressOf?: (clusterId: number) => string | undefined;
}

/**
 * CONTROL's side of the CONTROL ↔ cluster contract (`discluster-protocol` clusterControl), the
 * counterpart of the SDK's `FleetLink`: validates what clusters send over pm2 IPC and hands it on
 * as events, and sends them their assignment, keepalives, fences, confirm replies and shutdowns.
 * It decides nothing: the supervisor does.
 */
export class ClusterLink extends EventEmitter<ClusterLinkEvents> {
  /** Keepalives being sent, and the newest round's clusters waiting behind them (see keepalive()). */
  private keepaliveSending: Promise<void> | null = null;
  private keepaliveNext: readonly number[] | null = null;

  public constructor(private readonly options: ClusterLinkOptions) {
    super();
  }

  /** A `process:msg` packet from pm2's bus (anyone's: only our processes' are read). */
  public receive(packet: Pm2Json): void {
    const ourName = this.options.table.nameIn(packet);
    const run = ourName === undefined ? undefined : this.options.runOf(ourName);
    if (!run) return;
    const name = this.options.table.nameOf(run.clusterId);
    const parsed = ClusterToControlSchema.safeParse(packet['data']);
    if (!parsed.success || parsed.data.clusterId !== run.clusterId) {
      this.options.logger.warn({ name }, 'dropped an invalid message from a cluster');
      return;
    }
    const message = parsed.data;
    switch (message.type) {
      case 'hello':
        this.emit('hello', run);
        return;
      case 'status':
        this.emit('status', run, message.shards);
        return;
      case 'fatal':
        this.emit('fatal', run, message.shardId, message.code, message.reason);
        return;
      case 'fenced':
        this.options.logger.warn({ name, epoch: message.epoch }, 'cluster fenced its shards');
        return;
      case 'confirm':
        this.emit('confirm', run, message.epoch);
        return;
    }
  }

  /** The assignment in force, for this cluster (the token and NATS access go only this way). */
  public async sendAssign(run: ClusterRun): Promise<void> {
    const assignment = this.options.assignment();
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
      fenceAfterMs: this.options.fenceAfterMs(),
      // It renews these leases and says so: silence from here on means fence (promise 2).
      keepalives: true,
    };
    const sourceAddress = this.options.sourceAddressOf?.(run.clusterId);
    if (sourceAddress !== undefined) message.sourceAddress = sourceAddress;
    await this.send(run, message);
  }

  /** One keepalive now (its leases were just taken over), outside the renewal rounds. */
  public sendKeepalive(run: ClusterRun): Promise<void> {
    return this.send(run, this.keepaliveMessage(run));
  }

  /** CONTROL cannot renew the cluster's leases: it must close its shards now. */
  public fence(run: ClusterRun): void {
    const name = this.options.table.nameOf(run.clusterId);
    this.options.logger.warn({ name }, 'telling the cluster to fence');
    this.send(run, { v: 1, type: 'fence', reason: 'CONTROL cannot renew the shard leases' }).catch(
      (error: unknown) => this.options.logger.error({ err: error, name }, 'could not send fence'),
    );
  }

  public confirmReply(run: ClusterRun, epoch: number, confirmed: boolean): Promise<void> {
    return this.send(run, { v: 1, type: 'confirm-reply', epoch, confirmed });
  }

  /** The SDK closes the shards for resume, saves their sessions and exits 0. */
  public shutdown(run: ClusterRun, reason: string): Promise<void> {
    return this.send(run, { v: 1, type: 'shutdown', reason: reason.slice(0, 512) });
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

  /** Drops a keepalive round still waiting to go out. */
  public close(): void {
    this.keepaliveNext = null;
  }

  private keepaliveMessage(run: ClusterRun): ControlToCluster {
    return { v: 1, type: 'keepalive', epoch: this.options.assignment()?.epoch ?? run.epoch };
  }

  private async sendKeepalives(clusterIds: readonly number[]): Promise<void> {
    const { table } = this.options;
    const processes = await table.list();
    await Promise.all(
      clusterIds.map(async (clusterId) => {
        const name = table.nameOf(clusterId);
        const run = this.options.runOf(name);
        if (!run || run.stopping) return;
        const proc = processes.get(name);
        if (proc?.['pm2_env']?.['status'] !== 'online') return;
        try {
          await table.send(proc['pm_id'] as number, this.keepaliveMessage(run));
        } catch (error) {
          // It may be exiting right now; the next round tries again.
          this.options.logger.debug({ err: error, name }, 'could not send keepalive');
        }
      }),
    );
  }

  private send(run: ClusterRun, message: ControlToCluster): Promise<void> {
    return this.options.table.sendTo(this.options.table.nameOf(run.clusterId), message);
  }
}
