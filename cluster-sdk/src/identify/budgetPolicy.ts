import type { APIGatewaySessionStartLimit } from 'discord-api-types/v10';
import type { BudgetRecord } from 'discluster-protocol/schemas';
import type { IdentifyWaitReason } from './IdentifyThrottler.js';

/**
 * Two observations whose reset times differ by less than this belong to the same daily period
 * (`reset_after` is measured from slightly different request times). A new period's reset is
 * about 24 h later, far beyond it.
 */
export const SAME_PERIOD_TOLERANCE_MS = 60_000;

/** The budget record for a `session_start_limit` observed at `observedAt` (epoch ms). */
export function budgetFromLimit(limit: APIGatewaySessionStartLimit, observedAt: number): BudgetRecord {
  return {
    v: 1,
    total: limit.total,
    // Discord never reports more remaining than total; keep the record valid if it ever did.
    remaining: Math.min(limit.remaining, limit.total),
    resetAt: observedAt + limit.reset_after,
    maxConcurrency: limit.max_concurrency,
    updatedAt: observedAt,
  };
}

/**
 * Merges a `/gateway/bot` observation into the stored budget, so that the budget only ever goes
 * down within a daily period:
 * - data whose own period has already ended (`resetAt` in the past: fetched before a reset that
 *   has happened) says nothing about today and changes nothing;
 * - data observed before the stored period ended belongs to that period: the lower `remaining`
 *   wins (it may predate IDENTIFYs the fleet has since counted) and the stored reset stays;
 * - only data observed once the stored period is over starts a new one.
 * The caller must date each observation by when it was fetched (`updatedAt`), not by when it
 * happens to be merged: a plan fetched hours ago and dated "now" would look like a new period.
 */
export function mergeBudget(stored: BudgetRecord | null, fresh: BudgetRecord, now: number): BudgetRecord {
  if (stored === null) return fresh;
  if (fresh.resetAt <= now) return stored;
  const observedAfterStoredReset = fresh.updatedAt >= stored.resetAt - SAME_PERIOD_TOLERANCE_MS;
  if (observedAfterStoredReset) return fresh;
  return {
    ...fresh,
    remaining: Math.min(stored.remaining, fresh.remaining),
    resetAt: stored.resetAt,
    updatedAt: Math.max(stored.updatedAt, fresh.updatedAt),
  };
}

/** Outcome of checking whether one more IDENTIFY fits the budget. */
export type BudgetCheck =
  | { readonly allowed: true }
  | {
      readonly allowed: false;
      readonly reason: IdentifyWaitReason;
      /** The record is past its reset time: fresh data would likely lift the block. */
      readonly stale: boolean;
    };

/** Whether one more IDENTIFY keeps `remaining` at or above `floor`. */
export function checkBudget(record: BudgetRecord | null, floor: number, now: number): BudgetCheck {
  if (record === null) {
    return {
      allowed: false,
      stale: true,
      reason: {
        kind: 'budget-unknown',
        message:
          'session_start_limit is unknown: no process has stored GET /gateway/bot data yet (updateBudget)',
      },
    };
  }
  if (record.remaining - 1 >= floor) return { allowed: true };
  const resetsIn = record.resetAt - now;
  const when =
    resetsIn > 0
      ? `resets in ${formatDuration(resetsIn)}`
      : 'its reset time has passed; waiting for fresh data';
  return {
    allowed: false,
    stale: resetsIn <= 0,
    reason: {
      kind: 'budget-floor',
      message: `session_start_limit.remaining ${record.remaining} is at the safety floor ${floor}; ${when}`,
      remaining: record.remaining,
      floor,
      resetAt: record.resetAt,
    },
  };
}

/** `1h 2m`, `3m 4s`, `5s`: enough precision for a human. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}
