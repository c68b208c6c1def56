/**
 * Conformance: @discordjs/ws (WebSocketManager, an independent and widely used shard client)
 * drives discord-sim. Startup (READY + GUILD_CREATE routing), transport compression, intents and
 * session multiplicity. Resume paths are in conformance.resume.test.ts, fatal close codes in
 * conformance.fatal.test.ts.
 */
import * as zlib from 'node:zlib';
import { CompressionMethod, WebSocketShardStatus } from '@discordjs/ws';
import { GatewayIntentBits } from 'discord-api-types/v10';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { zstdAvailable } from '../src';
import {
  barrier,
  guildPerShard,
  Harness,
  message,
  shardOf,
  tally,
  waitFor,
  WindowThrottler,
} from './djs-harness';

const MESSAGES =
  GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages | GatewayIntentBits.MessageContent;

let harness = new Harness();
afterEach(async () => {
  await harness.cleanup();
  harness = new Harness();
});

describe('identify → READY → GUILD_CREATE', () => {
  it.each([1, 3, 8])(
    '%i shard(s): every shard READY, each guild on the shard the formula picks, exactly once',
    async (count) => {
      // max_concurrency = count: @discordjs/ws's own SimpleIdentifyThrottler (5 s per key) then never waits.
      const sim = await harness.sim({ guilds: 300, shards: count, maxConcurrency: count });
      // shardCount left to /gateway/bot's recommendation, throttler left to the package default.
      const client = harness.manager(sim, {
        intents: GatewayIntentBits.Guilds,
        shardCount: null,
        defaultThrottler: true,
      });
      await client.connect();

      const state = await sim.state();
      const guildIds = sim.guildIds();
      expect(guildIds).toHaveLength(state.guilds);
      expect(new Set(guildIds).size).toBe(guildIds.length);

      const expected = Array.from(
        { length: count },
        (_, shardId) => new Set(guildIds.filter((id) => shardOf(id, count) === shardId)),
      );
      await waitFor(() => client.events('GUILD_CREATE').length >= guildIds.length, 'every GUILD_CREATE');
      await barrier(sim, client, count, [...Array(count).keys()], 'after-guild-create');

      const union: string[] = [];
      for (let shardId = 0; shardId < count; shardId++) {
        const ready = client.received.ready.get(shardId) ?? [];
        expect(ready, `READY on shard ${shardId}`).toHaveLength(1);
        expect(ready[0]!.shard).toEqual([shardId, count]);
        expect(ready[0]!.v).toBe(10);
        expect(ready[0]!.guilds.every((guild) => guild.unavailable === true)).toBe(true);
        expect(new Set(ready[0]!.guilds.map((guild) => guild.id))).toEqual(expected[shardId]);

        const dispatches = client.received.dispatches.get(shardId)!;
        expect(dispatches[0]!.t).toBe('READY');
        expect(dispatches[0]!.s).toBe(1);
        // Sequence numbers count per session, 1, 2, 3, … with no gaps.
        expect(dispatches.map((payload) => payload.s)).toEqual(dispatches.map((_, index) => index + 1));
        const created = dispatches
          .filter((payload) => payload.t === 'GUILD_CREATE')
          .map((payload) => (payload.d as { id: string }).id);
        expect(created, `GUILD_CREATE count on shard ${shardId}`).toHaveLength(expected[shardId]!.size);
        expect(new Set(created)).toEqual(expected[shardId]);
        union.push(...created);
      }
      expect(union).toHaveLength(guildIds.length);
      expect(new Set(union)).toEqual(new Set(guildIds));

      const after = await sim.state();
      expect(after.identifies).toBe(count);
      expect(after.resumes).toBe(0);
      expect(after.liveSessions.map((live) => live.shard).sort((a, b) => a[0] - b[0])).toEqual(
        [...Array(count).keys()].map((id) => [id, count]),
      );
      expect(after.violations).toMatchObject({ identifyRate: 0, duplicateLiveSessions: 0, sendRate: 0 });
      expect(after.sessionStartRemaining).toBe(1000 - count);
      expect([...(await client.manager.fetchStatus()).values()]).toEqual(
        Array(count).fill(WebSocketShardStatus.Ready),
      );
    },
  );
});

describe('transport compression', () => {
  async function trafficRun(options: {
    compression: CompressionMethod;
    eventsPerSecond: number;
    seconds: number;
    split?: boolean;
  }): Promise<void> {
    const sim = await harness.sim({ guilds: 100, shards: 2, splitCompressedFrames: options.split ?? false });
    const client = harness.manager(sim, {
      intents: MESSAGES,
      shardCount: 2,
      compression: options.compression,
    });
    await client.connect();
    await waitFor(() => client.events('GUILD_CREATE').length >= 100, 'GUILD_CREATEs');

    const { id: runId, total } = (await sim.post('/traffic', {
      eventsPerSecond: options.eventsPerSecond,
      seconds: options.seconds,
    })) as { id: number; total: number };
    expect(total).toBe(Math.round(options.eventsPerSecond * options.seconds));
    const ofRun = (): string[] =>
      client
        .events('MESSAGE_CREATE')
        .map(({ payload }) => (payload.d as { nonce?: string }).nonce ?? '')
        .filter((nonce) => nonce.startsWith(`${runId}:`));
    await waitFor(() => ofRun().length >= total, `${total} MESSAGE_CREATEs of run ${runId}`, {
      timeoutMs: 90_000,
      intervalMs: 100,
    });
    await waitFor(
      async () => ((await sim.get(`/traffic/${runId}`)) as { done: boolean }).done,
      'traffic run done',
    );
    await barrier(sim, client, 2, [0, 1], 'after-traffic');

    const counts = tally(ofRun());
    const missing: number[] = [];
    const duplicated: number[] = [];
    for (let n = 0; n < total; n++) {
      const seen = counts.get(`${runId}:${n}`) ?? 0;
      if (seen === 0) missing.push(n);
      if (seen > 1) duplicated.push(n);
    }
    expect({ missing: missing.slice(0, 10), duplicated: duplicated.slice(0, 10) }).toEqual({
      missing: [],
      duplicated: [],
    });
    expect(counts.size).toBe(total);
    // Each message went to the shard its guild routes to.
    for (const { shardId, payload } of client.events('MESSAGE_CREATE')) {
      expect(shardOf((payload.d as { guild_id: string }).guild_id, 2)).toBe(shardId);
    }
    expect(client.received.errors).toEqual([]);
    const state = await sim.state();
    expect(state.resumes).toBe(0);
    expect(state.identifies).toBe(2);
  }

  it('zlib-stream with ZlibSync: 10 000 MESSAGE_CREATEs at 5000/s, every nonce exactly once', async () => {
    await trafficRun({ compression: CompressionMethod.ZlibSync, eventsPerSecond: 5000, seconds: 2 });
  }, 120_000);

  it('zlib-stream with ZlibSync and every message split across two WebSocket messages', async () => {
    await trafficRun({
      compression: CompressionMethod.ZlibSync,
      eventsPerSecond: 5000,
      seconds: 2,
      split: true,
    });
    // The split is visible to a client as separate messages, so the run above went through the
    // client's buffer-until-00-00-ff-ff path: HELLO arrives in two messages, only the last ends the flush.
    const sim = await harness.sim({ guilds: 1, splitCompressedFrames: true });
    const socket = new WebSocket(`${sim.urls.gateway}/?v=10&encoding=json&compress=zlib-stream`);
    const parts: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      socket.on('message', (data: Buffer) => {
        parts.push(Buffer.from(data));
        if (data.subarray(-4).equals(Buffer.from([0, 0, 0xff, 0xff]))) resolve();
      });
      socket.on('error', reject);
    });
    socket.terminate();
    expect(parts).toHaveLength(2);
    expect(parts[0]!.subarray(-4).equals(Buffer.from([0, 0, 0xff, 0xff]))).toBe(false);
    expect(
      JSON.parse(
        zlib.inflateSync(Buffer.concat(parts), { finishFlush: zlib.constants.Z_SYNC_FLUSH }).toString(),
      ).op,
    ).toBe(10);
  }, 120_000);

  it('zlib-stream with ZlibNative at a low rate (300 events at 100/s)', async () => {
    // ZlibNative splices messages under high rates on the client side (discord.js #10414): low rate only.
    await trafficRun({ compression: CompressionMethod.ZlibNative, eventsPerSecond: 100, seconds: 3 });
  }, 60_000);

  it('zstd-stream: delivered when this Node has zstd, otherwise refused with a reason naming zstd', async () => {
    const sim = await harness.sim({ guilds: 10, shards: 1 });
    const nodeHasZstd =
      typeof (zlib as { createZstdDecompress?: unknown }).createZstdDecompress === 'function';
    expect(zstdAvailable()).toBe(nodeHasZstd);
    const zstdMethod = (CompressionMethod as unknown as Record<string, number | undefined>)['ZstdNative'];

    if (nodeHasZstd && zstdMethod !== undefined) {
      const client = harness.manager(sim, {
        intents: MESSAGES,
        shardCount: 1,
        compression: zstdMethod as CompressionMethod,
      });
      await client.connect();
      await waitFor(() => client.events('GUILD_CREATE').length >= 10, 'GUILD_CREATEs over zstd');
      for (let i = 0; i < 50; i++)
        await sim.dispatch('MESSAGE_CREATE', message(`77000000000000${100 + i}`, sim.guildIds()[i % 10]!));
      await waitFor(() => client.events('MESSAGE_CREATE').length >= 50, '50 MESSAGE_CREATEs over zstd');
      await barrier(sim, client, 1, [0], 'zstd');
      expect([
        ...tally(
          client.events('MESSAGE_CREATE').map(({ payload }) => (payload.d as { id: string }).id),
        ).values(),
      ]).toEqual(Array(50).fill(1));
      expect(client.received.errors).toEqual([]);
      return;
    }

    const socket = new WebSocket(`${sim.urls.gateway}/?v=10&encoding=json&compress=zstd-stream`);
    type Outcome = { kind: 'message'; data: Buffer } | { kind: 'closed'; code: number; reason: string };
    const outcome = await new Promise<Outcome>((resolve, reject) => {
      socket.once('message', (data: Buffer) => resolve({ kind: 'message', data: Buffer.from(data) }));
      socket.once('close', (code, reason) => resolve({ kind: 'closed', code, reason: reason.toString() }));
      socket.once('error', reject);
    });
    socket.terminate();
    if (nodeHasZstd) {
      // The simulator speaks zstd but this @discordjs/ws has no ZstdNative: decode HELLO by hand,
      // through a streaming context (each message is flushed, never ends a zstd frame).
      expect(outcome.kind).toBe('message');
      const create = (zlib as unknown as { createZstdDecompress: () => NodeJS.ReadWriteStream })
        .createZstdDecompress;
      const decompressor = create();
      const text = await new Promise<string>((resolve) => {
        decompressor.once('data', (chunk: Buffer) => resolve(chunk.toString()));
        decompressor.write((outcome as { data: Buffer }).data);
      });
      (decompressor as unknown as { destroy(): void }).destroy();
      expect(JSON.parse(text).op).toBe(10);
    } else {
      expect(outcome).toEqual({ kind: 'closed', code: 4002, reason: expect.stringMatching(/zstd/i) });
      const state = await sim.state();
      expect(state.serverCloses['4002']).toBe(1);
      expect(state.connections).toBe(0);
    }
  });
});

describe('intents', () => {
  it('a session without GUILD_MESSAGES gets no MESSAGE_CREATE', async () => {
    const sim = await harness.sim({ guilds: 20, shards: 1 });
    const client = harness.manager(sim, {
      intents: GatewayIntentBits.Guilds | GatewayIntentBits.MessageContent,
      shardCount: 1,
    });
    await client.connect();
    const guilds = sim.guildIds();
    let routed = 0;
    for (let i = 0; i < 5; i++)
      routed += (await sim.dispatch('MESSAGE_CREATE', message(`7100000000000000${i}`, guilds[i]!))).sessions;
    // A guild event the session does subscribe to still arrives (the filter is per event, not per session).
    await sim.dispatch('GUILD_UPDATE', { id: guilds[0], guild_id: guilds[0], name: 'renamed' });
    await barrier(sim, client, 1, [0], 'no-guild-messages');
    expect(routed).toBe(0);
    expect(client.events('MESSAGE_CREATE')).toEqual([]);
    expect(client.events('GUILD_UPDATE')).toHaveLength(1);
  });

  it('without MESSAGE_CONTENT a guild message arrives with content emptied; with it, intact', async () => {
    const sim = await harness.sim({ guilds: 20, shards: 1 });
    const throttler = new WindowThrottler(1, 250);
    // Shard count 1 and shard count 2 are different generations: both get every event, no duplicates.
    const without = harness.manager(
      sim,
      { intents: GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages, shardCount: 1 },
      throttler,
    );
    const withContent = harness.manager(sim, { intents: MESSAGES, shardCount: 2 }, throttler);
    await Promise.all([without.connect(), withContent.connect()]);
    const guildId = sim.guildIds()[3]!;
    await sim.dispatch('MESSAGE_CREATE', message('7200000000000001', guildId, 'secret words'));
    await barrier(sim, without, 1, [0], 'content-1');
    await barrier(sim, withContent, 2, [0, 1], 'content-2');

    const plain = without.events('MESSAGE_CREATE');
    expect(plain).toHaveLength(1);
    expect(plain[0]!.payload.d).toMatchObject({
      id: '7200000000000001',
      guild_id: guildId,
      content: '',
      embeds: [],
      attachments: [],
    });
    const full = withContent.events('MESSAGE_CREATE');
    expect(full).toHaveLength(1);
    expect(full[0]!.shardId).toBe(shardOf(guildId, 2));
    expect(full[0]!.payload.d).toMatchObject({ id: '7200000000000001', content: 'secret words' });
    expect((await sim.state()).violations.duplicateLiveSessions).toBe(0);
  });

  it('a guild-less dispatch (no guild_id) reaches shard 0 only', async () => {
    const sim = await harness.sim({ guilds: 60, shards: 3 });
    const client = harness.manager(sim, {
      intents: MESSAGES | GatewayIntentBits.DirectMessages,
      shardCount: 3,
    });
    await client.connect();
    const dm = await sim.dispatch('MESSAGE_CREATE', message('7300000000000001', null, 'a direct message'));
    const other = await sim.dispatch('USER_UPDATE', { id: '7300000000000002', username: 'renamed' });
    expect(dm.sessions).toBe(1);
    expect(other.sessions).toBe(1);
    await barrier(sim, client, 3, [0, 1, 2], 'guildless');
    const dms = client.events('MESSAGE_CREATE');
    expect(dms.map(({ shardId }) => shardId)).toEqual([0]);
    expect(dms[0]!.payload.d).toMatchObject({ id: '7300000000000001', content: 'a direct message' });
    expect(dms[0]!.payload.d).not.toHaveProperty('guild_id');
    expect(client.events('USER_UPDATE').map(({ shardId }) => shardId)).toEqual([0]);
  });
});

describe('session multiplicity', () => {
  it('two managers serving shard 0 of the same count are counted as duplicate live sessions', async () => {
    const sim = await harness.sim({ guilds: 40, shards: 2 });
    const throttler = new WindowThrottler(1, 250);
    const first = harness.manager(sim, { intents: MESSAGES, shardCount: 2, shardIds: [0] }, throttler);
    const second = harness.manager(sim, { intents: MESSAGES, shardCount: 2, shardIds: [0] }, throttler);
    await first.connect();
    await second.connect();

    const state = await sim.state();
    expect(state.identifies).toBe(2);
    expect(state.liveSessions.filter((live) => live.shard[0] === 0 && live.shard[1] === 2)).toHaveLength(2);
    expect(state.violations.duplicateLiveSessions).toBeGreaterThanOrEqual(1);
    expect(state.violations.identifyRate).toBe(0);
    const duplicates = (await sim.get('/duplicates')) as Array<{
      shard: [number, number];
      sessionIds: string[];
    }>;
    expect(duplicates.length).toBeGreaterThanOrEqual(1);
    expect(duplicates[0]!.shard).toEqual([0, 2]);
    expect(new Set(duplicates[0]!.sessionIds)).toEqual(
      new Set([first.sessions.get(0)!.sessionId, second.sessions.get(0)!.sessionId]),
    );

    // Discord serves both: one guild event reaches each of them.
    const guildId = guildPerShard(sim.guildIds(), 2)[0]!;
    await sim.dispatch('MESSAGE_CREATE', message('7400000000000001', guildId));
    await barrier(sim, first, 2, [0], 'dup-1');
    await barrier(sim, second, 2, [0], 'dup-2');
    expect(first.events('MESSAGE_CREATE')).toHaveLength(1);
    expect(second.events('MESSAGE_CREATE')).toHaveLength(1);
  });

  it('shards of two counts (0..1 of 2, 0..3 of 4) are no duplicates; a dispatch reaches one session of each', async () => {
    const sim = await harness.sim({ guilds: 80, shards: 2 });
    const throttler = new WindowThrottler(1, 250);
    const old = harness.manager(
      sim,
      { intents: MESSAGES, shardCount: 2, shardIds: { start: 0, end: 1 } },
      throttler,
    );
    const next = harness.manager(
      sim,
      { intents: MESSAGES, shardCount: 4, shardIds: { start: 0, end: 3 } },
      throttler,
    );
    await Promise.all([old.connect(), next.connect()]);
    const state = await sim.state();
    expect(state.liveSessions).toHaveLength(6);
    expect(state.violations.duplicateLiveSessions).toBe(0);
    expect(await sim.get('/duplicates')).toEqual([]);

    const guilds = guildPerShard(sim.guildIds(), 4);
    for (const [index, guildId] of guilds.entries()) {
      const { sessions } = await sim.dispatch('MESSAGE_CREATE', message(`750000000000000${index}`, guildId));
      expect(sessions).toBe(2);
    }
    await barrier(sim, old, 2, [0, 1], 'gen-2');
    await barrier(sim, next, 4, [0, 1, 2, 3], 'gen-4');
    for (const [index, guildId] of guilds.entries()) {
      const id = `750000000000000${index}`;
      const inOld = old
        .events('MESSAGE_CREATE')
        .filter(({ payload }) => (payload.d as { id: string }).id === id);
      const inNext = next
        .events('MESSAGE_CREATE')
        .filter(({ payload }) => (payload.d as { id: string }).id === id);
      expect(inOld.map(({ shardId }) => shardId)).toEqual([shardOf(guildId, 2)]);
      expect(inNext.map(({ shardId }) => shardId)).toEqual([shardOf(guildId, 4)]);
    }
  });
});
