import { describe, expect, it } from 'vitest';
import { ErrorCode, isDisclusterError } from 'discluster-protocol';
import { LocalIdentifyThrottler, defaultSafetyMarginMs } from '../src';
import { identifyThrottlerConformance } from './identifyThrottler.conformance';

identifyThrottlerConformance(
  'LocalIdentifyThrottler',
  async ({ maxConcurrency, windowMs }) => new LocalIdentifyThrottler(maxConcurrency, windowMs),
);

describe('LocalIdentifyThrottler options', () => {
  it('spaces grants by window + the default margin (max(25 ms, 2%))', () => {
    expect(new LocalIdentifyThrottler(1, 5000).spacingMs).toBe(5100);
    expect(new LocalIdentifyThrottler(1, 200).spacingMs).toBe(225);
    expect(new LocalIdentifyThrottler(1, 200, { safetyMarginMs: 0 }).spacingMs).toBe(200);
    expect(defaultSafetyMarginMs(5000)).toBe(100);
  });

  it.each([
    [0, 5000],
    [1.5, 5000],
    [1, 0],
  ])('rejects maxConcurrency %s / windowMs %s with a clear error', (maxConcurrency, windowMs) => {
    let caught: unknown;
    try {
      new LocalIdentifyThrottler(maxConcurrency, windowMs);
    } catch (error) {
      caught = error;
    }
    expect(isDisclusterError(caught, ErrorCode.InvalidOption)).toBe(true);
    expect((caught as Error).message).toMatch(/Invalid option (maxConcurrency|windowMs)/);
  });
});
