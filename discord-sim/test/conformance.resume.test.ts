/**
 * Conformance: @discordjs/ws resumes (or re-identifies) against discord-sim the way it would
 * against Discord — dropped sockets, op 7, resumable closes, op 9, zombie heartbeats — and the
 * simulator replays what was dispatched while the socket was down, exactly once.
 */
import { WebSocketShardStatus } from '@discordjs/ws';
import { GatewayIntentBits } from 'discord-api-types/v10';
import { afterEach, describe, expect, it } from 'vitest';
import {
  barrier,
  Harness,
  message,
  shardOf,
  tally,
  waitFor,
  type ManagerHandle,
  type SimHandle,
} from './djs-harness';

const MESSAGES =
  GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages | GatewayIntentBits.MessageContent;
const SHARDS = 2;
const GUILDS = 40;

let harness = new Harness();
afterEach(async () => {
  await harness.cleanup();
  harness = new Harness();
});

async function startFleet(
  simOptions: Parameters<Harness['sim']>[0] = {},
): Promise<{ sim: SimHandle; client: ManagerHandle }> {
  const sim = await harness.sim({ guilds: GUILDS, shards: SHARDS, ...simOptions });
  const client = harness.manager(sim, { intents: MESSAGES, shardCount: SHARDS });
  await client.connect();
  await waitFor(() => client.events('GUILD_CREATE').length >= GUILDS, 'every GUILD_CREATE');
  return { sim, client };
}

function shard0Guilds(sim: SimHandle): string[] {
  return sim.guildIds().filter((id) => shardOf(id, SHARDS) === 0);
}

/** Every dispatch of the shard's current session came with the next `s`: nothing lost, nothing twice. */
function expectContiguousSequence(client: ManagerHandle, shardId: number): void {
  const dispatches = client.received.dispatches.get(shardId) ?? [];
  const lastReady = dispatches.map((payload) => payload.t).lastIndexOf('READY' as never);
  const ofSession = dispatches.slice(lastReady);
  expect(ofSession.map((payload) => payload.s)).toEqual(ofSession.map((_, index) => index + 1));
}

function messageIds(client: ManagerHandle, shardId?: number): string[] {
  return client
    .events('MESSAGE_CREATE')
    .filter((event) => shardId === undefined || event.shardId === shardId)
    .map(({ payload }) => (payload.d as { id: string }).id);
}

describe('resume after the socket goes away', () => {
  it.each([
    { name: 'a dropped socket (terminate)', action: '/shards/0/terminate', clientClose: null },
    { name: 'op 7 RECONNECT', action: '/shards/0/reconnect', clientClose: '4200' },
    { name: 'a resumable close (4000)', action: '/shards/0/close?code=4000', clientClose: null },
  ])(
    'after $name: RESUME, and events dispatched meanwhile are replayed exactly once',
    async ({ action, clientClose }) => {
      const { sim, client } = await startFleet();
      const before = await sim.state();
      const sessionId = client.sessions.get(0)!.sessionId;

      // Keep the client from dialling back until the test has dispatched everything.
      const release = client.holdConnects();
      const acted = (await sim.post(action)) as Record<string, number>;
      expect(Object.values(acted)[0]).toBe(1);
      await waitFor(async () => (await sim.liveOn(0, SHARDS)) === 0, 'shard 0 has no open socket');

      const guilds = shard0Guilds(sim);
      const ids = Array.from({ length: 25 }, (_, i) => `61000000000000${String(i).padStart(4, '0')}`);
      const routed = await Promise.all(
        ids.map((id, i) => sim.dispatch('MESSAGE_CREATE', message(id, guilds[i % guilds.length]!))),
      );
      expect(routed.map((r) => r.sessions)).toEqual(ids.map(() => 1));
      const whileDown = await sim.state();
      // Still down after the last dispatch: every one of them had to be buffered for replay.
      expect(whileDown.resumes).toBe(before.resumes);
      expect(whileDown.liveSessions.filter((live) => live.shard[0] === 0)).toEqual([]);
      expect(messageIds(client)).toEqual([]);
      release();

      await waitFor(() => client.received.resumed.includes(0), 'shard 0 RESUMED');
      await barrier(sim, client, SHARDS, [0, 1], 'after-resume');

      const counts = tally(messageIds(client, 0));
      expect(ids.map((id) => counts.get(id) ?? 0)).toEqual(ids.map(() => 1));
      expect(messageIds(client, 1)).toEqual([]);
      // The replayed events precede RESUMED, which tells the client replay is over.
      const shard0 = client.received.dispatches.get(0)!;
      const resumedAt = shard0.findIndex((payload) => payload.t === 'RESUMED');
      expect(resumedAt).toBeGreaterThan(0);
      expect(shard0.slice(resumedAt).filter((payload) => payload.t === 'MESSAGE_CREATE')).toEqual([]);
      expectContiguousSequence(client, 0);

      const after = await sim.state();
      expect(after.resumes).toBe(before.resumes + 1);
      expect(after.identifies).toBe(before.identifies);
      expect(after.resumeUrlConnections).toBe(before.resumeUrlConnections + 1);
      expect(client.sessions.get(0)!.sessionId).toBe(sessionId);
      expect(after.liveSessions.find((live) => live.shard[0] === 0)?.sessionId).toBe(sessionId);
      expect(client.received.ready.get(0)).toHaveLength(1);
      if (clientClose)
        expect(after.clientCloses[clientClose]).toBe((before.clientCloses[clientClose] ?? 0) + 1);
      expect(client.received.errors).toEqual([]);
    },
  );

  // What @discordjs/ws does per close code (§2 of discord-gateway.md), and what the simulator must
  // make of it: codes that keep the session let it RESUME; after the others it must IDENTIFY again.
  it.each([
    { code: 4001, outcome: 'resume' },
    { code: 4002, outcome: 'resume' },
    { code: 4003, outcome: 'identify' },
    { code: 4005, outcome: 'identify' },
    { code: 4007, outcome: 'identify' },
    { code: 4008, outcome: 'identify' },
    // djs tries to RESUME after 4009, but the session timed out: the simulator answers op 9 false.
    { code: 4009, outcome: 'identify', invalidSession: true },
  ])(
    'admin close $code → client ends up with a session again by $outcome',
    async ({ code, outcome, invalidSession }) => {
      const { sim, client } = await startFleet();
      const before = await sim.state();
      await sim.post(`/shards/0/close?code=${code}`);
      if (outcome === 'resume') await waitFor(() => client.received.resumed.includes(0), 'RESUMED');
      else await waitFor(() => (client.received.ready.get(0) ?? []).length === 2, 'second READY');
      await waitFor(async () => (await sim.liveOn(0, SHARDS)) === 1, 'shard 0 live again');
      const after = await sim.state();
      expect(after.serverCloses[String(code)]).toBe((before.serverCloses[String(code)] ?? 0) + 1);
      expect(after.resumes - before.resumes).toBe(outcome === 'resume' ? 1 : 0);
      expect(after.identifies - before.identifies).toBe(outcome === 'identify' ? 1 : 0);
      expect(after.invalidSessions - before.invalidSessions).toBe(invalidSession ? 1 : 0);
      expect(after.violations.identifyRate).toBe(0);
      expect(client.received.errors).toEqual([]);
      // Still serving: a message reaches shard 0 once.
      await sim.dispatch('MESSAGE_CREATE', message('6200000000000001', shard0Guilds(sim)[0]!));
      await barrier(sim, client, SHARDS, [0], `after-${code}`);
      expect(messageIds(client, 0)).toEqual(['6200000000000001']);
      expectContiguousSequence(client, 0);
    },
  );
});

describe('resume refused', () => {
  it('a session that timed out while the socket was down: RESUME gets op 9 false, the client IDENTIFYs', async () => {
    const { sim, client } = await startFleet({ sessionTimeoutMs: 300 });
    const before = await sim.state();
    const release = client.holdConnects();
    await sim.post('/shards/0/terminate');
    // Shard 0's session expires; shard 1's stays.
    await waitFor(
      async () => ((await sim.state()) as unknown as { sessions: number }).sessions === 1,
      "shard 0's session expired",
    );
    expect(
      (await sim.dispatch('MESSAGE_CREATE', message('6600000000000001', shard0Guilds(sim)[0]!))).sessions,
    ).toBe(0);
    release();
    await waitFor(() => (client.received.ready.get(0) ?? []).length === 2, 'second READY on shard 0');
    await barrier(sim, client, SHARDS, [0, 1], 'after-expiry');

    const after = await sim.state();
    expect(after.identifies).toBe(before.identifies + 1);
    expect(after.resumes).toBe(before.resumes);
    expect(after.invalidSessions).toBe(before.invalidSessions + 1);
    expect(
      client.received.debug.some(({ message: text }) =>
        text.includes('Invalid session; will attempt to resume: false'),
      ),
    ).toBe(true);
    expect(client.received.resumed).toEqual([]);
    // Nothing to replay: the event was dispatched when no session served shard 0.
    expect(messageIds(client)).toEqual([]);
    expectContiguousSequence(client, 0);
  });

  it('more missed events than the replay buffer holds: RESUME gets op 9 false, the client IDENTIFYs', async () => {
    const { sim, client } = await startFleet({ replayBufferLimit: 5 });
    const before = await sim.state();
    const release = client.holdConnects();
    await sim.post('/shards/0/terminate');
    await waitFor(async () => (await sim.liveOn(0, SHARDS)) === 0, 'shard 0 has no open socket');
    for (let i = 0; i < 10; i++)
      await sim.dispatch('MESSAGE_CREATE', message(`670000000000000${i}`, shard0Guilds(sim)[0]!));
    release();
    await waitFor(() => (client.received.ready.get(0) ?? []).length === 2, 'second READY on shard 0');
    await barrier(sim, client, SHARDS, [0, 1], 'after-too-old');

    const after = await sim.state();
    expect(after.identifies).toBe(before.identifies + 1);
    expect(after.resumes).toBe(before.resumes);
    expect(after.invalidSessions).toBe(before.invalidSessions + 1);
    expect(client.received.resumed).toEqual([]);
    // No partial replay: a client that cannot get every missed event gets none.
    expect(messageIds(client)).toEqual([]);
    expectContiguousSequence(client, 0);
  });
});

describe('op 9 INVALID_SESSION', () => {
  it('resumable=true: the client RESUMEs on the same socket', async () => {
    const { sim, client } = await startFleet();
    const before = await sim.state();
    const sessionId = client.sessions.get(0)!.sessionId;
    expect(await sim.post('/shards/0/invalidate?resumable=true')).toEqual({
      invalidated: 1,
      resumable: true,
    });
    await waitFor(() => client.received.resumed.includes(0), 'RESUMED');

    const after = await sim.state();
    expect(after.resumes).toBe(before.resumes + 1);
    expect(after.identifies).toBe(before.identifies);
    expect(after.connectionsOpened).toBe(before.connectionsOpened);
    expect(after.invalidSessions).toBe(before.invalidSessions + 1);
    expect(client.received.closed).toEqual([]);
    expect(
      client.received.debug.some(({ message: text }) =>
        text.includes('Invalid session; will attempt to resume: true'),
      ),
    ).toBe(true);
    expect(after.liveSessions.find((live) => live.shard[0] === 0)?.sessionId).toBe(sessionId);

    await sim.dispatch('MESSAGE_CREATE', message('6300000000000001', shard0Guilds(sim)[0]!));
    await barrier(sim, client, SHARDS, [0], 'after-op9-true');
    expect(messageIds(client, 0)).toEqual(['6300000000000001']);
    expectContiguousSequence(client, 0);
  });

  it('resumable=false: the client closes and IDENTIFYs a new session', async () => {
    const { sim, client } = await startFleet();
    const before = await sim.state();
    const oldSession = client.sessions.get(0)!.sessionId;
    expect(await sim.post('/shards/0/invalidate?resumable=false')).toEqual({
      invalidated: 1,
      resumable: false,
    });
    await waitFor(() => (client.received.ready.get(0) ?? []).length === 2, 'second READY on shard 0');
    await waitFor(async () => (await sim.liveOn(0, SHARDS)) === 1, 'shard 0 live again');

    const after = await sim.state();
    expect(after.identifies).toBe(before.identifies + 1);
    expect(after.resumes).toBe(before.resumes);
    expect(after.connectionsOpened).toBe(before.connectionsOpened + 1);
    expect(after.clientCloses['1000']).toBe((before.clientCloses['1000'] ?? 0) + 1);
    expect(after.violations.identifyRate).toBe(0);
    const newSession = client.sessions.get(0)!.sessionId;
    expect(newSession).not.toBe(oldSession);
    expect(after.liveSessions.filter((live) => live.shard[0] === 0).map((live) => live.sessionId)).toEqual([
      newSession,
    ]);
    // The old session is gone, not merely idle: its guilds' events go to the new session only.
    await waitFor(
      () => client.events('GUILD_CREATE').length >= GUILDS + shard0Guilds(sim).length,
      'GUILD_CREATEs of the new session',
    );
    await sim.dispatch('MESSAGE_CREATE', message('6400000000000001', shard0Guilds(sim)[0]!));
    await barrier(sim, client, SHARDS, [0], 'after-op9-false');
    expect(messageIds(client, 0)).toEqual(['6400000000000001']);
    expectContiguousSequence(client, 0);
  });
});

describe('heartbeats', () => {
  it('without ACKs the client declares a zombie connection, and RESUMEs once ACKs are back', async () => {
    const { sim, client } = await startFleet({ heartbeatIntervalMs: 1000 });
    await waitFor(
      () => client.received.heartbeats.filter((beat) => beat.shardId === 0).length >= 1,
      'a first ACKed heartbeat',
    );
    const before = await sim.state();
    const sessionId = client.sessions.get(0)!.sessionId;

    expect(await sim.post('/heartbeat-ack?enabled=false')).toMatchObject({ enabled: false });
    await waitFor(
      () => client.received.debug.some(({ message: text }) => text.includes('Zombie connection')),
      'zombie detected',
      { timeoutMs: 20_000 },
    );
    await waitFor(
      async () => ((await sim.state()).clientCloses['4200'] ?? 0) > (before.clientCloses['4200'] ?? 0),
      'client closed with 4200',
    );

    expect(await sim.post('/heartbeat-ack?enabled=true')).toMatchObject({ enabled: true });
    const reenabledAt = Date.now();
    await waitFor(async () => (await sim.state()).resumes > before.resumes, 'sim counted a RESUME');
    // Serving again and staying up: several ACKed heartbeats in a row on shard 0 after re-enabling.
    await waitFor(
      () =>
        client.received.heartbeats.filter((beat) => beat.shardId === 0 && beat.at > reenabledAt).length >= 3,
      'three ACKed heartbeats',
    );
    const status = await client.manager.fetchStatus();
    expect(status.get(0)).toBe(WebSocketShardStatus.Ready);

    const after = await sim.state();
    expect(after.identifies).toBe(before.identifies);
    expect(after.resumes).toBeGreaterThan(before.resumes);
    expect(client.sessions.get(0)!.sessionId).toBe(sessionId);
    expect(after.liveSessions.find((live) => live.shard[0] === 0)?.sessionId).toBe(sessionId);
    expect(client.received.errors).toEqual([]);

    await sim.dispatch('MESSAGE_CREATE', message('6500000000000001', shard0Guilds(sim)[0]!));
    await barrier(sim, client, SHARDS, [0, 1], 'after-zombie');
    expect(messageIds(client)).toEqual(['6500000000000001']);
    expectContiguousSequence(client, 0);
  });
});
