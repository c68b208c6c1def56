import type { KV, KvWatchEntry } from '@nats-io/kv';
import { restGlobalSlotKey } from 'discluster-protocol/kv';
import { RestGlobalSlotRecordSchema } from 'discluster-protocol/restRecords';
import { decodeRecord, encodeRecord } from 'discluster-protocol/schemas';
import { describeError, isCasConflict } from 'discluster-runtime';
import { delay } from '../util/delay.js';
import { Notifier } from '../util/Notifier.js';
import { chooseGlobalSlot, type GlobalSlotView } from './globalSlotPolicy.js';

const SLOT_PREFIX = 'g.';
// After this many lost races in a row, wait a little: the watch will have caught up meanwhile.
const CONFLICTS_BEFORE_PAUSE = 8;
/**
 * A request that leaves later than its slot's recorded time by more than this (a stalled process, a
 * slow NATS) moves the slot's time to when it really left, so the slot's next use waits for that.
 */
export const LATE_TOLERANCE_MS = 10;

/** A claimed slot: what {@link GlobalSlots.sentLate} needs to move its time. */
export interface GlobalClaim {
  readonly slot: number;
  /** When the request may be sent (recorded in the slot): never before. */
  readonly at: number;
  /** When the slot was chosen (epoch ms). */
  readonly claimedAt: number;
  readonly revision: number;
}

interface KnownSlot {
  at: number;
  revision: number;
}

/**
 * The fleet's global limit in KV: `perSecond` slot keys, each holding when a request was last sent
 * on it (see chooseGlobalSlot). A watch keeps this process's view fresh; a claim is a
 * compare-and-set on the slot's revision, so two processes never both get one slot.
 */
export class GlobalSlots {
  private readonly known = new Map<number, KnownSlot>();
  private readonly changed = new Notifier();
  private queue: Promise<unknown> = Promise.resolve();
  private watcher: { stop(): void } | null = null;
  private closed = false;

  public constructor(
    private readonly kv: KV,
    private readonly perSecond: number,
    private readonly spacingMs: number,
    private readonly onDebug: (message: string) => void,
  ) {}

  /** Starts the watch; resolves once it delivered every slot's last value. */
  public async start(): Promise<void> {
    const watcher = await this.kv.watch({ key: `${SLOT_PREFIX}>` });
    this.watcher = watcher;
    let initialised!: () => void;
    const ready = new Promise<void>((resolve) => (initialised = resolve));
    void (async () => {
      try {
        for await (const entry of watcher) {
          this.apply(entry);
          if (watcher.getPending() === 0) initialised();
        }
      } catch (error) {
        this.onDebug(`global slot watch ended: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        initialised();
      }
    })();
    // An empty bucket delivers nothing: don't wait for a first entry that never comes.
    await Promise.race([ready, delay(250, new AbortController().signal)]);
  }

  /**
   * Waits for a slot and claims it for a request sent at the claim's `at` (up to `leadMs` from
   * now: the caller's own round trips before sending), never before. This process's requests
   * queue here and claim one at a time, so only its first competes with the other processes. Throws
   * what NATS throws (the caller falls back to its local share) and `signal.reason` when the
   * request is given up.
   */
  public take(signal: AbortSignal, leadMs = 0): Promise<GlobalClaim> {
    const turn = this.queue.then(() => this.claim(signal, leadMs));
    // The next request waits for this one's claim, not for its outcome.
    this.queue = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn;
  }

  private async claim(signal: AbortSignal, leadMs: number): Promise<GlobalClaim> {
    for (let conflicts = 0; ;) {
      if (this.closed) throw new Error('closed');
      signal.throwIfAborted();
      const now = Date.now();
      const choice = chooseGlobalSlot(this.views(), now, this.spacingMs, Math.random, leadMs);
      if (choice.kind === 'wait') {
        // Woken early when the watch shows a slot change (a process gave one back or the clock moved).
        await delay(choice.until - now, signal, this.changed);
        continue;
      }
      const key = restGlobalSlotKey(choice.slot);
      const known = this.known.get(choice.slot);
      try {
        const record = encodeRecord({ v: 1, at: choice.sendAt });
        const revision = known
          ? await this.kv.update(key, record, known.revision)
          : await this.kv.create(key, record);
        this.remember(choice.slot, choice.sendAt, revision);
        return { slot: choice.slot, at: choice.sendAt, claimedAt: now, revision };
      } catch (error) {
        if (!isCasConflict(error)) throw error;
        // Someone claimed it first: read what they wrote, then choose again.
        const entry = await this.kv.get(key);
        if (entry) this.apply(entry);
        if (++conflicts % CONFLICTS_BEFORE_PAUSE === 0) await delay(1 + Math.random() * 5, signal);
      }
    }
  }

  /**
   * The claimed request left at `sentAt`, later than the slot says: record that (compare-and-set on
   * the claim's revision), so nobody uses the slot again within a second of the real send. Resolves
   * with the claim as it now stands (for a later, even later report), or null when the slot could
   * not be moved: someone claimed it meanwhile, possible only when the request left a whole spacing
   * late (a process starved for a second).
   */
  public async sentLate(claim: GlobalClaim, sentAt: number): Promise<GlobalClaim | null> {
    try {
      const revision = await this.kv.update(
        restGlobalSlotKey(claim.slot),
        encodeRecord({ v: 1, at: sentAt }),
        claim.revision,
      );
      this.remember(claim.slot, sentAt, revision);
      return { ...claim, at: sentAt, revision };
    } catch (error) {
      this.onDebug(`could not move global slot ${claim.slot} to its real send time: ${describeError(error)}`);
      return null;
    }
  }

  public close(): void {
    this.closed = true;
    this.watcher?.stop();
  }

  private views(): GlobalSlotView[] {
    const views: GlobalSlotView[] = [];
    for (let slot = 0; slot < this.perSecond; slot++) views.push({ slot, at: this.known.get(slot)?.at ?? 0 });
    return views;
  }

  private apply(entry: Pick<KvWatchEntry, 'key' | 'value' | 'revision' | 'operation'>): void {
    const slot = Number(entry.key.slice(SLOT_PREFIX.length));
    if (!Number.isSafeInteger(slot) || slot < 0 || slot >= this.perSecond) return;
    if (entry.operation !== 'PUT') {
      // Purged or deleted: it is free, and the next claim must create it.
      this.known.delete(slot);
      this.changed.notify();
      return;
    }
    const decoded = decodeRecord(RestGlobalSlotRecordSchema, entry.value);
    // An unreadable value is overwritten by the next claim on its revision.
    this.remember(slot, decoded.ok ? decoded.value.at : 0, entry.revision);
  }

  private remember(slot: number, at: number, revision: number): void {
    const known = this.known.get(slot);
    if (known && known.revision >= revision) return;
    this.known.set(slot, { at, revision });
  }
}
