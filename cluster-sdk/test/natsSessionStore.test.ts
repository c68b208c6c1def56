import { setTimeout as sleep } from 'node:timers/promises';
import type { SessionInfo } from '@discordjs/ws';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { ErrorCode, isDisclusterError, sessionBucket, sessionKey } from 'discluster-protocol';
import { startNatsServer, type NatsServerHandle } from 'discluster-testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NatsSessionStore, type NatsSessionStoreOptions } from '../src';
import { Cleanup, connectNats, uniqueBot } from './helpers';

let server: NatsServerHandle;
const cleanup = new Cleanup();

beforeAll(async () => {
  server = await startNatsServer();
});

afterEach(async () => {
  await cleanup.run();
});

afterAll(async () => {
  await server?.stop();
});

/** One "process": its own connection and store. */
async function openStore(
  options: NatsSessionStoreOptions,
): Promise<{ nc: NatsConnection; store: NatsSessionStore }> {
  const nc = await connectNats(server.url, 'sessions');
  cleanup.add(() => nc.close());
  const store = await NatsSessionStore.create(nc, options);
  cleanup.add(() => store.close());
  return { nc, store };
}

/** The raw bucket, read through a connection of its own. */
async function rawBucket(bot: string): Promise<KV> {
  const nc = await connectNats(server.url, 'raw');
  cleanup.add(() => nc.close());
  return new Kvm(nc).open(sessionBucket(bot));
}

/** Messages ever written to the bucket (puts and deletes): the stream's last sequence. */
async function writes(kv: KV): Promise<number> {
  return (await kv.status()).streamInfo.state.last_seq;
}

function session(shardId: number, sequence: number, shardCount = 16): SessionInfo {
  return {
    sessionId: `session-${shardId}`,
    sequence,
    shardId,
    shardCount,
    resumeURL: 'wss://gateway-us-east1-b.discord.gg',
  };
}

describe('NatsSessionStore', () => {
  it('coalesces a burst of updates into one write per shard', async () => {
    const bot = uniqueBot();
    const { store } = await openStore({ bot, shardCount: 16 });
    const kv = await rawBucket(bot);
    const before = await writes(kv);
    for (let sequence = 1; sequence <= 1000; sequence++) store.updateSessionInfo(0, session(0, sequence));
    await store.flush();
    expect((await writes(kv)) - before).toBe(1);
    expect((await kv.get(sessionKey(16, 0)))?.json<{ sequence: number }>().sequence).toBe(1000);
  });

  it('writes at a bounded rate while updates keep coming', async () => {
    const bot = uniqueBot();
    const flushIntervalMs = 100;
    const { store } = await openStore({ bot, shardCount: 16, flushIntervalMs });
    const kv = await rawBucket(bot);
    const before = await writes(kv);
    const startedAt = performance.now();
    for (let sequence = 1; sequence <= 1000; sequence++) {
      store.updateSessionInfo(0, session(0, sequence));
      store.updateSessionInfo(1, session(1, sequence));
      if (sequence % 10 === 0) await sleep(2);
    }
    await store.flush();
    const elapsed = performance.now() - startedAt;
    const written = (await writes(kv)) - before;
    // At most one write per shard per flush tick, plus the final flush: 2000 updates, few writes.
    expect(written).toBeLessThanOrEqual(2 * (Math.floor(elapsed / flushIntervalMs) + 2));
    expect(written).toBeLessThan(100);
    expect((await kv.get(sessionKey(16, 1)))?.json<{ sequence: number }>().sequence).toBe(1000);
  });

  it('lets another process retrieve what was flushed, and only for the same shard count', async () => {
    const bot = uniqueBot();
    const first = await openStore({ bot, shardCount: 16 });
    first.store.updateSessionInfo(3, session(3, 42));
    await first.store.flush();
    const second = await openStore({ bot, shardCount: 16 });
    expect(await second.store.retrieveSessionInfo(3)).toEqual(session(3, 42));
    expect(await second.store.retrieveSessionInfo(4)).toBeNull();
    const resharded = await openStore({ bot, shardCount: 32 });
    expect(await resharded.store.retrieveSessionInfo(3)).toBeNull();
  });

  it('deletes a session on null', async () => {
    const bot = uniqueBot();
    const { store } = await openStore({ bot, shardCount: 16 });
    store.updateSessionInfo(5, session(5, 7));
    await store.flush();
    store.updateSessionInfo(5, null);
    expect(await store.retrieveSessionInfo(5)).toBeNull();
    await store.flush();
    const kv = await rawBucket(bot);
    expect((await kv.get(sessionKey(16, 5)))?.operation).toBe('DEL');
    const other = await openStore({ bot, shardCount: 16 });
    expect(await other.store.retrieveSessionInfo(5)).toBeNull();
  });

  it('ignores corrupt and mismatched records with a debug event', async () => {
    const bot = uniqueBot();
    await openStore({ bot, shardCount: 16 }); // creates the bucket
    const kv = await rawBucket(bot);
    await kv.put(sessionKey(16, 1), '{not json');
    await kv.put(sessionKey(16, 2), JSON.stringify({ v: 1, sessionId: 'x' }));
    await kv.put(sessionKey(16, 3), JSON.stringify({ ...session(4, 1), v: 1, updatedAt: 0 }));
    const { store } = await openStore({ bot, shardCount: 16 });
    const debug: string[] = [];
    store.on('debug', (message) => debug.push(message));
    expect(await store.retrieveSessionInfo(1)).toBeNull();
    expect(await store.retrieveSessionInfo(2)).toBeNull();
    expect(await store.retrieveSessionInfo(3)).toBeNull();
    expect(debug).toHaveLength(3);
    expect(debug[0]).toMatch(/Ignoring invalid session record 16\.1: not JSON/);
    expect(debug[1]).toMatch(/Ignoring invalid session record 16\.2: .*sequence/);
    expect(debug[2]).toMatch(/it is for shard 4\/16/);
    // A fresh session replaces the corrupt one.
    store.updateSessionInfo(1, session(1, 9));
    await store.flush();
    expect((await kv.get(sessionKey(16, 1)))?.json<{ sequence: number }>().sequence).toBe(9);
  });

  it('is frozen after close(): later updates (such as destroy()’s nulls) change nothing', async () => {
    const bot = uniqueBot();
    const { store } = await openStore({ bot, shardCount: 16 });
    store.updateSessionInfo(0, session(0, 5));
    await store.close();
    store.updateSessionInfo(0, null);
    await store.flush();
    const { store: successor } = await openStore({ bot, shardCount: 16 });
    expect(await successor.retrieveSessionInfo(0)).toEqual(session(0, 5));
  });

  it('reads as "no session" when NATS fails, and reports write failures from flush()', async () => {
    const bot = uniqueBot();
    const { nc, store } = await openStore({ bot, shardCount: 16, requestTimeoutMs: 300 });
    const debug: string[] = [];
    store.on('debug', (message) => debug.push(message));
    await nc.close();
    expect(await store.retrieveSessionInfo(1)).toBeNull();
    expect(debug.join('\n')).toMatch(/Could not read session 16\.1/);
    store.updateSessionInfo(1, session(1, 1));
    const error = await store.flush().then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(isDisclusterError(error, ErrorCode.SessionFlushFailed)).toBe(true);
  });

  it('rejects bad options with an error naming them', async () => {
    const nc = await connectNats(server.url, 'options');
    cleanup.add(() => nc.close());
    const error = await NatsSessionStore.create(nc, { shardCount: 16, flushIntervalMs: 0 }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(isDisclusterError(error, ErrorCode.InvalidOption)).toBe(true);
    expect((error as Error).message).toMatch(/flushIntervalMs/);
  });
});

// Issue 13 (g): a revoked owner must not roll back the record of the owner that took its shard over.
describe('NatsSessionStore ownership', () => {
  const options = (bot: string): NatsSessionStoreOptions => ({
    bot,
    shardCount: 16,
    flushIntervalMs: 60_000,
  });

  it('a stale owner’s later write (or retry) never overwrites the new owner’s session', async () => {
    const bot = uniqueBot('own');
    const old = await openStore(options(bot));
    await old.store.retrieveSessionInfo(3);
    old.store.updateSessionInfo(3, session(3, 10));
    await old.store.flush();

    // The shard moved: the new owner reads the record (and resumes it), then identifies anew.
    const next = await openStore(options(bot));
    expect(await next.store.retrieveSessionInfo(3)).toEqual(session(3, 10));
    const newer: SessionInfo = { ...session(3, 1), sessionId: 'session-of-the-new-owner' };
    next.store.updateSessionInfo(3, newer);
    await next.store.flush();

    // The old owner, not yet fenced, flushes what it had in memory: dropped, not written.
    const debug: string[] = [];
    old.store.on('debug', (message) => debug.push(message));
    old.store.updateSessionInfo(3, session(3, 15));
    await old.store.flush();
    old.store.updateSessionInfo(3, null);
    await old.store.flush();
    const reader = await openStore(options(bot));
    expect(await reader.store.retrieveSessionInfo(3)).toEqual(newer);
    expect(debug.some((line) => /another process has written/.test(line))).toBe(true);

    // The new owner keeps writing as usual.
    next.store.updateSessionInfo(3, { ...newer, sequence: 7 });
    await next.store.flush();
    const later = await openStore(options(bot));
    expect((await later.store.retrieveSessionInfo(3))?.sequence).toBe(7);
  });

  it('the same owner writes on after its own earlier writes, and a resumed session continues', async () => {
    const bot = uniqueBot('own');
    const first = await openStore(options(bot));
    await first.store.retrieveSessionInfo(5);
    for (let sequence = 1; sequence <= 5; sequence++) {
      first.store.updateSessionInfo(5, session(5, sequence));
      await first.store.flush();
    }
    await first.store.close();
    // A restarted process resumes the stored session and keeps it up to date.
    const second = await openStore(options(bot));
    expect((await second.store.retrieveSessionInfo(5))?.sequence).toBe(5);
    second.store.updateSessionInfo(5, session(5, 9));
    await second.store.flush();
    const reader = await openStore(options(bot));
    expect((await reader.store.retrieveSessionInfo(5))?.sequence).toBe(9);
  });
});
