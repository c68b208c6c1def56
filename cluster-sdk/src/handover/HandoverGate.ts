import type { GatewayDispatchPayload } from 'discord-api-types/v10';
import { RingBuffer } from '../util/RingBuffer.js';
import { handoverEventKey } from './eventKey.js';

/**
 * Where a cluster's gateway events go during a reshard (issue 7): bot code must see each event
 * once although two generations of sessions receive it.
 *
 * - `serving`: deliver (the normal state).
 * - `recording` (old generation, handover step `record`): deliver, and keep each event's key.
 * - `cut` (old generation, step `cutover`): deliver nothing; the new generation delivers.
 * - `standby` (new generation while it warms up): deliver only the shard's own session setup
 *   (READY, its guilds' GUILD_CREATE); drop the rest, which the old generation delivers.
 * - `buffering` (new generation, step `buffer`): hold events until `go-live`.
 *
 * `goLive(keys)` delivers the held events whose keys the old generation did not deliver (keys are
 * a multiset: an event seen twice is delivered twice), then serves; delivered keys not matched yet
 * (events that reach this cluster later than the old one) drop their late copy until `graceMs`.
 */
export type HandoverMode = 'serving' | 'recording' | 'cut' | 'standby' | 'buffering';

type Deliver = (packet: GatewayDispatchPayload, shardId: number) => void;

interface HeldEvent {
  readonly packet: GatewayDispatchPayload;
  readonly shardId: number;
  readonly key: string;
}

/** Which list overflowed: events held for `go-live`, or keys recorded for `cutover`. */
export type HandoverOverflow = 'held' | 'recorded';

export interface HandoverGateOptions {
  readonly standby: boolean;
  /** Held events beyond this are dropped oldest-first (and counted); default 1,000,000. */
  readonly maxHeld?: number;
  /**
   * Recorded keys beyond this are dropped oldest-first (and counted): the new generation then
   * delivers those events a second time. Default 1,000,000 (about 60 MB of keys).
   */
  readonly maxRecorded?: number;
  /** Called on the first overflow of each list in a handover (log it: events are lost or doubled). */
  readonly onOverflow?: (list: HandoverOverflow, limit: number) => void;
  /** How long delivered-but-unmatched keys drop late copies after `go-live` (default 60 s). */
  readonly graceMs?: number;
}

export class HandoverGate {
  private modeValue: HandoverMode;
  private readonly recorded: RingBuffer<string>;
  private readonly held: RingBuffer<HeldEvent>;
  private late = new Map<string, number>();
  private lateTimer: NodeJS.Timeout | undefined;
  private readonly graceMs: number;
  private readonly onOverflow: (list: HandoverOverflow, limit: number) => void;
  private readonly maxHeld: number;
  private readonly maxRecorded: number;
  /** Events dropped while cut over (the new generation delivers them). */
  public droppedWhileCut = 0;
  /** Held events dropped over the limit: lost to bot code. */
  public overflowed = 0;
  /** Recorded keys dropped over the limit: those events may reach bot code twice. */
  public recordedOverflowed = 0;

  public constructor(
    private readonly deliver: Deliver,
    options: HandoverGateOptions,
  ) {
    this.modeValue = options.standby ? 'standby' : 'serving';
    this.maxHeld = options.maxHeld ?? 1_000_000;
    this.maxRecorded = options.maxRecorded ?? 1_000_000;
    this.held = new RingBuffer(this.maxHeld);
    this.recorded = new RingBuffer(this.maxRecorded);
    this.graceMs = options.graceMs ?? 60_000;
    this.onOverflow = options.onOverflow ?? (() => undefined);
  }

  public get mode(): HandoverMode {
    return this.modeValue;
  }

  /** One dispatch; `sessionSetup`: READY or a GUILD_CREATE of a guild READY listed (ShardStatus). */
  public offer(packet: GatewayDispatchPayload, shardId: number, sessionSetup: boolean): void {
    switch (this.modeValue) {
      case 'serving':
        if (this.late.size > 0 && !sessionSetup && this.dropLate(handoverEventKey(packet.t, packet.d)))
          return;
        this.deliver(packet, shardId);
        return;
      case 'recording':
        if (!sessionSetup && this.recorded.push(handoverEventKey(packet.t, packet.d))) {
          if (this.recordedOverflowed++ === 0) this.onOverflow('recorded', this.maxRecorded);
        }
        this.deliver(packet, shardId);
        return;
      case 'cut':
        this.droppedWhileCut++;
        return;
      case 'standby':
        if (sessionSetup) this.deliver(packet, shardId);
        return;
      case 'buffering':
        if (sessionSetup) {
          this.deliver(packet, shardId);
          return;
        }
        if (this.held.push({ packet, shardId, key: handoverEventKey(packet.t, packet.d) })) {
          if (this.overflowed++ === 0) this.onOverflow('held', this.maxHeld);
        }
        return;
    }
  }

  /** Step `record`: from serving, start keeping delivered keys (idempotent). */
  public record(): void {
    if (this.modeValue === 'serving') {
      this.recorded.clear();
      this.modeValue = 'recording';
    }
  }

  /** Step `cutover`: deliver nothing more; returns every key delivered since `record` (idempotent). */
  public cutOver(): readonly string[] {
    if (this.modeValue === 'recording' || this.modeValue === 'serving') this.modeValue = 'cut';
    return this.recorded.toArray();
  }

  /** Step `buffer`: from standby, hold events (idempotent). */
  public buffer(): void {
    if (this.modeValue === 'standby') {
      this.held.clear();
      this.modeValue = 'buffering';
    }
  }

  /**
   * Step `go-live`: delivers the held events not in `delivered` (a multiset), in arrival order, and
   * serves from now on. From standby (nothing held) it just serves. Idempotent once serving.
   */
  public goLive(delivered: Iterable<string>): { events: number; duplicates: number } {
    if (this.modeValue !== 'buffering' && this.modeValue !== 'standby') return { events: 0, duplicates: 0 };
    const counts = new Map<string, number>();
    for (const key of delivered) counts.set(key, (counts.get(key) ?? 0) + 1);
    const held = this.held.toArray();
    this.held.clear();
    this.modeValue = 'serving';
    let events = 0;
    let duplicates = 0;
    for (const event of held) {
      const left = counts.get(event.key);
      if (left !== undefined) {
        duplicates++;
        if (left <= 1) counts.delete(event.key);
        else counts.set(event.key, left - 1);
        continue;
      }
      events++;
      this.deliver(event.packet, event.shardId);
    }
    this.late = counts;
    clearTimeout(this.lateTimer);
    if (counts.size > 0) {
      this.lateTimer = setTimeout(() => this.late.clear(), this.graceMs);
      this.lateTimer.unref();
    }
    return { events, duplicates };
  }

  /** Step `abort` (a rolled-back reshard): the old generation delivers again, the new one stands by. */
  public abort(): void {
    if (this.modeValue === 'recording' || this.modeValue === 'cut') {
      this.modeValue = 'serving';
      this.recorded.clear();
    } else if (this.modeValue === 'buffering') {
      this.modeValue = 'standby';
      this.held.clear();
    }
  }

  /** The assignment no longer says standby (the reshard finished without this cluster's go-live). */
  public serve(): void {
    if (this.modeValue === 'standby' || this.modeValue === 'buffering') this.goLive([]);
  }

  /** Events held now (for tests and debug). */
  public get heldCount(): number {
    return this.held.length;
  }

  public close(): void {
    clearTimeout(this.lateTimer);
  }

  private dropLate(key: string): boolean {
    const left = this.late.get(key);
    if (left === undefined) return false;
    if (left <= 1) this.late.delete(key);
    else this.late.set(key, left - 1);
    return true;
  }
}
