import type { GatewayDispatchPayload } from 'discord-api-types/v10';
import type { RestoredSnapshot, SnapshotLoad } from './GuildSnapshotStore.js';
import { restoredDispatches, type RestoredSession } from './restoredDispatch.js';

type Deliver = (packet: GatewayDispatchPayload, shardId: number, sessionSetup: boolean) => void;
type Held = readonly [packet: GatewayDispatchPayload, sessionSetup: boolean];

export interface ResumeRestorerHooks {
  readonly shardCount: number;
  readonly load: (shardId: number) => Promise<SnapshotLoad>;
  /** The session being resumed (its id and URL go into the restored READY). */
  readonly session: (shardId: number) => RestoredSession | null;
  /** Where events go next (the handover gate); restored ones count as the shard's session setup. */
  readonly deliver: Deliver;
  /** A snapshot is about to be delivered: status guild counts and the recorder take it as the base. */
  readonly restored: (shardId: number, snapshot: RestoredSnapshot) => void;
  /** The hold ended (restored events delivered, held ones next): the shard may now count as ready. */
  readonly released: (shardId: number) => void;
  readonly onDebug: (message: string) => void;
  readonly onError: (error: Error) => void;
}

interface Pending {
  readonly held: Held[];
  readonly load: Promise<SnapshotLoad>;
  releasing: boolean;
}

/**
 * Puts a shard's restored READY and GUILD_CREATEs before anything else of it. A shard that starts
 * resuming in a process that never saw its READY has its events held (Discord's replay, then
 * RESUMED) while its snapshot loads; at RESUMED the restored dispatches go first, then what was held.
 * If the resume fails and the shard identifies, its READY ends the hold and nothing is restored:
 * Discord sends the guilds itself.
 */
export class ResumeRestorer {
  /** Shards whose library state this process built (their READY, or a restore): never held again. */
  private readonly started = new Set<number>();
  private readonly pending = new Map<number, Pending>();

  public constructor(private readonly hooks: ResumeRestorerHooks) {}

  /** The shard is about to RESUME a stored session (called before its first event can arrive). */
  public resuming(shardId: number): void {
    if (this.started.has(shardId) || this.pending.has(shardId)) return;
    this.pending.set(shardId, { held: [], load: this.hooks.load(shardId), releasing: false });
  }

  public offer(packet: GatewayDispatchPayload, shardId: number, sessionSetup: boolean): void {
    const pending = this.pending.get(shardId);
    if (pending === undefined) {
      if (packet.t === 'READY') this.started.add(shardId);
      this.hooks.deliver(packet, shardId, sessionSetup);
      return;
    }
    pending.held.push([packet, sessionSetup]);
    if (pending.releasing) return;
    if (packet.t === 'READY') this.release(shardId, pending, null);
    else if (packet.t === 'RESUMED') {
      pending.releasing = true;
      void pending.load.then((load) => this.release(shardId, pending, load));
    }
  }

  /** Whether the shard's events are held (its RESUMED state change should wait for the release). */
  public holding(shardId: number): boolean {
    return this.pending.has(shardId);
  }

  /** Stops holding (the cluster stops): what is held is dropped with the shards. */
  public close(): void {
    this.pending.clear();
  }

  private release(shardId: number, pending: Pending, load: SnapshotLoad | null): void {
    if (this.pending.get(shardId) !== pending) return;
    this.started.add(shardId);
    if (load?.kind === 'ok') {
      this.hooks.restored(shardId, load.snapshot);
      const packets = restoredDispatches(
        load.snapshot,
        [shardId, this.hooks.shardCount],
        this.hooks.session(shardId),
      );
      for (const packet of packets) this.hooks.deliver(packet, shardId, true);
      this.hooks.onDebug(
        `shard ${shardId} resumed: restored ${load.snapshot.guilds.length} guild(s) from its snapshot`,
      );
    } else if (load?.kind === 'none') {
      this.hooks.onDebug(`shard ${shardId} resumed without a guild snapshot: no guilds restored`);
    } else if (load?.kind === 'corrupt') {
      this.hooks.onError(
        new Error(`guild snapshot of shard ${shardId} unusable, no guilds restored: ${load.reason}`),
      );
    }
    this.pending.delete(shardId);
    this.hooks.released(shardId);
    for (const [packet, sessionSetup] of pending.held) this.hooks.deliver(packet, shardId, sessionSetup);
  }
}
