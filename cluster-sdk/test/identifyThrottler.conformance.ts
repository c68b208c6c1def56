/**
 * One conformance suite for every IdentifyThrottler implementation (twilight's
 * tests/common/mod.rs habit): whatever coordinates identifies, these invariants must hold.
 * Not a test file itself (vitest collects *.test.ts); each implementation's test file calls
 * {@link identifyThrottlerConformance} with a factory.
 *
 * Timing is checked as invariants on grant timestamps (no two grants of one key closer than the
 * window) and as orderings; the few upper bounds are liveness bounds many times larger than the
 * expected delay.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, isDisclusterError } from 'discluster-protocol';
import type { IdentifyThrottler } from '../src';

/** What the suite asks a factory for. */
export interface ThrottlerSpec {
  readonly maxConcurrency: number;
  readonly windowMs: number;
  readonly shardCount: number;
}

/** Builds a fresh throttler (isolated from every other one the factory built). */
export type ThrottlerFactory = (spec: ThrottlerSpec) => Promise<IdentifyThrottler>;

/** One grant as the test saw it. */
export interface Grant {
  readonly shardId: number;
  readonly key: number;
  readonly at: number;
}

// Timer granularity: grants are compared at millisecond precision.
const TOLERANCE_MS = 1;

/** Waits for `shardIds` (in that call order) and records each grant's time. */
export function requestAll(
  throttler: IdentifyThrottler,
  shardIds: readonly number[],
  maxConcurrency: number,
  grants: Grant[],
  signal: AbortSignal = new AbortController().signal,
): Promise<void[]> {
  return Promise.all(
    shardIds.map((shardId) =>
      throttler.waitForIdentify(shardId, signal).then(() => {
        grants.push({ shardId, key: shardId % maxConcurrency, at: performance.now() });
      }),
    ),
  );
}

/** The invariant: no two grants of one key closer than the window (sliding-window check). */
export function expectWindowSpacing(grants: readonly Grant[], windowMs: number): void {
  const byKey = new Map<number, number[]>();
  for (const grant of grants) byKey.set(grant.key, [...(byKey.get(grant.key) ?? []), grant.at]);
  for (const [key, times] of byKey) {
    times.sort((a, b) => a - b);
    for (let index = 1; index < times.length; index++) {
      const gap = (times[index] as number) - (times[index - 1] as number);
      expect(
        gap,
        `key ${key}: grants ${index - 1} and ${index} are ${gap.toFixed(1)} ms apart`,
      ).toBeGreaterThanOrEqual(windowMs - TOLERANCE_MS);
    }
  }
}

/** Blocks the event loop for `ms`, as a process that lost the CPU between two statements would be. */
export function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin
  }
}

/** Resolves with the rejection of `promise` (fails if it resolves). */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

/** Registers the conformance tests for one implementation. */
export function identifyThrottlerConformance(name: string, factory: ThrottlerFactory): void {
  describe(`IdentifyThrottler conformance: ${name}`, () => {
    const built: IdentifyThrottler[] = [];
    const make = async (spec: ThrottlerSpec): Promise<IdentifyThrottler> => {
      const throttler = await factory(spec);
      built.push(throttler);
      return throttler;
    };

    afterEach(async () => {
      await Promise.all(built.splice(0).map((throttler) => throttler.close()));
    });

    it('grants one key serially, never two grants closer than the window', async () => {
      const spec = { maxConcurrency: 2, windowMs: 150, shardCount: 16 };
      const throttler = await make(spec);
      const grants: Grant[] = [];
      await requestAll(throttler, [0, 1, 2, 3, 4, 5, 6, 8], spec.maxConcurrency, grants);
      expect(grants).toHaveLength(8);
      expectWindowSpacing(grants, spec.windowMs);
    });

    it('grants different keys concurrently', async () => {
      const spec = { maxConcurrency: 4, windowMs: 1000, shardCount: 16 };
      const throttler = await make(spec);
      const grants: Grant[] = [];
      await requestAll(throttler, [0], spec.maxConcurrency, grants);
      // Key 0 is now busy for a whole window; keys 1-3 must not wait for it.
      const controller = new AbortController();
      let sameKeyGranted = false;
      const sameKey = throttler.waitForIdentify(4, controller.signal).then(() => {
        sameKeyGranted = true;
      });
      await requestAll(throttler, [1, 2, 3], spec.maxConcurrency, grants);
      expect(grants.map((grant) => grant.shardId).sort()).toEqual([0, 1, 2, 3]);
      expect(sameKeyGranted, 'shard 4 shares key 0 with shard 0 and must still be waiting').toBe(false);
      controller.abort();
      await rejectionOf(sameKey);
    });

    it('lets lower shard ids of a key go first', async () => {
      const spec = { maxConcurrency: 4, windowMs: 150, shardCount: 16 };
      const throttler = await make(spec);
      const grants: Grant[] = [];
      await requestAll(throttler, [0], spec.maxConcurrency, grants);
      // Asked in descending order while key 0 is busy.
      await requestAll(throttler, [12, 8, 4], spec.maxConcurrency, grants);
      expect(grants.map((grant) => grant.shardId)).toEqual([0, 4, 8, 12]);
      expectWindowSpacing(grants, spec.windowMs);
    });

    it('counts the window from the IDENTIFY, not the grant, when the caller stalls in between', async () => {
      // A caller sends IDENTIFY in the microtasks that follow its grant (as @discordjs/ws does), but
      // under CPU contention its process can lose the CPU in between. The spacing must hold between
      // the IDENTIFYs themselves: the next grant of the key comes a window after the stalled send.
      const spec = { maxConcurrency: 1, windowMs: 150, shardCount: 4 };
      const throttler = await make(spec);
      // Longer than any default margin at this window (25 ms), shorter than the window.
      const stallMs = 100;
      const sent: Grant[] = [];
      const identify = (shardId: number, stallFor: number): Promise<void> =>
        throttler.waitForIdentify(shardId, new AbortController().signal).then(() => {
          stall(stallFor);
          sent.push({ shardId, key: 0, at: performance.now() });
        });
      await Promise.all([identify(0, stallMs), identify(1, 0), identify(2, 0)]);
      expect(sent.map((grant) => grant.shardId)).toEqual([0, 1, 2]);
      expectWindowSpacing(sent, spec.windowMs);
    });

    it('rejects an aborted wait promptly, and the aborted shard takes no slot', async () => {
      const spec = { maxConcurrency: 1, windowMs: 600, shardCount: 4 };
      const throttler = await make(spec);
      const grants: Grant[] = [];
      await requestAll(throttler, [0], spec.maxConcurrency, grants);
      const controller = new AbortController();
      const events: string[] = [];
      const aborted = throttler.waitForIdentify(1, controller.signal).then(
        () => events.push('shard 1 granted'),
        (error: unknown) => {
          events.push('shard 1 rejected');
          return error;
        },
      );
      const next = requestAll(throttler, [2], spec.maxConcurrency, grants).then(() =>
        events.push('shard 2 granted'),
      );
      setTimeout(() => controller.abort(), 20);
      const error = await aborted;
      expect(isDisclusterError(error, ErrorCode.IdentifyAborted)).toBe(true);
      await next;
      // Shard 1 was first in line; it left before the slot freed, so shard 2 took that slot.
      expect(events).toEqual(['shard 1 rejected', 'shard 2 granted']);
      expect(grants.map((grant) => grant.shardId)).toEqual([0, 2]);
      expectWindowSpacing(grants, spec.windowMs);
      const [first, second] = grants as [Grant, Grant];
      // Liveness bound: had shard 1 consumed a slot, shard 2 could not have gone before 2 windows.
      expect(second.at - first.at).toBeLessThan(2 * spec.windowMs);
    });

    it('rejects a wait whose signal is already aborted', async () => {
      const spec = { maxConcurrency: 1, windowMs: 150, shardCount: 4 };
      const throttler = await make(spec);
      const error = await rejectionOf(throttler.waitForIdentify(0, AbortSignal.abort()));
      expect(isDisclusterError(error, ErrorCode.IdentifyAborted)).toBe(true);
      const grants: Grant[] = [];
      await requestAll(throttler, [1, 2], spec.maxConcurrency, grants);
      expect(grants.map((grant) => grant.shardId)).toEqual([1, 2]);
    });

    it('rejects an invalid shard id', async () => {
      const throttler = await make({ maxConcurrency: 1, windowMs: 150, shardCount: 4 });
      const error = await rejectionOf(throttler.waitForIdentify(-1, new AbortController().signal));
      expect(isDisclusterError(error, ErrorCode.InvalidShard)).toBe(true);
    });

    it('rejects pending and later waits after close()', async () => {
      const spec = { maxConcurrency: 1, windowMs: 1000, shardCount: 4 };
      const throttler = await make(spec);
      await requestAll(throttler, [0], spec.maxConcurrency, []);
      const pending = rejectionOf(throttler.waitForIdentify(1, new AbortController().signal));
      await throttler.close();
      expect(isDisclusterError(await pending, ErrorCode.Closed)).toBe(true);
      const later = await rejectionOf(throttler.waitForIdentify(2, new AbortController().signal));
      expect(isDisclusterError(later, ErrorCode.Closed)).toBe(true);
    });
  });
}
