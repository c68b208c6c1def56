// The gateway protocol from a raw `ws` client: what a correct client never does, and the exact close
// code, op 9 or counter the simulator answers it with. No timing is asserted: where a rule depends on
// time (identify window, send window) the window is long enough that scheduling cannot move a payload
// out of it, and every wait is a liveness bound.
import { afterEach, describe, expect, it } from 'vitest';
import { shardForGuild } from '../src/index.js';
import {
  adminPost,
  closeAllSims,
  getState,
  RawClient,
  request,
  startSim,
  TOKEN,
  waitForState,
  type GatewayMessage,
} from './support/gateway.js';

afterEach(closeAllSims);

const QUERY = '?v=10&encoding=json';
const heartbeat = { op: 1, d: null };
const isAck = (m: GatewayMessage): boolean => m.op === 11;

/** A heartbeat payload of exactly `bytes` bytes (UTF-8), padded with a field the server ignores. */
function paddedHeartbeat(bytes: number, padChar = 'a'): string {
  const empty = '{"op":1,"d":null,"pad":""}';
  const padBytes = Buffer.byteLength(padChar);
  const count = Math.ceil((bytes - empty.length) / padBytes);
  const text = `{"op":1,"d":null,"pad":"${padChar.repeat(count)}"}`;
  return text;
}

/** Closes a client's socket with a resumable code and waits until the simulator has let go of it. */
async function dropSocket(sim: Awaited<ReturnType<typeof startSim>>, client: RawClient): Promise<void> {
  client.close(4000);
  await client.closed();
  await waitForState(sim, (s) => s.connections === 0, 'the dropped socket gone');
}

async function dispatchEvents(
  sim: Awaited<ReturnType<typeof startSim>>,
  from: number,
  to: number,
): Promise<void> {
  for (let n = from; n <= to; n++) {
    const response = await adminPost(sim, '/dispatch', { t: 'TEST_EVENT', d: { n } });
    expect(response.status).toBe(200);
  }
}

describe('decode errors close with 4002', () => {
  it('a frame that is not JSON', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    client.sendRaw('{"op":1,');
    expect((await client.closed()).code).toBe(4002);
    const state = await getState(sim);
    expect(state.serverCloses['4002']).toBe(1);
    expect(state.identifies).toBe(0);
  });

  it.each(['[1,2]', '"op"', 'null', '42', 'true'])('JSON that is not an object: %s', async (frame) => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    client.sendRaw(frame);
    expect((await client.closed()).code).toBe(4002);
  });

  it('a payload of exactly 4096 bytes is accepted, 4097 bytes closes with 4002', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    const exact = paddedHeartbeat(4096);
    expect(Buffer.byteLength(exact)).toBe(4096);
    client.sendRaw(exact);
    await client.waitFor(isAck, 'ACK of a 4096-byte heartbeat');
    const over = paddedHeartbeat(4097);
    expect(Buffer.byteLength(over)).toBe(4097);
    client.sendRaw(over);
    expect((await client.closed()).code).toBe(4002);
    expect(client.messages.filter(isAck)).toHaveLength(1);
  });

  it('the 4096 limit counts bytes, not characters', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    const frame = paddedHeartbeat(4200, 'é');
    expect(frame.length).toBeLessThan(4096);
    expect(Buffer.byteLength(frame)).toBeGreaterThan(4096);
    client.sendRaw(frame);
    expect((await client.closed()).code).toBe(4002);
  });

  it('a binary frame, even one holding valid JSON', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    client.sendRaw(Buffer.from(JSON.stringify(heartbeat)), true);
    expect((await client.closed()).code).toBe(4002);
    expect(client.messages.filter(isAck)).toHaveLength(0);
  });

  it('encoding=etf is refused with 4002 (the simulator speaks JSON only)', async () => {
    const sim = await startSim();
    const client = await RawClient.connect(sim.urls.gateway, '?v=10&encoding=etf');
    expect((await client.closed()).code).toBe(4002);
    expect(client.messages).toEqual([]);
    expect((await getState(sim)).serverCloses['4002']).toBe(1);
  });

  it('an unknown transport compression is refused with 4002', async () => {
    const sim = await startSim();
    const client = await RawClient.connect(sim.urls.gateway, '?v=10&encoding=json&compress=gzip');
    expect((await client.closed()).code).toBe(4002);
  });
});

describe('invalid API version', () => {
  it.each(['8', '11', 'abc'])('v=%s closes with 4012 before HELLO', async (version) => {
    const sim = await startSim();
    const client = await RawClient.connect(sim.urls.gateway, `?v=${version}&encoding=json`);
    expect((await client.closed()).code).toBe(4012);
    expect(client.messages).toEqual([]);
    expect((await getState(sim)).serverCloses['4012']).toBe(1);
  });
});

describe('unknown opcodes close with 4001', () => {
  it.each([
    ['op 5', '{"op":5,"d":null}'],
    ['op 99', '{"op":99,"d":null}'],
    ['op "x"', '{"op":"x","d":null}'],
    ['op "1" (a string)', '{"op":"1","d":null}'],
    ['op 1.5', '{"op":1.5,"d":null}'],
    ['op -1', '{"op":-1,"d":null}'],
    ['no op at all', '{"d":null}'],
    ['op 10 (server-only HELLO)', '{"op":10,"d":{"heartbeat_interval":1}}'],
    ['op 0 (server-only DISPATCH)', '{"op":0,"t":"READY","s":1,"d":{}}'],
  ])('%s', async (_name, frame) => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    client.sendRaw(frame);
    expect((await client.closed()).code).toBe(4001);
    expect((await getState(sim)).serverCloses['4001']).toBe(1);
  });

  it('an IDENTIFY without the fields Discord requires', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    client.send({ op: 2, d: { token: TOKEN } });
    expect((await client.closed()).code).toBe(4001);
    expect((await getState(sim)).identifies).toBe(0);
  });
});

describe('authentication', () => {
  it.each([3, 4, 8, 31, 43])('op %i before IDENTIFY closes with 4003', async (op) => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    client.send({ op, d: { guild_id: '1', since: null, activities: [], status: 'online', afk: false } });
    expect((await client.closed()).code).toBe(4003);
    expect((await getState(sim)).serverCloses['4003']).toBe(1);
  });

  it('heartbeats before IDENTIFY are allowed; op 3 after IDENTIFY is accepted', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    client.send(heartbeat);
    await client.waitFor(isAck, 'ACK before IDENTIFY');
    await client.identifyReady();
    client.send({ op: 3, d: { since: null, activities: [], status: 'dnd', afk: false } });
    // Frames are handled in order: an ACK after the presence update means it was processed.
    const acksBefore = client.messages.filter(isAck).length;
    client.send(heartbeat);
    await client.waitForCount(isAck, acksBefore + 1, 'ACK after the presence update');
    expect(client.isOpen).toBe(true);
  });

  it('a second IDENTIFY closes with 4005 and is not counted as an identify or a rate violation', async () => {
    const sim = await startSim({ maxConcurrency: 1, identifyWindowMs: 60_000 });
    const client = await RawClient.hello(sim.urls.gateway);
    await client.identifyReady();
    client.identify();
    expect((await client.closed()).code).toBe(4005);
    const state = await getState(sim);
    expect(state.identifies).toBe(1);
    expect(state.violations.identifyRate).toBe(0);
    expect(state.sessionStartRemaining).toBe(state.sessionStartTotal - 1);
  });

  it('a wrong token in IDENTIFY closes with 4004 and spends no session start', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    client.send({
      op: 2,
      d: { token: 'wrong-token', intents: 0, properties: { os: 'x', browser: 'x', device: 'x' } },
    });
    expect((await client.closed()).code).toBe(4004);
    const state = await getState(sim);
    expect(state.identifies).toBe(0);
    expect(state.sessionStartRemaining).toBe(state.sessionStartTotal);
    expect(state.tokenReset).toBe(false);
  });

  it('a "Bot "-prefixed token in IDENTIFY is wrong too (the gateway takes the raw token)', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    client.send({
      op: 2,
      d: { token: `Bot ${TOKEN}`, intents: 0, properties: { os: 'x', browser: 'x', device: 'x' } },
    });
    expect((await client.closed()).code).toBe(4004);
  });

  it('a wrong token in RESUME closes with 4004 and leaves the session resumable', async () => {
    const sim = await startSim();
    const first = await RawClient.hello(sim.urls.gateway);
    const ready = await first.identifyReady();
    await dropSocket(sim, first);
    const wrong = await RawClient.hello(ready.resume_gateway_url, QUERY);
    wrong.resume(ready.session_id, 1, 'wrong-token');
    expect((await wrong.closed()).code).toBe(4004);
    const right = await RawClient.hello(ready.resume_gateway_url, QUERY);
    right.resume(ready.session_id, 1);
    await right.waitFor((m) => m.t === 'RESUMED', 'RESUMED');
  });
});

describe('READY and heartbeats', () => {
  it('HELLO then READY with s:1, v:10, session_id, a distinct resume URL, the shard and its guilds', async () => {
    const sim = await startSim({ guilds: 40, shards: 2, maxConcurrency: 2 });
    const client = await RawClient.connect(sim.urls.gateway);
    const hello = await client.waitFor((m) => m.op === 10, 'HELLO');
    expect(hello).toEqual({ t: null, s: null, op: 10, d: { heartbeat_interval: 41_250 } });
    client.identify([1, 2], { intents: 1 });
    const ready = await client.waitFor((m) => m.t === 'READY', 'READY');
    expect(ready.op).toBe(0);
    expect(ready.s).toBe(1);
    const d = ready.d as {
      v: number;
      session_id: string;
      resume_gateway_url: string;
      shard: [number, number];
      guilds: Array<{ id: string; unavailable: boolean }>;
      user: { id: string; bot: boolean };
      application: { id: string; flags: number };
    };
    expect(d.v).toBe(10);
    expect(d.session_id).toMatch(/^\S+$/);
    expect(d.resume_gateway_url).toMatch(/^ws:\/\//);
    expect(d.resume_gateway_url).not.toBe(sim.urls.gateway);
    expect(d.shard).toEqual([1, 2]);
    expect(d.user.bot).toBe(true);
    expect(d.application).toEqual({ id: expect.any(String), flags: expect.any(Number) });
    expect(d.guilds.length).toBeGreaterThan(0);
    for (const guild of d.guilds) {
      expect(guild).toEqual({ id: expect.stringMatching(/^\d+$/), unavailable: true });
      expect(shardForGuild(guild.id, 2)).toBe(1);
    }

    // One GUILD_CREATE per READY guild follows, with consecutive sequence numbers.
    const creates = await client.waitForCount(
      (m) => m.t === 'GUILD_CREATE',
      d.guilds.length,
      'GUILD_CREATEs',
    );
    expect(creates.map((m) => (m.d as { id: string }).id).sort()).toEqual(d.guilds.map((g) => g.id).sort());
    expect(creates.map((m) => m.s)).toEqual(creates.map((_, i) => i + 2));

    // The other shard gets exactly the other guilds: together they are all 40.
    const other = await RawClient.hello(sim.urls.gateway);
    const otherReady = await other.identifyReady([0, 2]);
    expect(otherReady.session_id).not.toBe(d.session_id);
    const all = new Set([...d.guilds, ...otherReady.guilds].map((g) => g.id));
    expect(all.size).toBe(40);
    for (const guild of otherReady.guilds) expect(shardForGuild(guild.id, 2)).toBe(0);
  });

  it('answers every heartbeat with op 11, with or without a session', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    client.send(heartbeat);
    expect(await client.waitFor(isAck, 'ACK')).toEqual({ t: null, s: null, op: 11, d: null });
    await client.identifyReady();
    client.send({ op: 1, d: 1 });
    await client.waitForCount(isAck, 2, 'second ACK');
  });

  it('sends op 1 when asked through POST /_sim/shards/0/heartbeat', async () => {
    const sim = await startSim();
    const idle = await RawClient.hello(sim.urls.gateway);
    const client = await RawClient.hello(sim.urls.gateway);
    await client.identifyReady();
    const response = await adminPost(sim, '/shards/0/heartbeat');
    expect(response.status).toBe(200);
    // Only sockets with a session on shard 0 are asked; the idle one is not.
    expect(response.body).toEqual({ requested: 1 });
    expect(await client.waitFor((m) => m.op === 1, 'server HEARTBEAT')).toEqual({
      t: null,
      s: null,
      op: 1,
      d: null,
    });
    expect(idle.isOpen).toBe(true);
  });

  it('a socket that stops heartbeating is closed with 4000; its session resumes with replay and RESUMED', async () => {
    const sim = await startSim({ heartbeatIntervalMs: 1000, heartbeatToleranceMs: 1000 });
    const client = await RawClient.hello(sim.urls.gateway);
    expect(client.messages[0]?.d).toEqual({ heartbeat_interval: 1000 });
    // Heartbeat until READY, so the only heartbeat missed is the one this test means to miss.
    const beat = setInterval(() => client.isOpen && client.send(heartbeat), 250);
    let ready;
    try {
      ready = await client.identifyReady();
    } finally {
      clearInterval(beat);
    }
    expect((await client.closed()).code).toBe(4000);
    const afterClose = await waitForState(sim, (s) => s.connections === 0, 'the silent socket gone');
    expect(afterClose.heartbeatsMissed).toBe(1);
    expect(afterClose.serverCloses['4000']).toBe(1);
    expect(afterClose.sessions).toBe(1);
    expect(afterClose.liveSessions).toEqual([]);

    await dispatchEvents(sim, 1, 2);
    const resumed = await RawClient.hello(ready.resume_gateway_url, QUERY);
    resumed.resume(ready.session_id, 1);
    await resumed.waitFor((m) => m.t === 'RESUMED', 'RESUMED');
    expect(resumed.messages.filter((m) => m.op === 0).map((m) => [m.t, m.s])).toEqual([
      ['TEST_EVENT', 2],
      ['TEST_EVENT', 3],
      ['RESUMED', 4],
    ]);
    expect((await getState(sim)).resumes).toBe(1);
  });
});

describe('resume', () => {
  it.each([
    ['the last seq the client saw', 3],
    ['an older seq', 1],
  ])(
    'replays exactly the missed dispatches in order from %s, then RESUMED with the next s',
    async (_name, fromSeq) => {
      const sim = await startSim();
      const client = await RawClient.hello(sim.urls.gateway);
      const ready = await client.identifyReady(); // s = 1
      await dispatchEvents(sim, 1, 2); // s = 2, 3 (seen live)
      await client.waitForCount((m) => m.t === 'TEST_EVENT', 2, 'live events');
      expect(client.messages.filter((m) => m.op === 0).map((m) => m.s)).toEqual([1, 2, 3]);
      await dropSocket(sim, client);

      await dispatchEvents(sim, 3, 7); // s = 4..8, while the socket is down
      const resumed = await RawClient.hello(ready.resume_gateway_url, QUERY);
      resumed.resume(ready.session_id, fromSeq);
      await resumed.waitFor((m) => m.t === 'RESUMED', 'RESUMED');
      const dispatches = resumed.messages.filter((m) => m.op === 0);
      const expected: Array<[string, number, number]> = [];
      for (let s = fromSeq + 1; s <= 8; s++) expected.push(['TEST_EVENT', s, s - 1]);
      expect(dispatches.slice(0, -1).map((m) => [m.t, m.s, (m.d as { n: number }).n])).toEqual(expected);
      expect(dispatches.at(-1)).toMatchObject({ t: 'RESUMED', s: 9, op: 0 });

      // Live again: the next dispatch continues the sequence.
      await dispatchEvents(sim, 8, 8);
      const live = await resumed.waitFor(
        (m) => m.t === 'TEST_EVENT' && (m.d as { n: number }).n === 8,
        'live event',
      );
      expect(live.s).toBe(10);
      const state = await getState(sim);
      expect(state.resumes).toBe(1);
      expect(state.identifies).toBe(1);
      expect(state.violations.resumeWhileLive).toBe(0);
      expect(state.resumeUrlConnections).toBe(1);
    },
  );

  it('RESUME with a seq ahead of the session closes with 4007 and ends the session', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    const ready = await client.identifyReady(); // the session is at s = 1
    await dropSocket(sim, client);

    const ahead = await RawClient.hello(ready.resume_gateway_url, QUERY);
    ahead.resume(ready.session_id, 5);
    expect((await ahead.closed()).code).toBe(4007);
    const state = await getState(sim);
    expect(state.sessions).toBe(0);
    expect(state.resumes).toBe(0);
    expect(state.serverCloses['4007']).toBe(1);

    // The session is gone: even a correct RESUME now gets INVALID_SESSION(false).
    const later = await RawClient.hello(ready.resume_gateway_url, QUERY);
    later.resume(ready.session_id, 1);
    expect(await later.waitFor((m) => m.op === 9, 'INVALID_SESSION')).toEqual({
      t: null,
      s: null,
      op: 9,
      d: false,
    });
    expect((await getState(sim)).resumes).toBe(0);
  });

  it('RESUME of an unknown session gets INVALID_SESSION(false)', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    client.resume('no-such-session', 0);
    expect(await client.waitFor((m) => m.op === 9, 'INVALID_SESSION')).toEqual({
      t: null,
      s: null,
      op: 9,
      d: false,
    });
    expect(client.isOpen).toBe(true);
    expect((await getState(sim)).invalidSessions).toBe(1);
  });
});

describe('identify concurrency', () => {
  it('a second IDENTIFY of one rate-limit key inside the window gets op 9 d:false and is counted', async () => {
    // A window far longer than the test: both IDENTIFYs are inside it however slow the machine is.
    const sim = await startSim({ shards: 4, maxConcurrency: 2, identifyWindowMs: 60_000 });
    const first = await RawClient.hello(sim.urls.gateway);
    await first.identifyReady([0, 4]);

    const tooFast = await RawClient.hello(sim.urls.gateway);
    tooFast.identify([2, 4]); // 2 % 2 == 0 % 2: same key
    expect(await tooFast.waitFor((m) => m.op === 9, 'INVALID_SESSION')).toEqual({
      t: null,
      s: null,
      op: 9,
      d: false,
    });

    const otherKey = await RawClient.hello(sim.urls.gateway);
    await otherKey.identifyReady([1, 4]);

    const state = await getState(sim);
    expect(state.violations.identifyRate).toBe(1);
    expect(state.invalidSessions).toBe(1);
    expect(state.identifies).toBe(2);
    expect(state.sessionStartRemaining).toBe(state.sessionStartTotal - 2);
    expect(state.liveSessions.map((s) => s.shard).sort()).toEqual([
      [0, 4],
      [1, 4],
    ]);
    expect(tooFast.isOpen).toBe(true);

    const records = (await request(`${sim.urls.admin}/identifies`)).body as Array<{
      shard: number[];
      rateLimitKey: number;
      outcome: string;
    }>;
    expect(records.map((r) => [r.shard[0], r.rateLimitKey, r.outcome])).toEqual([
      [0, 0, 'ready'],
      [2, 0, 'rate-limited'],
      [1, 1, 'ready'],
    ]);
  });
});

describe('send rate limit', () => {
  it('payload sendLimit + 1 inside the window closes with 4008 (small sendLimit)', async () => {
    const sim = await startSim({ sendLimit: 5 });
    const client = await RawClient.hello(sim.urls.gateway);
    await client.identifyReady(); // payload 1
    for (let i = 0; i < 5; i++) client.send(heartbeat); // payloads 2..6
    expect((await client.closed()).code).toBe(4008);
    expect(client.messages.filter(isAck)).toHaveLength(4);
    const state = await getState(sim);
    expect(state.violations.sendRate).toBe(1);
    expect(state.serverCloses['4008']).toBe(1);
  });

  it('the 121st payload inside 60 s closes with 4008 (Discord default 120)', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    for (let i = 0; i < 121; i++) client.send(heartbeat);
    expect((await client.closed()).code).toBe(4008);
    expect(client.messages.filter(isAck)).toHaveLength(120);
    expect((await getState(sim)).violations.sendRate).toBe(1);
  });

  it('120 payloads are fine', async () => {
    const sim = await startSim();
    const client = await RawClient.hello(sim.urls.gateway);
    for (let i = 0; i < 120; i++) client.send(heartbeat);
    await client.waitForCount(isAck, 120, 'ACKs');
    expect(client.isOpen).toBe(true);
    expect((await getState(sim)).violations.sendRate).toBe(0);
  });
});

describe('session_start_limit', () => {
  it('spending past the last session start resets the token: 4004 everywhere, REST 401, tokenReset', async () => {
    const sim = await startSim({ sessionStartRemaining: 1, shards: 2, maxConcurrency: 2 });
    const first = await RawClient.hello(sim.urls.gateway);
    const ready = await first.identifyReady([0, 2]);
    expect((await getState(sim)).sessionStartRemaining).toBe(0);

    const second = await RawClient.hello(sim.urls.gateway);
    second.identify([1, 2]);
    expect((await second.closed()).code).toBe(4004);
    expect((await first.closed()).code).toBe(4004);

    const state = await waitForState(sim, (s) => s.connections === 0, 'every socket closed');
    expect(state.tokenReset).toBe(true);
    expect(state.sessions).toBe(0);
    expect(state.liveSessions).toEqual([]);
    expect(state.identifies).toBe(1);
    expect(state.violations.identifyRate).toBe(0);

    const rest = await request(`${sim.urls.rest}/gateway/bot`, {
      headers: { authorization: `Bot ${TOKEN}` },
    });
    expect(rest.status).toBe(401);
    expect(rest.body).toEqual({ message: '401: Unauthorized', code: 0 });

    // The old token opens nothing any more: neither a new session nor the old one.
    const again = await RawClient.hello(sim.urls.gateway);
    again.identify([0, 2]);
    expect((await again.closed()).code).toBe(4004);
    const resume = await RawClient.hello(ready.resume_gateway_url, QUERY);
    resume.resume(ready.session_id, 1);
    expect((await resume.closed()).code).toBe(4004);
    expect((await getState(sim)).identifies).toBe(1);
  });
});
