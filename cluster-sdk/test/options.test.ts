import { describe, expect, it } from 'vitest';
import { ErrorCode, isDisclusterError } from 'discluster-protocol';
import { resolveNatsIdentifyThrottlerOptions, resolveNatsSessionStoreOptions } from '../src';
import { validateAssignment, type ClusterAssignment } from '../src/cluster/ClusterOptions';

function errorOf(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a throw');
}

describe('NatsIdentifyThrottler options', () => {
  it('derives Discord defaults: 5 s window, 100 ms margin, 15 s waiter TTL', () => {
    const options = resolveNatsIdentifyThrottlerOptions({ shardCount: 32, maxConcurrency: 16 });
    expect(options).toMatchObject({
      bot: 'default',
      windowMs: 5000,
      safetyMarginMs: 100,
      slotTtlMs: 5100,
      waiterTtlMs: 15_000,
      orderingDelayMs: 250,
      budgetPollMs: 5000,
      budgetFloor: 10,
      storage: 'file',
    });
    expect(Object.isFrozen(options)).toBe(true);
  });

  it('scales derived values with a short window and keeps explicit ones', () => {
    const options = resolveNatsIdentifyThrottlerOptions({
      shardCount: 1,
      maxConcurrency: 1,
      windowMs: 200,
      safetyMarginMs: 40,
      waiterTtlMs: 700,
    });
    expect(options).toMatchObject({
      safetyMarginMs: 40,
      slotTtlMs: 240,
      waiterTtlMs: 700,
      orderingDelayMs: 20,
    });
    expect(
      resolveNatsIdentifyThrottlerOptions({ shardCount: 1, maxConcurrency: 1, windowMs: 200 }),
    ).toMatchObject({
      safetyMarginMs: 25,
      waiterTtlMs: 1000,
      budgetPollMs: 200,
    });
  });

  it.each([
    [{ maxConcurrency: 0 }, 'maxConcurrency'],
    [{ windowMs: 74, safetyMarginMs: 25 }, 'windowMs'],
    [{ safetyMarginMs: -1 }, 'safetyMarginMs'],
    [{ safetyMarginMs: 9 }, 'safetyMarginMs'],
    [{ waiterTtlMs: 99 }, 'waiterTtlMs'],
    [{ retryInitialMs: 500, retryMaxMs: 100 }, 'retryMaxMs'],
    [{ replicas: 6 }, 'replicas'],
  ])('rejects %j naming %s', (bad, name) => {
    const error = errorOf(() =>
      resolveNatsIdentifyThrottlerOptions({ shardCount: 1, maxConcurrency: 1, ...bad }),
    );
    expect(isDisclusterError(error, ErrorCode.InvalidOption)).toBe(true);
    expect(error.message).toContain(`Invalid option ${name}`);
  });

  it('accepts the boundary window + margin = 100 ms (nats-server minimum TTL)', () => {
    expect(
      resolveNatsIdentifyThrottlerOptions({
        shardCount: 1,
        maxConcurrency: 1,
        windowMs: 75,
        safetyMarginMs: 25,
      }).slotTtlMs,
    ).toBe(100);
  });
});

describe('NatsSessionStore options', () => {
  it('defaults to one flush per second', () => {
    expect(resolveNatsSessionStoreOptions({ shardCount: 4 })).toMatchObject({
      flushIntervalMs: 1000,
      bot: 'default',
    });
  });

  it('names the bad option', () => {
    const error = errorOf(() => resolveNatsSessionStoreOptions({ shardCount: 4, bot: 'a.b' }));
    expect(isDisclusterError(error, ErrorCode.InvalidBotNamespace)).toBe(true);
    expect(errorOf(() => resolveNatsSessionStoreOptions({ shardCount: 0 })).message).toMatch(/shardCount/);
  });
});

describe('a standalone assignment', () => {
  const gateway = {
    url: 'ws://127.0.0.1:1',
    shards: 1,
    session_start_limit: { total: 1, remaining: 1, reset_after: 0, max_concurrency: 1 },
  };
  it('without `bot` (plain JavaScript) uses the default namespace everywhere, not only in the check', () => {
    const withoutBot = { clusterId: 0, shardIds: [0], shardCount: 1, clusterIds: [0], token: 't', gateway };
    expect(validateAssignment(withoutBot as unknown as ClusterAssignment).bot).toBe('default');
    expect(validateAssignment({ ...withoutBot, bot: 'mine' }).bot).toBe('mine');
  });
});
