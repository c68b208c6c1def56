import { describe, expect, it } from 'vitest';
import {
  BudgetRecordSchema,
  IdentifySlotRecordSchema,
  IdentifyWaiterRecordSchema,
  SessionRecordSchema,
  decodeRecord,
  encodeRecord,
  type BudgetRecord,
  type SessionRecord,
} from '../src';

const session: SessionRecord = {
  v: 1,
  sessionId: 'abc',
  sequence: 42,
  shardId: 3,
  shardCount: 16,
  resumeURL: 'wss://gateway-us-east1-b.discord.gg',
  updatedAt: 1_700_000_000_000,
};

const budget: BudgetRecord = {
  v: 1,
  total: 1000,
  remaining: 990,
  resetAt: 1_700_000_000_000,
  maxConcurrency: 16,
  updatedAt: 1_700_000_000_000,
};

describe('decodeRecord', () => {
  it('round-trips valid records', () => {
    expect(decodeRecord(SessionRecordSchema, encodeRecord(session))).toEqual({ ok: true, value: session });
    expect(decodeRecord(BudgetRecordSchema, new TextEncoder().encode(encodeRecord(budget)))).toEqual({
      ok: true,
      value: budget,
    });
    const slot = { v: 1, shardId: 0, shardCount: 1, instanceId: 'i-1', at: 5 };
    expect(decodeRecord(IdentifySlotRecordSchema, encodeRecord(slot)).ok).toBe(true);
    const waiter = { v: 1, shardId: 5, shardCount: 8, rateLimitKey: 1, instanceId: 'i', waiterId: 'w_1' };
    expect(decodeRecord(IdentifyWaiterRecordSchema, encodeRecord(waiter)).ok).toBe(true);
  });

  it('reports bad JSON instead of throwing', () => {
    const result = decodeRecord(SessionRecordSchema, '{not json');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(/not JSON/);
  });

  it.each([
    ['an unknown version', { ...session, v: 2 }, /v/],
    ['a negative sequence', { ...session, sequence: -1 }, /sequence/],
    ['a shard outside the count', { ...session, shardId: 16 }, /shardId/],
    ['a non-WebSocket resume URL', { ...session, resumeURL: 'http://x' }, /resumeURL/],
    ['a missing session id', { ...session, sessionId: undefined }, /sessionId/],
  ])('rejects a session with %s', (_name, value, path) => {
    const result = decodeRecord(SessionRecordSchema, JSON.stringify(value));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(path);
  });

  it('rejects a budget with remaining above total', () => {
    const result = decodeRecord(BudgetRecordSchema, encodeRecord({ ...budget, remaining: 1001 }));
    expect(result.ok).toBe(false);
  });
});
