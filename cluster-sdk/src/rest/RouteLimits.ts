import type { KV } from '@nats-io/kv';
import { restRouteKey } from 'discluster-protocol/kv';
import { RestRouteRecordSchema, type RestRouteRecord } from 'discluster-protocol/restRecords';
import { decodeRecord, encodeRecord } from 'discluster-protocol/schemas';
import { isCasConflict } from 'discluster-runtime';
import { delay } from '../util/delay.js';
import type { RestRoute } from './restRoute.js';
import {
  decideRoute,
  emptyRouteRecord,
  mergeRouteAnswer,
  type RouteAnswer,
  type RoutePolicyOptions,
} from './routePolicy.js';

interface Stored {
  readonly record: RestRouteRecord;
  readonly revision: number;
}

/** What {@link RouteLimits.reserve} took: needed to report the answer. */
export interface RouteReservation {
  readonly key: string;
  /** This request learns the bucket (nobody had its headers). */
  readonly probe: boolean;
  /** Invalid answers in a row on this route, as the fleet knew before sending. */
  readonly failures: number;
  /**
   * The reservation counts in a window that Discord may end this early (epoch ms): a request not
   * sent by then must reserve again, or it would land in the next window uncounted.
   */
  readonly validUntil: number;
}

const MAX_MERGE_ATTEMPTS = 8;

/**
 * The route records kept in memory between requests, the most recently used last (at most 5,000);
 * an evicted one is read again from KV.
 */
class RecentRecords {
  private static readonly LIMIT = 5_000;
  private readonly records = new Map<string, Stored>();

  public get(key: string): Stored | undefined {
    return this.records.get(key);
  }

  public forget(key: string): void {
    this.records.delete(key);
  }

  public remember(key: string, stored: Stored): void {
    this.records.delete(key);
    this.records.set(key, stored);
    if (this.records.size > RecentRecords.LIMIT) {
      const oldest = this.records.keys().next().value;
      if (oldest !== undefined) this.records.delete(oldest);
    }
  }
}

/**
 * Per-route buckets shared by the fleet: one KV record per route and major parameter, read and
 * written with compare-and-set through the pure policy in routePolicy.ts. A bucket any process
 * learned from Discord's headers is honoured by every process from its next request on.
 */
export class RouteLimits {
  private readonly cache = new RecentRecords();

  public constructor(
    private readonly kv: KV,
    private readonly options: RoutePolicyOptions,
  ) {}

  /** The fleet's record of a route (from memory when this process wrote or read it last). */
  public async failuresOf(route: RestRoute): Promise<number> {
    const key = restRouteKey(route.routeHash, route.majorKey);
    return (this.cache.get(key) ?? (await this.read(key)))?.record.failures ?? 0;
  }

  /**
   * Waits until the fleet's record of the route has room (or nobody is learning its bucket), without
   * reserving: the reservation comes right before sending ({@link tryReserve}), so a request that
   * then waits for a global slot cannot carry it into the next window.
   */
  public async waitForRoom(route: RestRoute, signal: AbortSignal): Promise<void> {
    const key = restRouteKey(route.routeHash, route.majorKey);
    let stored = this.cache.get(key) ?? (await this.read(key));
    for (;;) {
      const decision = decideRoute(stored?.record ?? null, Date.now(), this.options);
      if (decision.kind === 'send') return;
      await delay(decision.until - Date.now(), signal);
      stored = await this.read(key);
    }
  }

  /**
   * Reserves one request of the route's current window now, or returns null if the fleet has none
   * left (another process took it meanwhile): then wait for room again.
   */
  public async tryReserve(route: RestRoute): Promise<RouteReservation | null> {
    const key = restRouteKey(route.routeHash, route.majorKey);
    let stored = this.cache.get(key) ?? (await this.read(key));
    for (let attempt = 1; ; attempt++) {
      const decision = decideRoute(stored?.record ?? null, Date.now(), this.options);
      if (decision.kind === 'wait') return null;
      const failures = stored?.record.failures ?? 0;
      const next = decision.next;
      if (next === null) return { key, probe: false, failures, validUntil: Number.POSITIVE_INFINITY };
      const probe = (stored?.record.limit ?? 0) === 0;
      // A known window's reset came from an answer's arrival here, later than Discord's by the
      // answer's way back: count the window as ending one offset early.
      const validUntil = probe ? Number.POSITIVE_INFINITY : next.resetAt - this.options.offsetMs;
      try {
        await this.write(key, next, stored);
        return { key, probe, failures, validUntil };
      } catch (error) {
        if (!isCasConflict(error) || attempt >= MAX_MERGE_ATTEMPTS) throw error;
        stored = await this.read(key);
      }
    }
  }

  /** Folds an answer into the fleet's record (compare-and-set, retried on a lost race). */
  public async report(reservation: RouteReservation, answer: Omit<RouteAnswer, 'probe'>): Promise<void> {
    const full: RouteAnswer = { ...answer, probe: reservation.probe };
    let stored = this.cache.get(reservation.key) ?? (await this.read(reservation.key));
    for (let attempt = 1; ; attempt++) {
      const next = mergeRouteAnswer(stored?.record ?? null, full, Date.now());
      if (stored && sameForFleet(stored.record, next, this.options.offsetMs)) return;
      try {
        await this.write(reservation.key, next, stored);
        return;
      } catch (error) {
        if (!isCasConflict(error) || attempt >= MAX_MERGE_ATTEMPTS) throw error;
        stored = await this.read(reservation.key);
      }
    }
  }

  /** The request was never answered: a probe gives its route back at once instead of holding it. */
  public async abandon(reservation: RouteReservation): Promise<void> {
    if (!reservation.probe) return;
    for (let attempt = 1; attempt <= MAX_MERGE_ATTEMPTS; attempt++) {
      const stored = await this.read(reservation.key);
      if (!stored || stored.record.probeUntil === 0) return;
      try {
        await this.write(reservation.key, { ...stored.record, probeUntil: 0 }, stored);
        return;
      } catch (error) {
        if (!isCasConflict(error)) throw error;
      }
    }
  }

  private async read(key: string): Promise<Stored | null> {
    const entry = await this.kv.get(key);
    if (!entry || entry.operation !== 'PUT') {
      this.cache.forget(key);
      return null;
    }
    const decoded = decodeRecord(RestRouteRecordSchema, entry.value);
    // An unreadable record is replaced by the next write on its revision, as if it were empty.
    const stored = { record: decoded.ok ? decoded.value : emptyRouteRecord(), revision: entry.revision };
    this.cache.remember(key, stored);
    return stored;
  }

  private async write(key: string, record: RestRouteRecord, previous: Stored | null): Promise<void> {
    const value = encodeRecord(record);
    const revision = previous
      ? await this.kv.update(key, value, previous.revision)
      : await this.kv.create(key, value);
    this.cache.remember(key, { record, revision });
  }
}

/** No write is needed when only the reset moved by less than the offset every wait adds anyway. */
function sameForFleet(a: RestRouteRecord, b: RestRouteRecord, toleranceMs: number): boolean {
  return (
    a.limit === b.limit &&
    a.remaining === b.remaining &&
    Math.abs(a.resetAt - b.resetAt) < toleranceMs &&
    a.periodMs === b.periodMs &&
    a.confirmed === b.confirmed &&
    a.unlimited === b.unlimited &&
    a.probeUntil === b.probeUntil &&
    a.failures === b.failures &&
    a.lastStatus === b.lastStatus
  );
}
