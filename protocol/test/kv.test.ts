import { describe, expect, it } from 'vitest';
import {
  BucketPurpose,
  DEFAULT_BOT,
  ErrorCode,
  budgetBucket,
  budgetKey,
  identifyBucket,
  identifySlotKey,
  identifyWaiterKey,
  identifyWaitersBucket,
  isDisclusterError,
  sessionBucket,
  sessionKey,
  validateBotNamespace,
} from '../src';

// What nats.js accepts as a bucket name and as a key (subject tokens).
const BUCKET_NAME = /^[-\w]+$/;
const KV_KEY = /^[-/_=.a-zA-Z0-9]+$/;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return isDisclusterError(error) ? error.code : 'not a DisclusterError';
  }
  return undefined;
}

describe('bot namespace', () => {
  it.each(['default', 'a', 'my-bot_2', 'A'.repeat(64)])('accepts %s', (bot) => {
    expect(validateBotNamespace(bot)).toBe(bot);
  });

  it.each(['', 'has space', 'dot.ted', 'star*', 'gt>', 'A'.repeat(65), 'ümlaut'])('rejects %j', (bot) => {
    expect(codeOf(() => validateBotNamespace(bot))).toBe(ErrorCode.InvalidBotNamespace);
    expect(() => identifyBucket(bot)).toThrow(/`bot` setting/);
  });

  it('defaults to "default"', () => {
    expect(DEFAULT_BOT).toBe('default');
  });
});

describe('bucket names', () => {
  const builders = [identifyBucket, identifyWaitersBucket, budgetBucket, sessionBucket];

  it('are valid bucket names, distinct per purpose and per bot', () => {
    const names = ['default', 'other', 'x_y'].flatMap((bot) => builders.map((build) => build(bot)));
    for (const name of names) expect(name).toMatch(BUCKET_NAME);
    expect(new Set(names).size).toBe(names.length);
    expect(identifyBucket('default')).toBe('discluster_default_identify');
  });

  it('cannot collide across bots: no purpose is an _-suffix of another', () => {
    const purposes = Object.values(BucketPurpose);
    for (const a of purposes) {
      for (const b of purposes) if (a !== b) expect(`_${a}`.endsWith(`_${b}`)).toBe(false);
    }
  });
});

describe('keys', () => {
  it('identify slots are one per rate-limit key', () => {
    expect(identifySlotKey(0)).toBe('slot.0');
    expect(identifySlotKey(15)).toBe('slot.15');
    expect(codeOf(() => identifySlotKey(-1))).toBe(ErrorCode.InvalidKey);
    expect(codeOf(() => identifySlotKey(1.5))).toBe(ErrorCode.InvalidKey);
  });

  it('waiter keys carry shard count, rate-limit key, shard and waiter', () => {
    const key = identifyWaiterKey({ shardCount: 16, rateLimitKey: 3, shardId: 7, waiterId: 'abc-1' });
    expect(key).toBe('16.3.7.abc-1');
    expect(key).toMatch(KV_KEY);
    expect(
      codeOf(() => identifyWaiterKey({ shardCount: 16, rateLimitKey: 3, shardId: 16, waiterId: 'a' })),
    ).toBe(ErrorCode.InvalidShard);
    expect(
      codeOf(() => identifyWaiterKey({ shardCount: 16, rateLimitKey: 3, shardId: 1, waiterId: 'a.b' })),
    ).toBe(ErrorCode.InvalidKey);
  });

  it('session keys include the shard count', () => {
    expect(sessionKey(16, 3)).toBe('16.3');
    expect(sessionKey(32, 3)).not.toBe(sessionKey(16, 3));
    expect(codeOf(() => sessionKey(16, 16))).toBe(ErrorCode.InvalidShard);
    expect(codeOf(() => sessionKey(0, 0))).toBe(ErrorCode.InvalidShard);
    expect(codeOf(() => sessionKey(4, -1))).toBe(ErrorCode.InvalidShard);
  });

  it('budget key is a valid key', () => {
    expect(budgetKey()).toMatch(KV_KEY);
  });
});
