import { EventEmitter } from 'node:events';
import {
  CLUSTER_CONTROL_TOPIC,
  type AssignMessage,
  type ClusterToControl,
} from 'discluster-protocol/clusterControl';
import { DisclusterError, ErrorCode } from 'discluster-protocol/errors';
import type { ShardStatus } from '../cluster/ShardStatus.js';
import { asError } from '../util/redact.js';
import type { ControlChannel } from './ControlChannel.js';
import { decodeControlMessage, describeAssignmentChange } from './controlMessages.js';

/** Events of {@link FleetLink}. */
export interface FleetLinkEvents {
  /**
   * A newer epoch of the running assignment (same shards, token and NATS access), or the running
   * epoch again with another `fenceAfterMs`.
   */
  updated: [assignment: AssignMessage];
  /**
   * CONTROL could not renew the shards' leases: close them for resume now, then `confirm()`.
   * Only after the first assignment (before it, there is nothing to close).
   */
  fence: [reason: string];
  /**
   * CONTROL renewed the shards' leases (`keepalive`, every TTL/4). Only after the first assignment;
   * the cluster fences when they stop coming (see `ControlKeepalive`).
   */
  keepalive: [epoch: number, renewedAt: number | undefined];
  /** CONTROL asks the process to close its shards for resume and exit. */
  shutdown: [reason: string];
  /** The IPC channel is gone: the pm2 daemon, and CONTROL with it, no longer manage this process. */
  disconnected: [];
  /** A message was dropped or could not be sent. Never contains a secret. */
  error: [error: Error];
  debug: [message: string];
}

export interface FleetLinkOptions {
  /** This process's cluster id (from `DISCLUSTER_CLUSTER_ID`). */
  readonly clusterId: number;
  /** How often an unanswered `hello` or `confirm` is sent again (CONTROL may have missed it). */
  readonly resendMs: number;
}

interface PendingConfirm {
  readonly promise: Promise<boolean>;
  readonly resolve: (confirmed: boolean) => void;
}

/**
 * The cluster side of the CONTROL ↔ cluster contract (`discluster-protocol` clusterControl): asks
 * for the assignment, validates everything CONTROL sends, keeps the epoch, and reports. Promises
 * it hands out are never rejected on close (the process is exiting; a rejection nobody awaits
 * any more would only surface as an unhandled rejection).
 */
export class FleetLink extends EventEmitter<FleetLinkEvents> {
  private current: AssignMessage | null = null;
  private readonly firstAssignment: Promise<AssignMessage>;
  private resolveFirst!: (assignment: AssignMessage) => void;
  private pendingConfirm: PendingConfirm | null = null;
  private helloTimer: NodeJS.Timeout | null = null;
  private confirmTimer: NodeJS.Timeout | null = null;
  private readonly unsubscribes: Array<() => void> = [];
  private closed = false;

  public constructor(
    private readonly channel: ControlChannel,
    private readonly options: FleetLinkOptions,
  ) {
    super();
    this.firstAssignment = new Promise((resolve) => (this.resolveFirst = resolve));
  }

  /** This process's cluster id. */
  public get clusterId(): number {
    return this.options.clusterId;
  }

  /** The running plan epoch (0 before the first assignment). */
  public get epoch(): number {
    return this.current?.epoch ?? 0;
  }

  /** Listens to CONTROL and says hello until an assignment arrives. */
  public start(): void {
    this.unsubscribes.push(
      this.channel.onMessage((packet) => this.onPacket(packet)),
      this.channel.onDisconnect(() => this.emit('disconnected')),
    );
    this.sendHello();
    this.helloTimer = setInterval(() => this.sendHello(), this.options.resendMs);
    this.helloTimer.unref();
  }

  /** Resolves with the first valid assignment for this cluster id. */
  public assignment(): Promise<AssignMessage> {
    return this.firstAssignment;
  }

  /**
   * The assignment in force: the first one, or the latest update of it (same shards, token and
   * NATS access; epoch, cluster list, gateway info and `fenceAfterMs` may have moved). Null before
   * the first.
   */
  public get latest(): AssignMessage | null {
    return this.current;
  }

  /** Reports every shard's state. */
  public sendStatus(shards: readonly ShardStatus[]): Promise<void> {
    return this.send({
      v: 1,
      type: 'status',
      clusterId: this.options.clusterId,
      epoch: this.epoch,
      shards: [...shards],
    });
  }

  /** Reports a fatal close: the fleet must stop rather than restart this cluster. */
  public sendFatal(shardId: number, code: number, reason: string): Promise<void> {
    const message: ClusterToControl = {
      v: 1,
      type: 'fatal',
      clusterId: this.options.clusterId,
      shardId,
      code,
      reason: reason.slice(0, 512),
    };
    return this.send(message);
  }

  /** Reports that the shards were closed because NATS was unreachable for the fence time. */
  public sendFenced(): Promise<void> {
    return this.send({ v: 1, type: 'fenced', clusterId: this.options.clusterId, epoch: this.epoch });
  }

  /**
   * Asks CONTROL whether the shards may reconnect under the running epoch after a fence, and
   * resolves with its answer. Asks again every `resendMs` until CONTROL answers for this epoch.
   */
  public confirm(): Promise<boolean> {
    if (!this.pendingConfirm) {
      let resolve!: (confirmed: boolean) => void;
      const promise = new Promise<boolean>((r) => (resolve = r));
      this.pendingConfirm = { promise, resolve };
      this.confirmTimer = setInterval(() => this.sendConfirm(), this.options.resendMs);
      this.confirmTimer.unref();
    }
    this.sendConfirm();
    return this.pendingConfirm.promise;
  }

  /** Stops listening. Pending promises stay pending (see the class comment). */
  public close(): void {
    this.closed = true;
    this.clearTimers();
    for (const unsubscribe of this.unsubscribes.splice(0)) unsubscribe();
  }

  private onPacket(packet: unknown): void {
    // pm2 also delivers its own packets (actions, signals as messages): only our topic is ours.
    if (typeof packet !== 'object' || packet === null) return;
    if ((packet as { topic?: unknown }).topic !== CLUSTER_CONTROL_TOPIC || this.closed) return;
    const decoded = decodeControlMessage((packet as { data?: unknown }).data);
    if (!decoded.ok) {
      this.fail(ErrorCode.InvalidMessage, `dropped a malformed message from CONTROL (${decoded.error})`);
      return;
    }
    const message = decoded.message;
    switch (message.type) {
      case 'assign':
        this.onAssign(message);
        break;
      case 'confirm-reply':
        this.onConfirmReply(message.epoch, message.confirmed);
        break;
      case 'shutdown':
        this.emit('shutdown', message.reason);
        break;
      case 'fence':
        if (!this.current) {
          this.emit('debug', `fence before any assignment (${message.reason}): no shard to close`);
          break;
        }
        this.emit('fence', message.reason);
        break;
      case 'keepalive':
        // Before the first assignment there are no shards whose leases it could speak for.
        if (this.current) this.emit('keepalive', message.epoch, message.renewedAt);
        break;
    }
  }

  private onAssign(message: AssignMessage): void {
    const { clusterId } = this.options;
    if (message.clusterId !== clusterId) {
      this.fail(
        ErrorCode.InvalidMessage,
        `ignored an assignment for cluster ${message.clusterId}: this process is cluster ${clusterId}`,
      );
      return;
    }
    const current = this.current;
    if (!current) {
      this.current = message;
      if (this.helloTimer) clearInterval(this.helloTimer);
      this.helloTimer = null;
      this.emit(
        'debug',
        `assignment received: epoch ${message.epoch}, shards ${message.shardIds.join(', ')}`,
      );
      this.resolveFirst(message);
      return;
    }
    if (message.epoch < current.epoch) {
      this.fail(
        ErrorCode.InvalidMessage,
        `ignored an assignment of epoch ${message.epoch}: this cluster runs epoch ${current.epoch}`,
      );
      return;
    }
    const change = describeAssignmentChange(current, message);
    if (change !== null) {
      // Changing shards in place would need a handoff with leases and a second session per shard;
      // CONTROL restarts the process instead, which RESUMEs every shard that stays.
      this.fail(
        ErrorCode.InvalidMessage,
        `CONTROL sent a changed assignment (epoch ${message.epoch}: ${change}); a running cluster ` +
          `does not change its assignment in place, it needs a restart (CONTROL restarts it)`,
      );
      return;
    }
    if (message.epoch === current.epoch) {
      if (message.fenceAfterMs === current.fenceAfterMs) {
        this.emit('debug', `assignment of epoch ${message.epoch} received again: nothing to do`);
        return;
      }
      // The fence time follows CONTROL's lease time, which CONTROL may change without a new plan.
      this.emit('debug', `assignment of epoch ${message.epoch} received again with another fenceAfterMs`);
    } else {
      this.emit('debug', `assignment moved to epoch ${message.epoch} with the same shards`);
    }
    this.current = message;
    this.emit('updated', message);
  }

  private onConfirmReply(epoch: number, confirmed: boolean): void {
    const pending = this.pendingConfirm;
    if (!pending) {
      this.emit('debug', `confirm-reply for epoch ${epoch} without a pending confirm: ignored`);
      return;
    }
    if (epoch !== this.epoch) {
      this.fail(
        ErrorCode.InvalidMessage,
        `ignored a confirm-reply for epoch ${epoch}: this cluster runs epoch ${this.epoch}`,
      );
      return;
    }
    this.pendingConfirm = null;
    if (this.confirmTimer) clearInterval(this.confirmTimer);
    this.confirmTimer = null;
    pending.resolve(confirmed);
  }

  private sendHello(): void {
    void this.send({ v: 1, type: 'hello', clusterId: this.options.clusterId });
  }

  private sendConfirm(): void {
    void this.send({ v: 1, type: 'confirm', clusterId: this.options.clusterId, epoch: this.epoch });
  }

  private async send(message: ClusterToControl): Promise<void> {
    if (this.closed) return;
    try {
      await this.channel.send(message);
    } catch (error) {
      this.emit('error', new Error(`could not send ${message.type} to CONTROL: ${asError(error).message}`));
    }
  }

  private fail(code: ErrorCode, message: string): void {
    this.emit('error', new DisclusterError(code, message));
  }

  private clearTimers(): void {
    if (this.helloTimer) clearInterval(this.helloTimer);
    if (this.confirmTimer) clearInterval(this.confirmTimer);
    this.helloTimer = null;
    this.confirmTimer = null;
  }
}
