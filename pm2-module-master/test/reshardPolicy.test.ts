import { seededRandom } from 'discluster-testing';
import { describe, expect, it } from 'vitest';
import type { GatewayBot } from '../src/gatewayBot';
import {
  autoReshardReason,
  checkReshardBudget,
  chooseShardCount,
  identifyTimeMs,
} from '../src/reshard/reshardPolicy';

const gateway = (shards: number, maxConcurrency: number, remaining = 1000): GatewayBot => ({
  url: 'wss://gateway.discord.gg',
  shards,
  session_start_limit: { total: 1000, remaining, reset_after: 3_600_000, max_concurrency: maxConcurrency },
});

describe('chooseShardCount', () => {
  it('for any fleet picks a multiple of max_concurrency above the running count that fits the guilds', () => {
    const random = seededRandom(7);
    for (let run = 0; run < 2000; run++) {
      const maxConcurrency = [1, 2, 4, 16, 32][Math.floor(random() * 5)]!;
      const current = 1 + Math.floor(random() * 500);
      const recommended = 1 + Math.floor(random() * 600);
      const guildsPerShard = 100 + Math.floor(random() * 2400);
      const guilds = Math.floor(random() * 1_000_000);
      const result = chooseShardCount({
        current,
        gateway: gateway(recommended, maxConcurrency),
        guilds,
        guildsPerShard,
      });
      expect(result.ok).toBe(true);
      if (!result.ok) continue;
      const count = result.shardCount;
      expect(count % maxConcurrency).toBe(0);
      expect(count).toBeGreaterThan(current);
      expect(count).toBeGreaterThanOrEqual(recommended);
      expect(guilds / count).toBeLessThanOrEqual(guildsPerShard);
      // Not more than one step beyond what one of the three reasons asks for.
      const wanted = Math.max(recommended, Math.ceil(guilds / guildsPerShard), current + 1);
      expect(count - wanted).toBeLessThan(maxConcurrency);
    }
  });

  it('takes a requested count only if it is a multiple of max_concurrency and differs from the running one', () => {
    expect(
      chooseShardCount({ current: 16, requested: 32, gateway: gateway(16, 16), guildsPerShard: 2000 }),
    ).toEqual({
      ok: true,
      shardCount: 32,
    });
    expect(
      chooseShardCount({ current: 16, requested: 40, gateway: gateway(16, 16), guildsPerShard: 2000 }),
    ).toEqual({
      ok: false,
      reason: '--shards 40 is not a multiple of max_concurrency 16 (Discord requires it); try 48',
    });
    expect(
      chooseShardCount({ current: 16, requested: 16, gateway: gateway(16, 16), guildsPerShard: 2000 }),
    ).toEqual({
      ok: false,
      reason: 'the fleet already runs 16 shards',
    });
    // Fewer shards are allowed (a bot that shrank), as long as the count is valid.
    expect(
      chooseShardCount({ current: 16, requested: 8, gateway: gateway(16, 4), guildsPerShard: 2000 }),
    ).toEqual({
      ok: true,
      shardCount: 8,
    });
  });
});

describe('checkReshardBudget', () => {
  it('allows exactly when every new shard can identify and remaining stays at or above the floor', () => {
    const random = seededRandom(11);
    for (let run = 0; run < 2000; run++) {
      const shardCount = 1 + Math.floor(random() * 2000);
      const remaining = Math.floor(random() * 3000);
      const floor = Math.floor(random() * 50);
      const result = checkReshardBudget({ shardCount, remaining, resetAfterMs: 5_000_000, floor });
      expect(result.ok).toBe(remaining - shardCount >= floor);
    }
  });

  it('says what would help', () => {
    expect(
      checkReshardBudget({ shardCount: 64, remaining: 32, resetAfterMs: 2 * 3_600_000 + 90_000, floor: 10 }),
    ).toEqual({
      ok: false,
      reason:
        'session_start_limit.remaining is 32: 64 new shards would leave -32, below the floor 10 (reshard_budget_floor). ' +
        'Nothing changed. Retry after the daily reset (in 2h 2m) or choose fewer shards.',
    });
  });
});

describe('autoReshardReason', () => {
  it('reshards when Discord recommends more shards or a shard is too full, not otherwise', () => {
    expect(
      autoReshardReason({
        current: 16,
        gateway: gateway(16, 16),
        busiestShardGuilds: 1999,
        guildsPerShard: 2000,
      }),
    ).toBeNull();
    expect(
      autoReshardReason({
        current: 16,
        gateway: gateway(17, 16),
        busiestShardGuilds: 10,
        guildsPerShard: 2000,
      }),
    ).toMatch(/recommends 17 shards; 16 run/);
    expect(
      autoReshardReason({
        current: 16,
        gateway: gateway(16, 16),
        busiestShardGuilds: 2001,
        guildsPerShard: 2000,
      }),
    ).toMatch(/2001 guilds, above reshard_guilds_per_shard 2000/);
  });
});

describe('identifyTimeMs', () => {
  it('is one window per bucket of max_concurrency shards', () => {
    expect(identifyTimeMs(0, 16, 5000)).toBe(0);
    expect(identifyTimeMs(32, 16, 5000)).toBe(10_000);
    expect(identifyTimeMs(33, 16, 5000)).toBe(15_000);
    expect(identifyTimeMs(5, 1, 5000)).toBe(25_000);
  });
});
