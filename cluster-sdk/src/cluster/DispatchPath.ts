import type { NatsConnection } from '@nats-io/transport-node';
import type { GatewayDispatchPayload } from 'discord-api-types/v10';
import type { GuildSnapshots } from '../cache/guildSnapshots.js';
import { HandoverGate } from '../handover/HandoverGate.js';
import { HandoverResponder } from '../handover/HandoverResponder.js';
import type { ClusterAssignment } from './ClusterOptions.js';
import { handoverOverflowError } from './clusterErrors.js';
import type { ClusterBuildContext } from './clusterSeams.js';
import type { ClusterShards } from './ClusterShards.js';
import { openClusterSnapshots } from './clusterSnapshots.js';

/** Where the path ends and what it reports. */
export interface DispatchPathHost {
  /** Bot code's `dispatch` event. */
  readonly deliver: (packet: GatewayDispatchPayload, shardId: number) => void;
  readonly onDebug: (message: string) => void;
  readonly onError: (error: Error) => void;
}

/**
 * The way of a shard's dispatch to bot code: through the guild snapshots' restorer when they are
 * on (a resumed shard's restored guilds first), then through the reshard {@link HandoverGate}
 * (serving, or holding and recording during a handover MASTER drives).
 */
export class DispatchPath {
  public readonly gate: HandoverGate;
  #snapshots: GuildSnapshots | null = null;
  #responder: HandoverResponder | null = null;
  readonly #host: DispatchPathHost;

  public constructor(assignment: Pick<ClusterAssignment, 'standby'>, host: DispatchPathHost) {
    this.#host = host;
    this.gate = new HandoverGate(host.deliver, {
      standby: assignment.standby === true,
      onOverflow: (list, limit) => host.onError(handoverOverflowError(list, limit)),
    });
  }

  /** Puts guild snapshots (when on and their bucket opens) in front of the gate. */
  public async openSnapshots(
    context: Pick<ClusterBuildContext, 'nc' | 'assignment' | 'settings'>,
    shards: Pick<ClusterShards, 'sessions' | 'tracker'>,
    changed: () => void,
  ): Promise<void> {
    this.#snapshots = await openClusterSnapshots({
      nc: context.nc,
      assignment: context.assignment,
      settings: context.settings,
      session: (shardId) => shards.sessions?.cachedSessionInfo?.(shardId),
      tracker: shards.tracker,
      gate: this.gate,
      changed,
      onDebug: this.#host.onDebug,
      onError: this.#host.onError,
    });
  }

  /** Fleet only: answers the handover steps MASTER sends this cluster during a reshard. */
  public answerHandover(nc: NatsConnection, assignment: Omit<ClusterAssignment, 'token'>): void {
    this.#responder = new HandoverResponder(
      nc,
      assignment.bot,
      assignment.clusterId,
      this.gate,
      this.#host.onDebug,
      assignment.kvReplicas ?? 1,
    );
    this.#responder.start();
  }

  public offer(packet: GatewayDispatchPayload, shardId: number, sessionSetup: boolean): void {
    (this.#snapshots?.restorer ?? this.gate).offer(packet, shardId, sessionSetup);
  }

  /** A shard is about to RESUME: its events wait for its restored guilds (set before the RESUME is sent). */
  public resuming(shardId: number): void {
    this.#snapshots?.restorer.resuming(shardId);
  }

  /** True while a resumed shard's events are held for its restored guilds. */
  public holding(shardId: number): boolean {
    return this.#snapshots?.restorer.holding(shardId) ?? false;
  }

  /** True once a reshard cut this generation over: its sessions end for good. */
  public get cutOver(): boolean {
    return this.gate.mode === 'cut';
  }

  /** Stops answering MASTER; called before the shards close. */
  public closeResponder(): void {
    this.#responder?.close();
  }

  /** After the shards closed: the gate, then the snapshots (their last writes awaited). */
  public async close(): Promise<void> {
    this.gate.close();
    this.#snapshots?.restorer.close();
    await this.#snapshots?.recorder.close();
  }
}
