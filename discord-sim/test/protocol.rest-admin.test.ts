// The simulator's HTTP side: Discord's REST routes a shard manager uses (auth, body shapes, rate-limit
// headers and 429s) and the admin API under /_sim, including how it refuses bad input without
// changing anything.
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { shardForGuild, type DiscordSim } from '../src/index.js';
import {
  adminPost,
  closeAllSims,
  getState,
  RawClient,
  request,
  stableState,
  startSim,
  TOKEN,
  waitForState,
  type GatewayMessage,
} from './support/gateway.js';

afterEach(closeAllSims);

const QUERY = '?v=10&encoding=json';
const GUILDS = 1 << 0;
const GUILD_MESSAGES = 1 << 9;
const MESSAGE_CONTENT = 1 << 15;
const auth = { authorization: `Bot ${TOKEN}` };

function gatewayBot(sim: DiscordSim, headers: Record<string, string> = auth): ReturnType<typeof request> {
  return request(`${sim.urls.rest}/gateway/bot`, { headers });
}

/** A snowflake whose `(id >> 22) % shardCount` is `shardId` (not one of the simulator's guilds). */
function guildIdForShard(shardId: number, shardCount: number, salt = 0): string {
  for (let offset = 1_000_000_000 + salt * 1000; ; offset++) {
    if (offset % shardCount === shardId) return ((BigInt(offset) << 22n) | 5n).toString();
  }
}

describe('REST /api/v10/gateway', () => {
  it('answers without auth with the gateway URL', async () => {
    const sim = await startSim();
    const response = await request(`${sim.urls.rest}/gateway`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/application\/json/);
    expect(response.body).toEqual({ url: sim.urls.gateway });
  });

  it('is also served without an explicit version and with a trailing slash', async () => {
    const sim = await startSim();
    const base = sim.urls.rest.replace(/\/v10$/, '');
    expect((await request(`${base}/gateway`)).body).toEqual({ url: sim.urls.gateway });
    expect((await request(`${sim.urls.rest}/gateway/`)).body).toEqual({ url: sim.urls.gateway });
  });
});

describe('REST /api/v10/gateway/bot', () => {
  it.each([
    ['no Authorization header', {}],
    ['a wrong token', { authorization: 'Bot wrong' }],
    ['the right token without "Bot "', { authorization: TOKEN }],
    ['the right token as Bearer', { authorization: `Bearer ${TOKEN}` }],
  ])('401 with Discord-shaped JSON for %s', async (_name, headers: Record<string, string>) => {
    const sim = await startSim();
    const response = await gatewayBot(sim, headers);
    expect(response.status).toBe(401);
    expect(response.text).toBe('{"message":"401: Unauthorized","code":0}');
    expect(response.headers.get('content-type')).toMatch(/application\/json/);
    expect((await getState(sim)).rest.unauthorized).toBe(1);
  });

  it('returns url, shards and the full session_start_limit', async () => {
    const sim = await startSim({
      guilds: 10,
      shards: 6,
      maxConcurrency: 3,
      sessionStartTotal: 200,
      sessionStartRemaining: 150,
    });
    const response = await gatewayBot(sim);
    expect(response.status).toBe(200);
    const body = response.body as {
      url: string;
      shards: number;
      session_start_limit: Record<string, number>;
    };
    expect(body.url).toBe(sim.urls.gateway);
    expect(body.shards).toBe(6);
    expect(Object.keys(body.session_start_limit).sort()).toEqual([
      'max_concurrency',
      'remaining',
      'reset_after',
      'total',
    ]);
    expect(body.session_start_limit).toMatchObject({ total: 200, remaining: 150, max_concurrency: 3 });
    expect(Number.isInteger(body.session_start_limit['reset_after'])).toBe(true);
    expect(body.session_start_limit['reset_after']).toBeGreaterThan(0);
    expect(body.session_start_limit['reset_after']).toBeLessThanOrEqual(86_400_000);
  });

  it('recommends one shard per 1000 guilds by default', async () => {
    const sim = await startSim({ guilds: 2500 });
    expect((await gatewayBot(sim)).body).toMatchObject({
      shards: 3,
      session_start_limit: { total: 1000, remaining: 1000, max_concurrency: 1 },
    });
  });

  it('remaining follows successful IDENTIFYs', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    await client.identifyReady();
    expect((await gatewayBot(sim)).body).toMatchObject({ session_start_limit: { remaining: 999 } });
  });

  it('sends X-RateLimit-* headers and counts the bucket down', async () => {
    const sim = await startSim({ gatewayBotLimit: 5, gatewayBotResetMs: 60_000 });
    const first = await gatewayBot(sim);
    const second = await gatewayBot(sim);
    for (const response of [first, second]) {
      expect(response.status).toBe(200);
      expect(response.headers.get('x-ratelimit-limit')).toBe('5');
      expect(response.headers.get('x-ratelimit-bucket')).toMatch(/\S/);
      const resetAfter = Number(response.headers.get('x-ratelimit-reset-after'));
      expect(resetAfter).toBeGreaterThan(0);
      expect(resetAfter).toBeLessThanOrEqual(60);
      // X-RateLimit-Reset is an epoch in seconds, in the future.
      expect(Number(response.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000 - 1);
    }
    expect(first.headers.get('x-ratelimit-remaining')).toBe('4');
    expect(second.headers.get('x-ratelimit-remaining')).toBe('3');
    expect(first.headers.get('x-ratelimit-bucket')).toBe(second.headers.get('x-ratelimit-bucket'));
  });

  it('answers 429 with Retry-After and a JSON body once the bucket is empty', async () => {
    const sim = await startSim({ gatewayBotLimit: 2, gatewayBotResetMs: 60_000 });
    expect((await gatewayBot(sim)).status).toBe(200);
    expect((await gatewayBot(sim)).status).toBe(200);
    const limited = await gatewayBot(sim);
    expect(limited.status).toBe(429);
    const retryAfterHeader = Number(limited.headers.get('retry-after'));
    expect(Number.isInteger(retryAfterHeader)).toBe(true);
    expect(retryAfterHeader).toBeGreaterThan(0);
    expect(retryAfterHeader).toBeLessThanOrEqual(60);
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(limited.headers.get('x-ratelimit-scope')).toBe('user');
    expect(limited.headers.get('x-ratelimit-global')).toBeNull();
    const body = limited.body as { message: string; retry_after: number; global: boolean };
    expect(body).toEqual({
      message: 'You are being rate limited.',
      retry_after: expect.any(Number),
      global: false,
    });
    expect(body.retry_after).toBeGreaterThan(0);
    expect(body.retry_after).toBeLessThanOrEqual(60);
    expect((await getState(sim)).rest.rateLimited).toBe(1);
  });

  it('answers a global 429 with x-ratelimit-global once the global limit is passed', async () => {
    const sim = await startSim({ restGlobalPerSecond: 1 });
    // The global window is one second; keep asking until two requests share one (bounded for liveness).
    let limited: Awaited<ReturnType<typeof request>> | undefined;
    const deadline = Date.now() + 15_000;
    while (!limited && Date.now() < deadline) {
      const response = await request(`${sim.urls.rest}/gateway`);
      if (response.status === 429) limited = response;
      else expect(response.status).toBe(200);
    }
    expect(limited, 'a global 429').toBeDefined();
    expect(limited!.headers.get('x-ratelimit-global')).toBe('true');
    expect(limited!.headers.get('x-ratelimit-scope')).toBe('global');
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(0);
    expect(limited!.body).toEqual({
      message: 'You are being rate limited.',
      retry_after: expect.any(Number),
      global: true,
    });
  });
});

describe('REST errors', () => {
  it('an unknown API route is a 404 in Discord JSON', async () => {
    const sim = await startSim();
    const response = await request(`${sim.urls.rest}/no/such/route`, { headers: auth });
    expect(response.status).toBe(404);
    expect(response.body).toEqual({ message: '404: Not Found', code: 0 });
  });

  it('a path outside the API and the admin prefix is a 404 in JSON', async () => {
    const sim = await startSim();
    const response = await request(sim.urls.rest.replace('/api/v10', '/nothing-here'));
    expect(response.status).toBe(404);
    expect(response.body).toEqual({ message: '404: Not Found', code: 0 });
  });

  it('an unsupported API version is a 400 with Discord code 50041', async () => {
    const sim = await startSim();
    const response = await request(sim.urls.rest.replace('/v10', '/v6') + '/gateway');
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ code: 50041 });
  });

  it('a method other than GET is a 405 in JSON', async () => {
    const sim = await startSim();
    const response = await request(`${sim.urls.rest}/gateway`, { method: 'POST', body: '{}' });
    expect(response.status).toBe(405);
    expect(response.body).toMatchObject({ code: 0 });
  });
});

// ---- admin API ---------------------------------------------------------------------------------

describe('admin API: reading', () => {
  it('GET /channels lists generated channels of a kind; a bad kind or limit is a 400', async () => {
    const sim = await startSim({ guilds: 5 });
    const general = await request(`${sim.urls.admin}/channels?limit=3`);
    expect(general.status).toBe(200);
    const listed = general.body as Array<{ id: string; guild_id: string; kind: string }>;
    expect(listed.map((c) => c.kind)).toEqual(['general', 'general', 'general']);
    expect(listed.map((c) => c.id)).toEqual([0, 1, 2].map((i) => sim.simulator.guilds.channelId(i)));
    const readOnly = (await request(`${sim.urls.admin}/channels?kind=read-only`)).body as Array<{
      id: string;
    }>;
    expect(readOnly.map((c) => c.id)).toEqual(
      [0, 1, 2, 3, 4].map((i) => sim.simulator.guilds.channelId(i, 'read-only')),
    );
    for (const query of ['kind=voice', 'limit=0', 'limit=abc', 'limit=10001'])
      expect((await request(`${sim.urls.admin}/channels?${query}`)).status).toBe(400);
  });

  it('GET /state shows the address each live session and each REST request came from', async () => {
    // All of 127.0.0.0/8 is local on Linux: a socket may leave from 127.0.0.2 without any setup.
    const sim = await startSim({ guilds: 4, shards: 2, maxConcurrency: 2 });
    const fromOne = await RawClient.hello(sim.urls.gateway);
    const fromTwo = await RawClient.hello(sim.urls.gateway, undefined, { localAddress: '127.0.0.2' });
    await fromOne.identifyReady([0, 2]);
    await fromTwo.identifyReady([1, 2]);
    const live = (await getState(sim)).liveSessions.map(({ shard, remoteAddress }) => [
      shard[0],
      remoteAddress,
    ]);
    expect(live.sort()).toEqual([
      [0, '127.0.0.1'],
      [1, '127.0.0.2'],
    ]);
    const get = (localAddress: string) =>
      new Promise<number>((resolve, reject) =>
        http
          .get(`${sim.urls.rest}/gateway`, { localAddress }, (response) => {
            response.resume();
            response.on('end', () => resolve(response.statusCode ?? 0));
          })
          .on('error', reject),
      );
    expect(await get('127.0.0.2')).toBe(200);
    expect(await get('127.0.0.2')).toBe(200);
    expect(await get('127.0.0.1')).toBe(200);
    expect((await getState(sim)).rest.byClient).toEqual({ '127.0.0.1': 1, '127.0.0.2': 2 });
  });

  it('GET /state (and /_sim itself) has every field the contract promises', async () => {
    const sim = await startSim({ guilds: 30, shards: 3, maxConcurrency: 3 });
    const client = await RawClient.hello(sim.urls.gateway);
    const ready = await client.identifyReady([2, 3]);
    for (const path of ['/state', '', '/']) {
      const response = await request(`${sim.urls.admin}${path}`);
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({
        shardCount: 3,
        maxConcurrency: 3,
        identifies: 1,
        resumes: 0,
        sessionStartRemaining: 999,
        liveSessions: [{ sessionId: ready.session_id, shard: [2, 3] }],
        violations: { identifyRate: 0, duplicateLiveSessions: 0, sendRate: 0 },
        dispatched: 0,
      });
    }
  });

  it('GET /identifies lists every IDENTIFY with its key and outcome', async () => {
    const sim = await startSim({ shards: 2, maxConcurrency: 2 });
    const client = await RawClient.hello(sim.urls.gateway);
    await client.identifyReady([1, 2]);
    const response = await request(`${sim.urls.admin}/identifies`);
    expect(response.status).toBe(200);
    expect(response.body).toEqual([
      {
        at: expect.any(Number),
        shard: [1, 2],
        rateLimitKey: 1,
        outcome: 'ready',
        readLateMs: expect.any(Number),
        unjudged: false,
      },
    ]);
  });

  it('GET /duplicates and violations.duplicateLiveSessions record one shard served twice', async () => {
    const sim = await startSim({ identifyWindowMs: 0 });
    expect((await request(`${sim.urls.admin}/duplicates`)).body).toEqual([]);
    const a = await RawClient.hello(sim.urls.gateway);
    const readyA = await a.identifyReady([0, 1]);
    const b = await RawClient.hello(sim.urls.gateway);
    const readyB = await b.identifyReady([0, 1]);
    const duplicates = (await request(`${sim.urls.admin}/duplicates`)).body as Array<{
      shard: number[];
      sessionIds: string[];
    }>;
    expect(duplicates).toHaveLength(1);
    expect(duplicates[0]!.shard).toEqual([0, 1]);
    expect([...duplicates[0]!.sessionIds].sort()).toEqual([readyA.session_id, readyB.session_id].sort());
    const state = await getState(sim);
    expect(state.violations.duplicateLiveSessions).toBe(1);
    expect(state.liveSessions.map((s) => s.shard)).toEqual([
      [0, 1],
      [0, 1],
    ]);
  });

  it('unknown GET routes are 404, other methods 405, both JSON', async () => {
    const sim = await startSim();
    const missing = await request(`${sim.urls.admin}/nope`);
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error: expect.stringContaining('/nope') });
    const put = await request(`${sim.urls.admin}/state`, { method: 'PUT' });
    expect(put.status).toBe(405);
    expect(put.body).toEqual({ error: expect.stringContaining('PUT') });
    const unknownRun = await request(`${sim.urls.admin}/traffic/999`);
    expect(unknownRun.status).toBe(404);
    expect(unknownRun.body).toEqual({ error: expect.stringContaining('999') });
  });
});

describe('admin API: dispatch and traffic', () => {
  it('POST /dispatch routes by (guild_id >> 22) % shards, guild-less events to shard 0, filtered by intents', async () => {
    // identifyWindowMs 0: three IDENTIFYs (two on shard 1) without waiting for rate-limit windows.
    const sim = await startSim({ shards: 2, identifyWindowMs: 0 });
    const intents = GUILD_MESSAGES | MESSAGE_CONTENT;
    const shard0 = await RawClient.hello(sim.urls.gateway);
    await shard0.identifyReady([0, 2], { intents });
    const shard1 = await RawClient.hello(sim.urls.gateway);
    await shard1.identifyReady([1, 2], { intents });
    const noIntents = await RawClient.hello(sim.urls.gateway);
    await noIntents.identifyReady([1, 2], { intents: 0 }); // a second session of shard 1, without GUILD_MESSAGES

    // A guild the simulator never generated is still routed by the formula.
    const guildOf1 = guildIdForShard(1, 2);
    expect(shardForGuild(guildOf1, 2)).toBe(1);
    const toShard1 = await adminPost(sim, '/dispatch', {
      t: 'MESSAGE_CREATE',
      d: { guild_id: guildOf1, content: 'for shard 1' },
    });
    expect(toShard1.status).toBe(200);
    expect(toShard1.body).toEqual({ dispatched: true, sessions: 1 });
    const guildless = await adminPost(sim, '/dispatch', { t: 'TEST_EVENT', d: { note: 'no guild' } });
    expect(guildless.body).toEqual({ dispatched: true, sessions: 1 });
    const toShard0 = await adminPost(sim, '/dispatch', {
      t: 'MESSAGE_CREATE',
      d: { guild_id: guildIdForShard(0, 2), content: 'zero' },
    });
    expect(toShard0.body).toEqual({ dispatched: true, sessions: 1 });

    const got1 = await shard1.waitFor((m) => m.t === 'MESSAGE_CREATE', 'MESSAGE_CREATE on shard 1');
    expect(got1).toMatchObject({ op: 0, s: 2, d: { guild_id: guildOf1, content: 'for shard 1' } });
    // Shard 0 sees its events in send order, and never shard 1's message.
    await shard0.waitFor((m) => m.t === 'MESSAGE_CREATE', 'MESSAGE_CREATE on shard 0');
    const seen0 = shard0.messages.filter((m) => m.op === 0).map((m) => [m.t, m.s]);
    expect(seen0).toEqual([
      ['READY', 1],
      ['TEST_EVENT', 2],
      ['MESSAGE_CREATE', 3],
    ]);
    // The intents-0 session of shard 1 gets neither message (it has no GUILD_MESSAGES).
    expect(noIntents.messages.filter((m: GatewayMessage) => m.t === 'MESSAGE_CREATE')).toEqual([]);
    expect((await getState(sim)).dispatched).toBe(3);
  });

  it('POST /dispatch strips message content for sessions without MESSAGE_CONTENT', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    await client.identifyReady([0, 1], { intents: GUILD_MESSAGES });
    await adminPost(sim, '/dispatch', {
      t: 'MESSAGE_CREATE',
      d: { guild_id: guildIdForShard(0, 1), content: 'secret' },
    });
    const message = await client.waitFor((m) => m.t === 'MESSAGE_CREATE', 'MESSAGE_CREATE');
    expect((message.d as { content: string }).content).toBe('');
  });

  it('POST /traffic answers 202 with the run; GET /traffic and /traffic/:id follow it to the end', async () => {
    const sim = await startSim({ guilds: 5 });
    const client = await RawClient.hello(sim.urls.gateway);
    await client.identifyReady([0, 1], { intents: GUILD_MESSAGES | MESSAGE_CONTENT });
    const started = await adminPost(sim, '/traffic', { eventsPerSecond: 200, seconds: 0.05 });
    expect(started.status).toBe(202);
    expect(started.body).toEqual({ id: 1, total: 10 });
    const list = await request(`${sim.urls.admin}/traffic`);
    expect(list.body).toEqual([expect.objectContaining({ id: 1, total: 10 })]);
    await waitForState(sim, (s) => s.dispatched === 10, '10 dispatched');
    const run = await request(`${sim.urls.admin}/traffic/1`);
    expect(run.body).toMatchObject({ id: 1, total: 10, sent: 10, done: true });
    const messages = await client.waitForCount((m) => m.t === 'MESSAGE_CREATE', 10, 'traffic messages');
    expect(messages.map((m) => (m.d as { nonce: string }).nonce)).toEqual(
      Array.from({ length: 10 }, (_, n) => `1:${n}`),
    );
  });
});

describe('admin API: faults', () => {
  it('POST /shards/{id}/close: default 4000 keeps the session resumable; 4009 ends it', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    const ready = await client.identifyReady();
    const closed = await adminPost(sim, '/shards/0/close');
    expect(closed.body).toEqual({ closed: 1, code: 4000 });
    expect((await client.closed()).code).toBe(4000);
    const resumed = await RawClient.hello(ready.resume_gateway_url, QUERY);
    resumed.resume(ready.session_id, 1);
    await resumed.waitFor((m) => m.t === 'RESUMED', 'RESUMED');

    const ended = await adminPost(sim, '/shards/0/close?code=4009');
    expect(ended.body).toEqual({ closed: 1, code: 4009 });
    expect((await resumed.closed()).code).toBe(4009);
    const again = await RawClient.hello(ready.resume_gateway_url, QUERY);
    again.resume(ready.session_id, 2);
    expect(await again.waitFor((m) => m.op === 9, 'INVALID_SESSION')).toMatchObject({ op: 9, d: false });
  });

  it('POST /shards/all/close?shardCount= only closes sessions of that shard count', async () => {
    const sim = await startSim({ identifyWindowMs: 0 });
    const ofTwo = await RawClient.hello(sim.urls.gateway);
    await ofTwo.identifyReady([0, 2]);
    const ofOne = await RawClient.hello(sim.urls.gateway);
    await ofOne.identifyReady([0, 1]);
    const response = await adminPost(sim, '/shards/all/close?code=4000&shardCount=2');
    expect(response.body).toEqual({ closed: 1, code: 4000 });
    expect((await ofTwo.closed()).code).toBe(4000);
    expect(ofOne.isOpen).toBe(true);
  });

  it('POST /shards/{id}/reconnect sends op 7, then closes with 4000 if the client does not', async () => {
    const sim = await startSim({ reconnectCloseAfterMs: 100 });
    const client = await RawClient.hello(sim.urls.gateway);
    await client.identifyReady();
    const response = await adminPost(sim, '/shards/0/reconnect');
    expect(response.body).toEqual({ reconnecting: 1 });
    expect(await client.waitFor((m) => m.op === 7, 'RECONNECT')).toEqual({
      t: null,
      s: null,
      op: 7,
      d: null,
    });
    expect((await client.closed()).code).toBe(4000);
    const state = await waitForState(sim, (s) => s.connections === 0, 'socket gone');
    expect(state.sessions).toBe(1);
    expect(state.serverCloses['4000']).toBe(1);
  });

  it('POST /shards/{id}/invalidate?resumable=true sends op 9 true; RESUME on the same socket works', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    const ready = await client.identifyReady();
    const response = await adminPost(sim, '/shards/0/invalidate?resumable=true');
    expect(response.body).toEqual({ invalidated: 1, resumable: true });
    expect(await client.waitFor((m) => m.op === 9, 'INVALID_SESSION')).toEqual({
      t: null,
      s: null,
      op: 9,
      d: true,
    });
    client.resume(ready.session_id, 1);
    await client.waitFor((m) => m.t === 'RESUMED', 'RESUMED');
    expect((await getState(sim)).resumes).toBe(1);
  });

  it('POST /shards/{id}/invalidate (resumable=false by default) sends op 9 false and ends the session', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    const ready = await client.identifyReady();
    const response = await adminPost(sim, '/shards/0/invalidate');
    expect(response.body).toEqual({ invalidated: 1, resumable: false });
    expect(await client.waitFor((m) => m.op === 9, 'INVALID_SESSION')).toEqual({
      t: null,
      s: null,
      op: 9,
      d: false,
    });
    expect((await getState(sim)).sessions).toBe(0);
    client.resume(ready.session_id, 1);
    await client.waitForCount((m) => m.op === 9, 2, 'second INVALID_SESSION');
  });

  it('POST /shards/{id}/terminate drops TCP (1006 at the client); the session stays resumable', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    const ready = await client.identifyReady();
    const response = await adminPost(sim, '/shards/0/terminate');
    expect(response.body).toEqual({ terminated: 1 });
    expect((await client.closed()).code).toBe(1006);
    expect((await getState(sim)).sessions).toBe(1);
    const resumed = await RawClient.hello(ready.resume_gateway_url, QUERY);
    resumed.resume(ready.session_id, 1);
    await resumed.waitFor((m) => m.t === 'RESUMED', 'RESUMED');
  });

  it('POST /heartbeat-ack?enabled=false stops ACKs (globally or for one shard), enabled=true restores them', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    await client.identifyReady();
    const acks = (): number => client.messages.filter((m) => m.op === 11).length;
    // A REQUEST_GUILD_MEMBERS answer is a barrier: frames are handled in order, so an ACK would come first.
    const heartbeatThenBarrier = async (nonce: string): Promise<void> => {
      client.send({ op: 1, d: null });
      client.send({ op: 8, d: { guild_id: guildIdForShard(0, 1), query: 'x', limit: 1, nonce } });
      await client.waitFor(
        (m) => m.t === 'GUILD_MEMBERS_CHUNK' && (m.d as { nonce?: string }).nonce === nonce,
        `chunk ${nonce}`,
      );
    };

    const off = await adminPost(sim, '/heartbeat-ack?enabled=false');
    expect(off.body).toEqual({ enabled: false, affected: 1 });
    await heartbeatThenBarrier('a');
    expect(acks()).toBe(0);

    expect((await adminPost(sim, '/heartbeat-ack?enabled=true')).body).toEqual({
      enabled: true,
      affected: 1,
    });
    await heartbeatThenBarrier('b');
    expect(acks()).toBe(1);

    expect((await adminPost(sim, '/heartbeat-ack?enabled=false&shard=0')).body).toEqual({
      enabled: false,
      affected: 1,
    });
    await heartbeatThenBarrier('c');
    expect(acks()).toBe(1);
  });

  it('POST /shards/{id}/heartbeat asks for an immediate heartbeat', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    await client.identifyReady();
    expect((await adminPost(sim, '/shards/all/heartbeat')).body).toEqual({ requested: 1 });
    await client.waitFor((m) => m.op === 1, 'server HEARTBEAT');
  });
});

describe('admin API: budget and guilds', () => {
  it('POST /session-start-limit sets remaining (clamped to the total), seen in /state and /gateway/bot', async () => {
    const sim = await startSim({ sessionStartTotal: 50 });
    const set = await adminPost(sim, '/session-start-limit', { remaining: 3 });
    expect(set.status).toBe(200);
    expect(set.body).toEqual({ remaining: 3 });
    expect((await getState(sim)).sessionStartRemaining).toBe(3);
    expect((await gatewayBot(sim)).body).toMatchObject({ session_start_limit: { total: 50, remaining: 3 } });
    expect((await adminPost(sim, '/session-start-limit', { remaining: 1_000_000 })).body).toEqual({
      remaining: 50,
    });
    expect((await adminPost(sim, '/session-start-limit', { remaining: 0 })).body).toEqual({ remaining: 0 });
  });

  it('POST /guilds adds guilds and sends GUILD_CREATE to the sessions serving them', async () => {
    const sim = await startSim({ guilds: 4 });
    const client = await RawClient.hello(sim.urls.gateway);
    const ready = await client.identifyReady([0, 1], { intents: GUILDS });
    await client.waitForCount((m) => m.t === 'GUILD_CREATE', 4, 'initial GUILD_CREATEs');
    const response = await adminPost(sim, '/guilds', { add: 3 });
    expect(response.body).toEqual({ added: 3, guilds: 7 });
    const creates = await client.waitForCount(
      (m) => m.t === 'GUILD_CREATE',
      7,
      'GUILD_CREATEs after the join',
    );
    const newIds = creates.slice(4).map((m) => (m.d as { id: string }).id);
    expect(new Set([...ready.guilds.map((g) => g.id), ...newIds]).size).toBe(7);
    expect((await getState(sim)).guilds).toBe(7);
  });
});

describe('admin API: bad input gets a 4xx JSON error naming the problem and changes nothing', () => {
  const cases: Array<[name: string, path: string, body: string | undefined, status: number, error: RegExp]> =
    [
      ['dispatch: body not JSON', '/dispatch', '{"t":', 400, /not valid JSON/],
      ['dispatch: body null', '/dispatch', 'null', 400, /"t"/],
      ['dispatch: no t', '/dispatch', '{"d":{}}', 400, /"t"/],
      ['dispatch: lower-case t', '/dispatch', '{"t":"message_create","d":{}}', 400, /"t"/],
      ['dispatch: READY injection', '/dispatch', '{"t":"READY","d":{}}', 400, /READY/],
      ['dispatch: RESUMED injection', '/dispatch', '{"t":"RESUMED","d":{}}', 400, /RESUMED/],
      ['dispatch: no d', '/dispatch', '{"t":"TEST_EVENT"}', 400, /"d"/],
      ['dispatch: d an array', '/dispatch', '{"t":"TEST_EVENT","d":[1]}', 400, /"d"/],
      ['dispatch: numeric guild_id', '/dispatch', '{"t":"TEST_EVENT","d":{"guild_id":123}}', 400, /guild_id/],
      [
        'dispatch: non-snowflake guild_id',
        '/dispatch',
        '{"t":"TEST_EVENT","d":{"guild_id":"12a"}}',
        400,
        /guild_id/,
      ],
      ['traffic: body not JSON', '/traffic', 'nope', 400, /not valid JSON/],
      ['traffic: missing fields', '/traffic', '{}', 400, /eventsPerSecond/],
      ['traffic: missing seconds', '/traffic', '{"eventsPerSecond":10}', 400, /seconds/],
      ['traffic: zero rate', '/traffic', '{"eventsPerSecond":0,"seconds":1}', 400, /eventsPerSecond/],
      ['traffic: negative seconds', '/traffic', '{"eventsPerSecond":10,"seconds":-1}', 400, /seconds/],
      [
        'traffic: rate as a string',
        '/traffic',
        '{"eventsPerSecond":"10","seconds":1}',
        400,
        /eventsPerSecond/,
      ],
      ['heartbeat-ack: no enabled', '/heartbeat-ack', undefined, 400, /enabled/],
      ['heartbeat-ack: enabled=yes', '/heartbeat-ack?enabled=yes', undefined, 400, /enabled/],
      ['heartbeat-ack: bad shard', '/heartbeat-ack?enabled=false&shard=x', undefined, 400, /shard/],
      ['session-start-limit: missing', '/session-start-limit', '{}', 400, /remaining/],
      ['session-start-limit: negative', '/session-start-limit', '{"remaining":-1}', 400, /remaining/],
      ['session-start-limit: fraction', '/session-start-limit', '{"remaining":1.5}', 400, /remaining/],
      ['session-start-limit: body null', '/session-start-limit', 'null', 400, /remaining/],
      ['session-start-limit: body not JSON', '/session-start-limit', '{', 400, /not valid JSON/],
      ['guilds: missing', '/guilds', '{}', 400, /add/],
      ['guilds: zero', '/guilds', '{"add":0}', 400, /add/],
      ['guilds: too many', '/guilds', '{"add":1000001}', 400, /add/],
      ['guilds: body null', '/guilds', 'null', 400, /add/],
      ['close: code 1005 (reserved)', '/shards/0/close?code=1005', undefined, 400, /code/],
      ['close: code 1006 (reserved)', '/shards/0/close?code=1006', undefined, 400, /code/],
      ['close: code abc', '/shards/0/close?code=abc', undefined, 400, /code/],
      ['close: code 999', '/shards/0/close?code=999', undefined, 400, /code/],
      ['close: code 5000', '/shards/0/close?code=5000', undefined, 400, /code/],
      ['close: code 4000.5', '/shards/0/close?code=4000.5', undefined, 400, /code/],
      ['close: empty code', '/shards/0/close?code=', undefined, 400, /code/],
      ['close: shard abc', '/shards/abc/close', undefined, 400, /shard/],
      ['close: shard -1', '/shards/-1/close', undefined, 400, /shard/],
      ['close: shard 1.5', '/shards/1.5/close', undefined, 400, /shard/],
      ['close: shard beyond 2^53', '/shards/99999999999999999999/close', undefined, 400, /shard/],
      ['close: shardCount 0', '/shards/0/close?shardCount=0', undefined, 400, /shardCount/],
      ['close: shardCount abc', '/shards/0/close?shardCount=abc', undefined, 400, /shardCount/],
      ['invalidate: resumable=maybe', '/shards/0/invalidate?resumable=maybe', undefined, 400, /resumable/],
      ['reconnect: shard abc', '/shards/abc/reconnect', undefined, 400, /shard/],
      ['terminate: shard abc', '/shards/abc/terminate', undefined, 400, /shard/],
      ['heartbeat: shard abc', '/shards/abc/heartbeat', undefined, 400, /shard/],
      ['unknown shard action', '/shards/0/explode', undefined, 404, /unknown admin route/],
      ['unknown POST route', '/nothing', '{}', 404, /unknown admin route/],
    ];

  it('every case, one after another, with a live session that any of them could have hit', async () => {
    const sim = await startSim({ guilds: 3 });
    const client = await RawClient.hello(sim.urls.gateway);
    await client.identifyReady([0, 1], { intents: GUILDS | GUILD_MESSAGES });
    await client.waitForCount((m) => m.t === 'GUILD_CREATE', 3, 'GUILD_CREATEs');
    const framesBefore = client.messages.length;
    const before = await stableState(sim);

    for (const [name, path, body, status, error] of cases) {
      const response = await adminPost(sim, path, body);
      expect(response.status, name).toBe(status);
      expect(response.headers.get('content-type'), name).toMatch(/application\/json/);
      expect(response.body, name).toEqual({ error: expect.stringMatching(error) });
      expect(await stableState(sim), `${name} changed the state`).toEqual(before);
    }

    // The session saw none of it: no frame arrived, the socket is open, ACKs still flow.
    expect(client.messages.length).toBe(framesBefore);
    expect(client.isOpen).toBe(true);
    client.send({ op: 1, d: null });
    await client.waitFor((m) => m.op === 11, 'ACK after the bad requests', framesBefore);
    expect((await request(`${sim.urls.admin}/traffic`)).body).toEqual([]);
  });

  it('an oversize body gets 413 JSON, the connection stays usable, nothing changes', async () => {
    const sim = await startSim();
    const before = await stableState(sim);
    const huge = JSON.stringify({ t: 'TEST_EVENT', d: { pad: 'x'.repeat(1024 * 1024 + 10) } });
    for (let i = 0; i < 3; i++) {
      const response = await adminPost(sim, '/dispatch', huge);
      expect(response.status).toBe(413);
      expect(response.body).toEqual({ error: expect.stringMatching(/larger than/) });
      // The next request (often on the same keep-alive connection) still works.
      expect((await request(`${sim.urls.admin}/state`)).status).toBe(200);
    }
    expect(await stableState(sim)).toEqual(before);
  });
});
