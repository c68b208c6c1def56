import { describe, expect, it } from 'vitest';
import { waitFor } from '../src/index.js';

describe('waitFor', () => {
  it('resolves once the predicate holds', async () => {
    let calls = 0;
    await waitFor(() => ++calls >= 3, { description: 'three calls', intervalMs: 1 });
    expect(calls).toBe(3);
  });

  it('accepts async predicates and treats throws as not-yet', async () => {
    let calls = 0;
    await waitFor(
      async () => {
        calls++;
        if (calls < 2) throw new Error('not up yet');
        return true;
      },
      { description: 'a service', intervalMs: 1 },
    );
    expect(calls).toBe(2);
  });

  it('names the description and the last error on timeout', async () => {
    await expect(
      waitFor(
        () => {
          throw new Error('connection refused');
        },
        { description: 'the widget to appear', timeoutMs: 50, intervalMs: 5 },
      ),
    ).rejects.toThrow(/waiting for the widget to appear \(last error: connection refused\)/);
  });
});
