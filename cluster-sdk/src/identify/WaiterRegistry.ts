import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/transport-node';
import { identifyWaiterKey } from 'discluster-protocol/kv';
import {
  IdentifyWaiterRecordSchema,
  decodeRecord,
  encodeRecord,
  type IdentifyWaiterRecord,
} from 'discluster-protocol/schemas';
import { describeError } from 'discluster-runtime';
import { delay } from '../util/delay.js';
import type { Notifier } from '../util/Notifier.js';

/** A shard of this instance waiting to identify. */
export interface OwnWaiter {
  readonly waiterId: string;
  readonly shardId: number;
  readonly shardCount: number;
  readonly rateLimitKey: number;
}

interface SeenWaiter {
  readonly record: IdentifyWaiterRecord;
  /** Local monotonic time we last saw it written: liveness never depends on other clocks. */
  seenAt: number;
}

/** Where the registry reports. */
export interface WaiterRegistryHooks {
  readonly debug: (message: string) => void;
  /** True once the NATS connection is closed for good: background loops stop. */
  readonly connectionClosed: () => boolean;
}

const WATCH_RETRY_MS = 1000;

/**
 * Who is waiting to identify, fleet-wide, so lower shard ids of a rate-limit key go first.
 * Own waiters are announced in a short-TTL bucket and re-announced every third of the TTL;
 * other instances' announcements arrive through one KV watch. An announcement not refreshed
 * within the TTL counts as gone (nats-server 2.9 sends no event when max_age removes it).
 * Best effort by design: the rate limit itself never depends on this.
 */
export class WaiterRegistry {
  private readonly own = new Map<string, OwnWaiter>();
  private readonly seen = new Map<string, SeenWaiter>();
  private readonly refreshTimer: NodeJS.Timeout;
  private watcher: QueuedIterator<KvWatchEntry> | undefined;
  private closed = false;
  private readonly stop = new AbortController();
  private readonly watching: Promise<void>;

  public constructor(
    private readonly kv: KV,
    private readonly instanceId: string,
    private readonly ttlMs: number,
    private readonly changed: Notifier,
    private readonly hooks: WaiterRegistryHooks,
  ) {
    this.refreshTimer = setInterval(() => this.refresh(), Math.max(1, Math.floor(ttlMs / 3)));
    this.refreshTimer.unref();
    this.watching = this.watchLoop();
  }

  /** Announces a waiter (locally at once, fleet-wide as soon as the write lands). */
  public add(waiter: OwnWaiter): void {
    this.own.set(waiter.waiterId, waiter);
    this.announce(waiter);
  }

  /** Withdraws a waiter; resolves when the withdrawal is written (or failed, reported as debug). */
  public async remove(waiterId: string): Promise<void> {
    const waiter = this.own.get(waiterId);
    if (!waiter) return;
    this.own.delete(waiterId);
    this.changed.notify();
    try {
      await this.kv.delete(this.keyOf(waiter));
    } catch (error) {
      // The TTL removes it anyway.
      this.hooks.debug(`Could not withdraw waiter of shard ${waiter.shardId}: ${describeError(error)}`);
    }
  }

  /** True if a live waiter with a lower shard id waits for the same rate-limit key and shard count. */
  public hasLowerWaiter(me: OwnWaiter): boolean {
    for (const other of this.own.values()) {
      if (sameQueue(other, me) && other.shardId < me.shardId) return true;
    }
    const now = performance.now();
    for (const [key, { record, seenAt }] of this.seen) {
      if (now - seenAt >= this.ttlMs) {
        this.seen.delete(key);
        continue;
      }
      // Our own announcements come back through the watch; the local map is authoritative for them.
      if (record.instanceId === this.instanceId) continue;
      if (sameQueue(record, me) && record.shardId < me.shardId) return true;
    }
    return false;
  }

  /** Stops watching and refreshing; withdraws remaining own waiters (best effort). */
  public async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.refreshTimer);
    this.stop.abort();
    this.watcher?.stop();
    await Promise.all([...this.own.keys()].map((waiterId) => this.remove(waiterId)));
    await this.watching;
  }

  private keyOf(waiter: OwnWaiter): string {
    return identifyWaiterKey(waiter);
  }

  private announce(waiter: OwnWaiter): void {
    const record: IdentifyWaiterRecord = { v: 1, ...waiter, instanceId: this.instanceId };
    this.kv.put(this.keyOf(waiter), encodeRecord(record)).then(
      () => {
        // A withdrawal may have raced ahead of this write; withdraw again so no ghost stays until TTL.
        if (!this.own.has(waiter.waiterId)) void this.kv.delete(this.keyOf(waiter)).catch(() => undefined);
      },
      (error: unknown) =>
        this.hooks.debug(`Could not announce waiter of shard ${waiter.shardId}: ${describeError(error)}`),
    );
  }

  private refresh(): void {
    if (this.closed || this.hooks.connectionClosed()) return;
    for (const waiter of this.own.values()) this.announce(waiter);
  }

  private async watchLoop(): Promise<void> {
    while (!this.closed && !this.hooks.connectionClosed()) {
      try {
        this.watcher = await this.kv.watch({ key: '>' });
        if (this.closed) this.watcher.stop();
        for await (const entry of this.watcher) this.apply(entry);
      } catch (error) {
        this.hooks.debug(`Identify waiter watch failed, retrying: ${describeError(error)}`);
      }
      if (this.closed || this.hooks.connectionClosed()) return;
      await delay(WATCH_RETRY_MS, this.stop.signal).catch(() => undefined);
    }
  }

  private apply(entry: KvWatchEntry): void {
    if (entry.operation !== 'PUT') {
      if (this.seen.delete(entry.key)) this.changed.notify();
      return;
    }
    const decoded = decodeRecord(IdentifyWaiterRecordSchema, entry.value);
    if (!decoded.ok) {
      this.hooks.debug(`Ignoring an invalid identify waiter record ${entry.key}: ${decoded.error}`);
      return;
    }
    this.seen.set(entry.key, { record: decoded.value, seenAt: performance.now() });
  }
}

function sameQueue(
  a: { shardCount: number; rateLimitKey: number },
  b: { shardCount: number; rateLimitKey: number },
): boolean {
  return a.shardCount === b.shardCount && a.rateLimitKey === b.rateLimitKey;
}
