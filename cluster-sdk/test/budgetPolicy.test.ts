import { describe, expect, it } from 'vitest';
import { seededRandom } from 'discluster-testing';
import { budgetFromLimit, checkBudget, mergeBudget } from '../src';
import { formatDuration, SAME_PERIOD_TOLERANCE_MS } from '../src/identify/budgetPolicy';

const HOUR = 3_600_000;
const NOW = 1_700_000_000_000;

function limit(remaining: number, resetAfter: number, total = 1000) {
  return { total, remaining, reset_after: resetAfter, max_concurrency: 16 };
}

describe('budgetFromLimit', () => {
  it('turns reset_after into an absolute reset time', () => {
    expect(budgetFromLimit(limit(990, HOUR), NOW)).toEqual({
      v: 1,
      total: 1000,
      remaining: 990,
      resetAt: NOW + HOUR,
      maxConcurrency: 16,
      updatedAt: NOW,
    });
  });
});

describe('mergeBudget', () => {
  const stored = budgetFromLimit(limit(900, HOUR), NOW);

  it('stores the first observation as is', () => {
    expect(mergeBudget(null, stored, NOW)).toBe(stored);
  });

  it('keeps the lower remaining within one period (stale data cannot give back spent starts)', () => {
    const fresh = budgetFromLimit(limit(950, HOUR - 5000), NOW + 5000);
    const merged = mergeBudget(stored, fresh, NOW + 5000);
    expect(merged.remaining).toBe(900);
    expect(merged.resetAt).toBe(stored.resetAt);
    const lower = mergeBudget(stored, budgetFromLimit(limit(850, HOUR), NOW + 1000), NOW + 1000);
    expect(lower.remaining).toBe(850);
  });

  it('tolerates request jitter in the reset time', () => {
    const jittered = budgetFromLimit(limit(1000, HOUR + SAME_PERIOD_TOLERANCE_MS), NOW);
    expect(mergeBudget(stored, jittered, NOW).remaining).toBe(900);
  });

  it('replaces the record in a new period', () => {
    const nextDay = budgetFromLimit(limit(1000, 24 * HOUR), NOW + 2 * HOUR);
    expect(mergeBudget(stored, nextDay, NOW + 2 * HOUR)).toEqual(nextDay);
    // Observed right at the stored reset (within the jitter tolerance) also starts the new period.
    const atReset = budgetFromLimit(limit(1000, 24 * HOUR), NOW + HOUR - 1000);
    expect(mergeBudget(stored, atReset, NOW + HOUR).remaining).toBe(1000);
  });

  // Issue 13 (a): a restarted cluster fed its assignment's budget, fetched by MASTER hours ago.
  it('data fetched before the stored period ended never replaces it, however late it is merged', () => {
    const planFetchedAt = NOW - 3 * HOUR;
    const planData = budgetFromLimit(limit(990, 4 * HOUR), planFetchedAt); // resets at NOW + HOUR
    const spent = { ...stored, remaining: 20 };
    // Dated by its fetch: same period as the stored record, so the lower remaining stays.
    expect(mergeBudget(spent, planData, NOW).remaining).toBe(20);
    // Fetched before a reset that has happened since: it says nothing about today.
    const today = budgetFromLimit(limit(700, 20 * HOUR), NOW + 4 * HOUR);
    expect(mergeBudget(today, planData, NOW + 4 * HOUR)).toBe(today);
  });

  it('property: within a period, any sequence of observations never raises remaining', () => {
    const random = seededRandom(1301);
    for (let round = 0; round < 300; round++) {
      const resetAt = NOW + Math.floor(random() * 24 * HOUR) + 1;
      let record = budgetFromLimit(limit(Math.floor(random() * 1001), resetAt - NOW), NOW);
      let lowest = record.remaining;
      for (let step = 0; step < 20; step++) {
        // Observed some time in the period (possibly long ago), merged later still before the reset.
        const observedAt = NOW - Math.floor(random() * 12 * HOUR) + Math.floor(random() * (resetAt - NOW));
        const observed = Math.min(
          observedAt + 1 + Math.floor(random() * 1000),
          resetAt - SAME_PERIOD_TOLERANCE_MS - 1,
        );
        const mergedAt = Math.max(observed, NOW) + Math.floor(random() * (resetAt - Math.max(observed, NOW)));
        const fresh = budgetFromLimit(limit(Math.floor(random() * 1001), resetAt - observed), observed);
        record = mergeBudget(record, fresh, mergedAt);
        expect(record.remaining).toBeLessThanOrEqual(lowest);
        expect(record.resetAt).toBe(resetAt);
        lowest = record.remaining;
      }
    }
  });
});

describe('checkBudget', () => {
  it('allows while one more start keeps remaining at or above the floor', () => {
    expect(checkBudget(budgetFromLimit(limit(11, HOUR), NOW), 10, NOW)).toEqual({ allowed: true });
    expect(checkBudget(budgetFromLimit(limit(1, HOUR), NOW), 0, NOW)).toEqual({ allowed: true });
  });

  it('refuses at the floor and says why and when it resets', () => {
    const check = checkBudget(budgetFromLimit(limit(10, 2 * HOUR + 5 * 60_000), NOW), 10, NOW);
    expect(check).toMatchObject({
      allowed: false,
      stale: false,
      reason: {
        kind: 'budget-floor',
        remaining: 10,
        floor: 10,
        message: 'session_start_limit.remaining 10 is at the safety floor 10; resets in 2h 5m',
      },
    });
    expect(checkBudget(budgetFromLimit(limit(0, HOUR), NOW), 0, NOW).allowed).toBe(false);
  });

  it('marks a floor past its reset time as stale', () => {
    const check = checkBudget(budgetFromLimit(limit(5, HOUR), NOW), 10, NOW + HOUR);
    expect(check).toMatchObject({ allowed: false, stale: true });
    if (!check.allowed) expect(check.reason.message).toMatch(/reset time has passed/);
  });

  it('refuses when nothing is known', () => {
    expect(checkBudget(null, 0, NOW)).toMatchObject({ allowed: false, reason: { kind: 'budget-unknown' } });
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [999, '1s'],
    [61_000, '1m 1s'],
    [HOUR, '1h 0m'],
    [25 * HOUR + 60_000, '25h 1m'],
  ])('%d ms → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
