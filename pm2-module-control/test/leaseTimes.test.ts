import { describe, expect, it } from 'vitest';
import { leaseTimes, toleratedStallMs } from '../src/leases/leaseTimes';

/**
 * Issue 13: a NATS node kill on a 3-node cluster stalls KV writes for 4-6 s (bench/results/soak-
 * nats-cluster.md); under a CPU-bound process one stall of 6.2 s fenced two clusters at the 30 s lease
 * docs/operations.md advises there. The lease times must outlast such stalls with room to spare.
 */
describe('leaseTimes', () => {
  it('outlasts a NATS stall of 30 % of the lease from 20 s on (6 s at 20 s, 9.75 s at 30 s), 20 % from 5 s, some at any', () => {
    for (let ttl = 1_000; ttl <= 600_000; ttl += 500) {
      const times = leaseTimes(ttl);
      const share = ttl >= 20_000 ? 0.3 : ttl >= 5_000 ? 0.2 : 0;
      expect(toleratedStallMs(times)).toBeGreaterThanOrEqual(share * ttl);
      expect(toleratedStallMs(times)).toBeGreaterThan(0);
      // Renewals stay in order: a retry comes before the next period, a request ends before both.
      expect(times.retryMs).toBeLessThan(times.renewEveryMs);
      expect(times.requestTimeoutMs).toBeLessThanOrEqual(times.fenceAfterMs / 2);
    }
    expect(toleratedStallMs(leaseTimes(20_000))).toBe(6_000);
    expect(toleratedStallMs(leaseTimes(30_000))).toBe(9_750);
  });

  it('the earlier timing outlasted only 6.5 s at 30 s: the node kill that fenced', () => {
    const earlier = { ...leaseTimes(30_000), renewEveryMs: 5_000, requestTimeoutMs: 2_000, retryMs: 1_500 };
    expect(toleratedStallMs(earlier)).toBe(6_500);
  });
});
