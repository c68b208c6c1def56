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
  /** Keepalives waiting for a pm2 list, and the clusters waiting behind it (see keepalive()). */
  private keepaliveSending: Promise<void> | null = null;
  private keepaliveNext = new Set<number>();
  /** clusterId → when the renewal its next keepalive vouches for was sent (wall clock). */
  private readonly renewedAt = new Map<number, number>();
  /**
   * pm_id of each of our online processes as the last list showed it, with its run and the run's
   * exits then: valid for that run while no exit was seen since (pm2 keeps a pm_id across restarts).
   */
  private readonly pmIds = new Map<
    string,
    { readonly pmId: number; readonly run: ClusterRun; readonly exits: number }
  >();

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
    // Vouched for by the take-over just done, not by an older round's renewal.
    this.renewedAt.delete(run.clusterId);
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
   * stopped, nor to processes that are not online. At once to a process whose pm_id the last pm2
   * list gave (no exit since): a list takes 0.3-0.6 s on a loaded machine, time the cluster's
   * silence watch counts. The others wait for one list, shared by every cluster that comes
   * meanwhile.
   */
  public keepalive(clusterIds: readonly number[], renewedAt?: number): void {
    for (const clusterId of clusterIds) {
      const name = this.options.table.nameOf(clusterId);
      const run = this.options.runOf(name);
      if (!run || run.stopping) continue;
      if (renewedAt === undefined) this.renewedAt.delete(clusterId);
      else this.renewedAt.set(clusterId, renewedAt);
      const known = this.pmIds.get(name);
      if (known && known.run === run && known.exits === run.exits)
        void this.sendKeepaliveTo(name, run, known.pmId);
      else this.keepaliveNext.add(clusterId);
    }
    if (this.keepaliveSending || this.keepaliveNext.size === 0) return;
    this.keepaliveSending = (async () => {
      while (this.keepaliveNext.size > 0) {
        const next = [...this.keepaliveNext];
        this.keepaliveNext.clear();
        await this.sendKeepalives(next);
      }
    })()
      .catch((error: unknown) => this.options.logger.warn({ err: error }, 'could not send keepalives'))
      .finally(() => (this.keepaliveSending = null));
  }

  /** Drops the keepalives still waiting for a list. */
  public close(): void {
    this.keepaliveNext.clear();
    this.renewedAt.clear();
  }

  private keepaliveMessage(run: ClusterRun): ControlToCluster {
    const renewedAt = this.renewedAt.get(run.clusterId);
    return {
      v: 1,
      type: 'keepalive',
      epoch: this.options.assignment()?.epoch ?? run.epoch,
      ...(renewedAt !== undefined ? { renewedAt } : {}),
    };
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
        if (proc?.['pm2_env']?.['status'] !== 'online' || typeof proc['pm_id'] !== 'number') {
          this.pmIds.delete(name);
          return;
        }
        this.pmIds.set(name, { pmId: proc['pm_id'], run, exits: run.exits });
        await this.sendKeepaliveTo(name, run, proc['pm_id']);
      }),
    );
  }

  private async sendKeepaliveTo(name: string, run: ClusterRun, pmId: number): Promise<void> {
    try {
      await this.options.table.send(pmId, this.keepaliveMessage(run));
    } catch (error) {
      // It may be exiting right now; the next round lists again.
      this.pmIds.delete(name);
      this.options.logger.debug({ err: error, name }, 'could not send keepalive');
    }
  }

  private send(run: ClusterRun, message: ControlToCluster): Promise<void> {
    return this.options.table.sendTo(this.options.table.nameOf(run.clusterId), message);
  }
}
