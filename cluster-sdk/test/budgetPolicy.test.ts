import { describe, expect, it } from 'vitest';
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
    // Also when the stored period has simply ended by our clock.
    const afterReset = budgetFromLimit(limit(1000, 0), NOW + HOUR);
    expect(mergeBudget(stored, afterReset, NOW + HOUR).remaining).toBe(1000);
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
