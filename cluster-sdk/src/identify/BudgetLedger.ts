import type { KV } from '@nats-io/kv';
import type { APIGatewaySessionStartLimit } from 'discord-api-types/v10';
import { budgetKey, budgetRefreshKey } from 'discluster-protocol/kv';
import {
  BudgetRecordSchema,
  BudgetRefreshClaimSchema,
  decodeRecord,
  encodeRecord,
  type BudgetRecord,
} from 'discluster-protocol/schemas';
import { isCasConflict } from 'discluster-runtime';
import { budgetFromLimit, checkBudget, mergeBudget, type BudgetCheck } from './budgetPolicy.js';

// Compare-and-set retries before a conflict storm is treated like any other transient error.
const MAX_CAS_ATTEMPTS = 50;

/** One session start taken from the budget; refundable while its period lasts. */
export interface BudgetReservation {
  readonly resetAt: number;
}

/** Result of {@link BudgetLedger.reserve}. */
export type ReserveResult =
  | { readonly ok: true; readonly reservation: BudgetReservation }
  | (Extract<BudgetCheck, { allowed: false }> & { readonly ok: false });

interface Snapshot {
  readonly record: BudgetRecord | null;
  /** KV revision to compare-and-set against; 0 when there is no entry. */
  readonly revision: number;
}

/**
 * The fleet's daily session-start budget in KV. Every change is a compare-and-set on the one
 * record, retried on conflict, so concurrent processes never spend the same start twice.
 */
export class BudgetLedger {
  private readonly key = budgetKey();

  public constructor(
    private readonly kv: KV,
    private readonly floor: number,
    private readonly debug: (message: string) => void,
  ) {}

  /** The stored record, or null if there is none or it is invalid (reported as debug). */
  public async read(): Promise<BudgetRecord | null> {
    return (await this.snapshot()).record;
  }

  /** Takes one session start if that keeps `remaining` at or above the floor. */
  public async reserve(now: () => number = Date.now): Promise<ReserveResult> {
    return this.casLoop<ReserveResult>(async ({ record, revision }) => {
      const check = checkBudget(record, this.floor, now());
      if (!check.allowed) return { ...check, ok: false };
      // checkBudget only allows with a record.
      const current = record as BudgetRecord;
      await this.store({ ...current, remaining: current.remaining - 1, updatedAt: now() }, revision);
      return { ok: true, reservation: { resetAt: current.resetAt } };
    });
  }

  /** Gives back a start that was reserved but not used, if its period is still the stored one. */
  public async refund(reservation: BudgetReservation, now: () => number = Date.now): Promise<boolean> {
    return this.casLoop(async ({ record, revision }) => {
      // A new period already reset remaining: adding one back would overcount.
      if (record === null || record.resetAt !== reservation.resetAt || record.remaining >= record.total) {
        return false;
      }
      await this.store({ ...record, remaining: record.remaining + 1, updatedAt: now() }, revision);
      return true;
    });
  }

  /** Merges fresh `session_start_limit` data (see {@link mergeBudget}) and returns the stored result. */
  public async update(
    limit: APIGatewaySessionStartLimit,
    observedAt: number,
    now: () => number = Date.now,
  ): Promise<BudgetRecord> {
    const fresh = budgetFromLimit(limit, observedAt);
    return this.casLoop(async ({ record, revision }) => {
      const next = mergeBudget(record, fresh, now());
      await this.store(next, revision);
      return next;
    });
  }

  /**
   * Claims the fleet's next `GET /gateway/bot` refresh: true for at most one caller per
   * `intervalMs` across every process, so a thousand clusters held at the floor ask Discord once
   * rather than a thousand times. A claim that cannot be read is taken over.
   */
  public async claimRefresh(
    instanceId: string,
    intervalMs: number,
    now: () => number = Date.now,
  ): Promise<boolean> {
    const key = budgetRefreshKey();
    const claim = encodeRecord({ v: 1, instanceId, at: now() });
    const entry = await this.kv.get(key);
    try {
      if (entry === null) {
        await this.kv.create(key, claim);
        return true;
      }
      const decoded = entry.operation === 'PUT' ? decodeRecord(BudgetRefreshClaimSchema, entry.value) : null;
      if (decoded?.ok && now() - decoded.value.at < intervalMs) return false;
      await this.kv.update(key, claim, entry.revision);
      return true;
    } catch (error) {
      // Another process claimed it between our read and write.
      if (isCasConflict(error)) return false;
      throw error;
    }
  }

  private async snapshot(): Promise<Snapshot> {
    const entry = await this.kv.get(this.key);
    if (entry === null || entry.operation !== 'PUT') return { record: null, revision: entry?.revision ?? 0 };
    const decoded = decodeRecord(BudgetRecordSchema, entry.value);
    if (!decoded.ok) {
      this.debug(`Ignoring an invalid budget record (revision ${entry.revision}): ${decoded.error}`);
      return { record: null, revision: entry.revision };
    }
    return { record: decoded.value, revision: entry.revision };
  }

  /** Writes `next` compare-and-set on `revision` (0: the bucket holds no record yet, so create it). */
  private async store(next: BudgetRecord, revision: number): Promise<void> {
    if (revision === 0) await this.kv.create(this.key, encodeRecord(next));
    else await this.kv.update(this.key, encodeRecord(next), revision);
  }

  /** Runs `step` on fresh snapshots until it completes without a compare-and-set conflict. */
  private async casLoop<T>(step: (snapshot: Snapshot) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await step(await this.snapshot());
      } catch (error) {
        if (!isCasConflict(error) || attempt >= MAX_CAS_ATTEMPTS) throw error;
      }
    }
  }
}
