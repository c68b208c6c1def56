import { EventEmitter } from 'node:events';
import { nuid, type NatsConnection } from '@nats-io/transport-node';
import type { APIGatewaySessionStartLimit } from 'discord-api-types/v10';
import { DisclusterError, ErrorCode } from 'discluster-protocol/errors';
import { identifySlotKey } from 'discluster-protocol/kv';
import { encodeRecord, type BudgetRecord, type IdentifySlotRecord } from 'discluster-protocol/schemas';
import { describeError, isCasConflict, linkSignals } from 'discluster-runtime';
import { delay, untilAborted } from '../util/delay.js';
import { Notifier } from '../util/Notifier.js';
import { BudgetLedger, type BudgetReservation } from './BudgetLedger.js';
import { checkBudget } from './budgetPolicy.js';
import { openIdentifyBuckets, type IdentifyBuckets } from './identifyBuckets.js';
import {
  afterGrantedIdentify,
  identifyAbortedError,
  throttlerClosedError,
  type IdentifyThrottler,
  type IdentifyWaitReason,
} from './IdentifyThrottler.js';
import {
  rateLimitKey,
  resolveNatsIdentifyThrottlerOptions,
  type NatsIdentifyThrottlerOptions,
  type ResolvedNatsIdentifyThrottlerOptions,
} from './options.js';
import { WaiterRegistry, type OwnWaiter } from './WaiterRegistry.js';

/** Events of {@link NatsIdentifyThrottler}. */
export interface NatsIdentifyThrottlerEvents {
  /** A shard keeps waiting for a reason other than plain rate limiting (emitted when the reason changes). */
  waiting: [shardId: number, reason: IdentifyWaitReason];
  /** A shard was allowed to identify. */
  granted: [shardId: number];
  /** Diagnostics: NATS errors and retries, ignored records, discarded slots. */
  debug: [message: string];
}

const clamp = (value: number, min: number, max: number): number => Math.min(max, Math.max(min, value));

/**
 * A fleet-wide {@link IdentifyThrottler} on NATS KV, with no coordinator: it works while no
 * MASTER exists.
 *
 * - **Rate**: a key's slot is `kv.create()` in a bucket whose TTL is window + margin. The create
 *   succeeds only once the previous slot has expired on the server, so no two grants of one key
 *   are closer than the window, whatever the processes' clocks say. A grant whose create took
 *   longer than the margin is discarded. Once the grant's IDENTIFY is sent, the slot is re-written,
 *   so its TTL runs from the send: a stall between the create and the send does not eat into the
 *   margin.
 * - **Order**: waiters announce themselves; a shard tries only when no live waiter of its key and
 *   shard count has a lower id (best effort).
 * - **Budget**: each grant first reserves one session start with compare-and-set on the budget
 *   record and never takes `remaining` below `budgetFloor`; an unused reservation is refunded.
 * - **Failures**: NATS errors are retried with backoff and reported; a wait ends only with a
 *   grant, its signal, `close()`, or the connection closing for good.
 */
export class NatsIdentifyThrottler
  extends EventEmitter<NatsIdentifyThrottlerEvents>
  implements IdentifyThrottler
{
  /** Identifies this instance in KV records. */
  public readonly instanceId = nuid.next();
  private readonly changed = new Notifier();
  private readonly budgetChanged = new Notifier();
  private readonly closing = new AbortController();
  private readonly ledger: BudgetLedger;
  private readonly registry: WaiterRegistry;
  private readonly tasks = new Set<Promise<unknown>>();
  private waiterCount = 0;
  private lastRefreshAt = Number.NEGATIVE_INFINITY;
  /** The budget as last read for queued shards (see {@link recentBudget}). */
  private budgetCache: { readonly record: BudgetRecord | null; readonly at: number } | null = null;
  private budgetRead: Promise<BudgetRecord | null> | null = null;

  private constructor(
    private readonly nc: NatsConnection,
    /** Options after defaults and validation. */
    public readonly options: Readonly<ResolvedNatsIdentifyThrottlerOptions>,
    private readonly buckets: IdentifyBuckets,
  ) {
    super();
    this.ledger = new BudgetLedger(buckets.budget, options.budgetFloor, (message) => this.debug(message));
    this.registry = new WaiterRegistry(buckets.waiters, this.instanceId, buckets.waiterTtlMs, this.changed, {
      debug: (message) => this.debug(message),
      connectionClosed: () => this.nc.isClosed(),
    });
  }

  /**
   * Validates options, creates (or binds to) the bot's identify, waiter and budget buckets, and
   * starts watching waiters. Throws `DISCLUSTER_ERR_INVALID_OPTION` for bad options and
   * `DISCLUSTER_ERR_BUCKET_CONFIG_MISMATCH` if an existing slot bucket has a shorter TTL.
   */
  public static async create(
    nc: NatsConnection,
    options: NatsIdentifyThrottlerOptions,
  ): Promise<NatsIdentifyThrottler> {
    const resolved = resolveNatsIdentifyThrottlerOptions(options);
    return new NatsIdentifyThrottler(nc, resolved, await openIdentifyBuckets(nc, resolved));
  }

  /** {@inheritDoc IdentifyThrottler.waitForIdentify} */
  public async waitForIdentify(shardId: number, signal: AbortSignal): Promise<void> {
    const { shardCount, maxConcurrency } = this.options;
    if (!Number.isSafeInteger(shardId) || shardId < 0 || shardId >= shardCount) {
      throw new DisclusterError(
        ErrorCode.InvalidShard,
        `shard id must be an integer in [0, ${shardCount - 1}] (shard count ${shardCount}), got ${shardId}`,
      );
    }
    if (this.closing.signal.aborted) throw throttlerClosedError(shardId);
    if (signal.aborted) throw identifyAbortedError(shardId, signal.reason);
    const waiter: OwnWaiter = {
      waiterId: `${this.instanceId}-${++this.waiterCount}`,
      shardId,
      shardCount,
      rateLimitKey: rateLimitKey(shardId, maxConcurrency),
    };
    const linked = linkSignals([signal, this.closing.signal]);
    const run = this.acquire(waiter, linked.signal);
    this.tasks.add(run);
    try {
      await run;
    } catch (error) {
      if (signal.aborted) throw identifyAbortedError(shardId, signal.reason);
      if (this.closing.signal.aborted) throw throttlerClosedError(shardId);
      throw error;
    } finally {
      linked.dispose();
      this.tasks.delete(run);
    }
  }

  /**
   * Stores fresh `session_start_limit` data (from `GET /gateway/bot`), merged so that data fetched
   * before recent IDENTIFYs cannot raise `remaining` within the same daily period. Call it
   * whenever you have such data; waiting shards re-check the budget at once.
   */
  public async updateBudget(
    limit: APIGatewaySessionStartLimit,
    observedAt: number = Date.now(),
  ): Promise<BudgetRecord> {
    const record = await this.ledger.update(limit, observedAt);
    this.budgetCache = null;
    this.budgetChanged.notify();
    return record;
  }

  /** The stored budget, or null if none is stored (or it is invalid). */
  public readBudget(): Promise<BudgetRecord | null> {
    return this.ledger.read();
  }

  /** {@inheritDoc IdentifyThrottler.close} Does not close the NATS connection. */
  public async close(): Promise<void> {
    if (!this.closing.signal.aborted) this.closing.abort(new DisclusterError(ErrorCode.Closed, 'closed'));
    // Ending waits starts cleanups (withdrawals, refunds) that are tracked too: drain until quiet.
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
    await this.registry.close();
  }

  /** The wait loop of one shard; rejects only when `signal` aborts or NATS is closed for good. */
  private async acquire(waiter: OwnWaiter, signal: AbortSignal): Promise<void> {
    const { options } = this;
    const slotKey = identifySlotKey(waiter.rateLimitKey);
    let reservation: BudgetReservation | null = null;
    let reported: string | undefined;
    let backoff = options.retryInitialMs;
    let granted = false;
    const report = (reason: IdentifyWaitReason): void => {
      const id = `${reason.kind}:${'remaining' in reason ? reason.remaining : ''}`;
      if (id === reported) return;
      reported = id;
      this.emit('waiting', waiter.shardId, reason);
    };

    this.registry.add(waiter);
    try {
      // Lets shards that ask at about the same time see each other before anyone takes the slot.
      await delay(options.orderingDelayMs, signal);
      for (;;) {
        try {
          if (this.registry.hasLowerWaiter(waiter)) {
            if (reservation !== null) {
              // A lower shard of the key arrived after this one reserved a start: give the start
              // back, or near the floor the lower shard could never reserve one and both would wait.
              this.track(this.refund(reservation));
              reservation = null;
            }
            // Queued behind a lower shard of its key. If the budget stops this shard as well (the
            // lower one waits at the floor, for hours maybe), say so instead of waiting silently.
            // Checked beside the wait, not before it: the wait must not miss a wake-up meanwhile. Not
            // tracked for close(): once the wait ends (signal aborted) the answer is dropped.
            void this.recentBudget().then(
              (budget) => {
                const check = checkBudget(budget, options.budgetFloor, Date.now());
                if (!check.allowed && !granted && !signal.aborted) report(check.reason);
              },
              // NATS errors: the wait loop meets and reports them itself.
              () => undefined,
            );
            await delay(options.windowMs, signal, this.changed);
            continue;
          }
          if (reservation === null) {
            const result = await untilAborted(this.ledger.reserve(), signal, (late) => {
              if (late.ok) this.track(this.refund(late.reservation));
            });
            if (!result.ok) {
              report(result.reason);
              if (result.stale) this.refreshBudget();
              await delay(options.budgetPollMs, signal, this.budgetChanged);
              continue;
            }
            reservation = result.reservation;
          }
          const slot = await untilAborted(this.buckets.slots.get(slotKey), signal);
          backoff = options.retryInitialMs;
          if (slot !== null && slot.operation === 'PUT') {
            // Sleep until the server should have expired it; clamped, as our clock is not the server's.
            const expiresIn = slot.created.getTime() + options.slotTtlMs - Date.now() + 1;
            await delay(clamp(expiresIn, options.minPollMs, options.windowMs), signal);
            continue;
          }
          const record: IdentifySlotRecord = {
            v: 1,
            shardId: waiter.shardId,
            shardCount: waiter.shardCount,
            instanceId: this.instanceId,
            at: Date.now(),
          };
          const startedAt = performance.now();
          // Over a release's DEL marker, compare-and-set on its revision: one round trip, where
          // create() would need three (put, get, put) inside the margin.
          const taking =
            slot === null
              ? this.buckets.slots.create(slotKey, encodeRecord(record))
              : this.buckets.slots.update(slotKey, encodeRecord(record), slot.revision);
          let revision: number;
          try {
            revision = await untilAborted(taking, signal, (late) =>
              this.track(this.releaseSlot(slotKey, late)),
            );
          } catch (error) {
            if (!isCasConflict(error)) throw error;
            await delay(options.minPollMs, signal);
            continue;
          }
          const tookMs = performance.now() - startedAt;
          if (tookMs > options.safetyMarginMs) {
            // The slot may have been created up to tookMs ago; identifying now could land closer
            // than the window to the next holder. We never identified in it, so give it back.
            this.debug(
              `Shard ${waiter.shardId}: taking slot ${slotKey} took ${tookMs.toFixed(1)} ms (> margin ${options.safetyMarginMs} ms); retrying`,
            );
            this.track(this.releaseSlot(slotKey, revision));
            continue;
          }
          reservation = null;
          granted = true;
          // Right after the caller's IDENTIFY, and before the cleanup below.
          this.track(this.restampSlot(slotKey, record));
          this.emit('granted', waiter.shardId);
          return;
        } catch (error) {
          if (signal.aborted) throw signal.reason;
          if (this.nc.isClosed()) {
            throw new DisclusterError(
              ErrorCode.NatsClosed,
              `Shard ${waiter.shardId} cannot identify: the NATS connection is closed`,
              { cause: error },
            );
          }
          const message = `NATS error while waiting to identify shard ${waiter.shardId}: ${describeError(error)}; retrying in ${backoff} ms`;
          this.debug(message);
          report({ kind: 'nats-unavailable', message });
          await delay(backoff, signal);
          backoff = Math.min(backoff * 2, options.retryMaxMs);
        }
      }
    } finally {
      const held = reservation;
      const cleanUp = async (): Promise<void> => {
        await Promise.all([
          this.registry.remove(waiter.waiterId),
          held !== null ? this.refund(held) : undefined,
        ]);
      };
      // After a grant, the caller's IDENTIFY goes first: cleanup wakes other waiters and writes to
      // NATS, and would only delay it.
      if (granted) this.track(new Promise<void>((resolve) => setImmediate(resolve)).then(cleanUp));
      else this.track(cleanUp());
    }
  }

  /**
   * The stored budget, read at most once per `budgetPollMs` for all queued shards of this instance
   * together: they only need it to say why they wait, and may be many.
   */
  private recentBudget(): Promise<BudgetRecord | null> {
    const cached = this.budgetCache;
    if (cached && performance.now() - cached.at < this.options.budgetPollMs)
      return Promise.resolve(cached.record);
    this.budgetRead ??= this.ledger
      .read()
      .then((record) => {
        this.budgetCache = { record, at: performance.now() };
        return record;
      })
      .finally(() => {
        this.budgetRead = null;
      });
    return this.budgetRead;
  }

  private async refund(reservation: BudgetReservation): Promise<void> {
    try {
      await this.ledger.refund(reservation);
      this.budgetChanged.notify();
    } catch (error) {
      // Losing a refund only under-counts the budget: safe, resynced by the next updateBudget.
      this.debug(`Could not refund an unused session start: ${describeError(error)}`);
    }
  }

  /**
   * Re-writes a granted slot once the caller has sent its IDENTIFY, so that the slot's TTL, which
   * nats-server counts from the newest write of the key, runs from after the IDENTIFY left this
   * process instead of from when the create reached the server (see {@link afterGrantedIdentify}:
   * right after the caller's IDENTIFY, not pushed back by the rest of a busy event-loop turn).
   * Without it, the slot-taking delay (up to the margin) and any stall between the create's answer
   * and the IDENTIFY's write come off the spacing the next holder of the key gets; with it, that
   * holder's IDENTIFY leaves at least window + margin after this one.
   *
   * A plain put, not compare-and-set: if this process stalled longer than window + margin after
   * the grant, the slot has expired (or been taken again) and this IDENTIFY may have left late, so
   * the key must be blocked for a window from now in any case. A put only ever keeps a key blocked
   * longer, never shorter, so it cannot break the rate. If it fails, the give-back rule still holds.
   */
  private async restampSlot(slotKey: string, record: IdentifySlotRecord): Promise<void> {
    await new Promise<void>((resolve) => afterGrantedIdentify(resolve));
    try {
      await this.buckets.slots.put(slotKey, encodeRecord({ ...record, at: Date.now() }));
    } catch (error) {
      this.debug(`Could not re-stamp identify slot ${slotKey} after its grant: ${describeError(error)}`);
    }
  }

  private async releaseSlot(slotKey: string, revision: number): Promise<void> {
    try {
      await this.buckets.slots.delete(slotKey, { previousSeq: revision });
      this.changed.notify();
    } catch (error) {
      // It expires on its own after the TTL.
      this.debug(`Could not release unused slot ${slotKey}: ${describeError(error)}`);
    }
  }

  /**
   * Asks `sessionStartLimitSource` for fresh data, at most once per `budgetRefreshIntervalMs` in
   * this process and, through a claim in the budget bucket, in the whole fleet. The answer is dated
   * by when it arrived, so `reset_after` counts from then.
   */
  private refreshBudget(): void {
    const source = this.options.sessionStartLimitSource;
    const now = performance.now();
    if (source === null || now - this.lastRefreshAt < this.options.budgetRefreshIntervalMs) return;
    this.lastRefreshAt = now;
    this.track(
      (async () => {
        try {
          if (!(await this.ledger.claimRefresh(this.instanceId, this.options.budgetRefreshIntervalMs))) {
            this.debug('session_start_limit refresh: another process of the fleet has it');
            return;
          }
          const limit = await source();
          await this.updateBudget(limit, Date.now());
        } catch (error) {
          this.debug(`Could not refresh session_start_limit: ${describeError(error)}`);
        }
      })(),
    );
  }

  /** Keeps background work visible to close(). */
  private track(task: Promise<unknown>): void {
    this.tasks.add(task);
    const forget = (): void => void this.tasks.delete(task);
    task.then(forget, forget);
  }

  private debug(message: string): void {
    this.emit('debug', message);
  }
}
