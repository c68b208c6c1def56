/**
 * The lifecycle of a standalone cluster process, judged from outside: signals, fatal gateway
 * closes, status reporting, option validation and IPC between two processes. The processes run
 * the built SDK (`test/fixtures/standaloneCluster.js`, as a bot would), against a real nats-server
 * and discord-sim in its own process; the simulator's counters are the evidence.
 *
 * Nothing here measures time: every wait is a liveness bound (`waitFor`), and "a shard did not
 * reconnect" is shown by counts after a known number of other reconnects, not by a pause.
 */
import { DisclusterError, ErrorCode, ipcSubjects } from 'discluster-protocol';
import { waitFor, type SimJson, type SpawnedProcess } from 'discluster-testing';
import { describe, expect, it } from 'vitest';
import { GuildStore } from '../../discord-sim/src/guilds';
import { Cluster, ClusterIpc, type ClusterAssignment, type ClusterOptions, type ShardStatus } from '../src';
import { FATAL_CLOSE_CODES } from '../src/cluster/fatalCloseCodes';
import { uniqueBot } from './helpers';
import { simState } from './simAdmin';
import {
  GUILD_MESSAGES_INTENT,
  GUILDS_INTENT,
  jsonLines,
  startSimWithGateway,
  startStandaloneCluster,
  useStandaloneHarness,
  type JsonLine as Line,
} from './standaloneHarness';

const TOKEN = 'lifecycle-test-token';
const WINDOW_MS = 200;
/** Seed of the simulator's guild ids, so the test can compute which guilds each shard serves. */
const SEED = 7;

const harness = useStandaloneHarness('discluster-lifecycle-');

interface Fleet {
  readonly admin: string;
  readonly bot: string;
  readonly gateway: ClusterAssignment['gateway'];
  readonly guilds: number;
  readonly shardCount: number;
}

async function startSim(flags: { guilds: number; shards: number; [flag: string]: number }): Promise<Fleet> {
  const { sim, gateway } = await startSimWithGateway(harness.sims, TOKEN, {
    'max-concurrency': 2,
    'identify-window-ms': WINDOW_MS,
    seed: SEED,
    ...flags,
  });
  return {
    admin: sim.admin,
    bot: uniqueBot('lc'),
    gateway: gateway as ClusterAssignment['gateway'],
    guilds: flags.guilds,
    shardCount: flags.shards,
  };
}

async function admin(fleet: Fleet, route: string, body?: unknown): Promise<SimJson> {
  const response = await fetch(`${fleet.admin}${route}`, {
    method: 'POST',
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await response.json()) as SimJson;
  if (!response.ok) throw new Error(`POST ${route}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

/** The fixture's optional config fields (see the comment at the top of the fixture). */
interface FixtureExtras {
  readonly statsHandler?: boolean;
  readonly statusOnReady?: boolean;
  readonly errorListener?: boolean;
  readonly requests?: ReadonlyArray<{ clusterId: number; name: string; data?: unknown; timeoutMs?: number }>;
}

function startClusterProcess(
  fleet: Fleet,
  assignment: { clusterId: number; shardIds: number[]; clusterIds: number[]; token?: string },
  extras: FixtureExtras = {},
): SpawnedProcess {
  return startStandaloneCluster(harness.tmp, `${fleet.bot}-${assignment.clusterId}`, {
    intents: GUILDS_INTENT | GUILD_MESSAGES_INTENT,
    natsUrl: harness.nats.url,
    identifyWindowMs: WINDOW_MS,
    // Same reasoning as cluster.processes.test.ts: a loaded 2-core box needs a wide margin.
    identifySafetyMarginMs: 100,
    assignment: {
      shardCount: fleet.shardCount,
      bot: fleet.bot,
      token: TOKEN,
      gateway: fleet.gateway,
      ...assignment,
    },
    ...extras,
  });
}

function lines(proc: SpawnedProcess, type?: string): Line[] {
  return jsonLines(proc).filter((line) => type === undefined || line['type'] === type);
}

async function waitForLine(proc: SpawnedProcess, type: string, description: string): Promise<Line> {
  await waitFor(() => lines(proc, type).length > 0, { timeoutMs: 60_000, description });
  return lines(proc, type)[0]!;
}

/** States a shard went through, in order, as the fixture's `shardState` lines report them. */
function statesOf(proc: SpawnedProcess, shardId: number): string[] {
  return lines(proc, 'state')
    .filter((line) => line['shardId'] === shardId)
    .map((line) => String(line['state']));
}

/** A guild id that `(guild_id >> 22) % shardCount` routes to `shardId` (the simulator need not know it). */
function guildOnShard(shardId: number, shardCount: number, salt = 0): string {
  return String((BigInt(1_000_000 + salt) * BigInt(shardCount) + BigInt(shardId)) << 22n);
}

async function sendMessage(fleet: Fleet, guildId: string, nonce: string): Promise<number> {
  const { sessions } = await admin(fleet, '/dispatch', {
    t: 'MESSAGE_CREATE',
    d: {
      id: guildId,
      guild_id: guildId,
      channel_id: guildId,
      nonce,
      content: 'lifecycle',
      author: { id: '1', username: 'tester', discriminator: '0', global_name: null, avatar: null },
    },
  });
  return sessions as number;
}

/** The simulator's guilds (same count and seed), to know independently what each shard serves. */
function guildCounter(fleet: Fleet): (shardId: number) => number {
  const store = new GuildStore(fleet.guilds, SEED);
  return (shardId) => store.guildsOfShard(shardId, fleet.shardCount).length;
}

/** A valid assignment for constructor tests: nothing is dialled before start(). */
const OFFLINE_ASSIGNMENT: ClusterAssignment = {
  clusterId: 0,
  shardIds: [0, 1],
  shardCount: 2,
  clusterIds: [0],
  bot: 'default',
  token: 'a-token',
  gateway: {
    url: 'ws://127.0.0.1:1',
    shards: 2,
    session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 1 },
  },
};

function offlineOptions(changes: Record<string, unknown> = {}): ClusterOptions {
  return {
    intents: 1,
    standalone: {
      assignment: { ...OFFLINE_ASSIGNMENT, ...changes } as ClusterAssignment,
      nats: { servers: 'nats://127.0.0.1:1' },
    },
  };
}

const range = (start: number, count: number): number[] => Array.from({ length: count }, (_, i) => start + i);

describe('signals: a ready cluster process stops cleanly and hands its sessions on', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    '%s → exit code 0, sockets closed with 4200, and a new process RESUMEs every shard',
    async (signal) => {
      const fleet = await startSim({ guilds: 400, shards: 4 });
      const assignment = { clusterId: 0, shardIds: range(0, 4), clusterIds: [0] };
      const first = startClusterProcess(fleet, assignment);
      await waitForLine(first, 'ready', 'first process ready');
      const before = await simState(fleet);
      expect(before['identifies']).toBe(4);
      expect(before['liveSessions']).toHaveLength(4);

      expect(first.kill(signal)).toBe(true);
      expect(await first.exited).toEqual({ code: 0, signal: null });

      await waitFor(async () => (await simState(fleet))['liveSessions'].length === 0, {
        description: 'every socket closed at the gateway',
      });
      const stopped = await simState(fleet);
      expect(lines(first, 'error')).toEqual([]);
      // Closed by the client with @discordjs/ws's resume code; never 1000/1001, which end a session.
      // Only closes after the signal count: a startup IDENTIFY refused under load (then closed with
      // 1000 by @discordjs/ws before it identifies again) is not what this test is about.
      const closesSince = (code: string): number =>
        ((stopped['clientCloses'] as Record<string, number>)[code] ?? 0) -
        ((before['clientCloses'] as Record<string, number>)[code] ?? 0);
      expect(closesSince('4200')).toBe(4);
      expect(closesSince('1000') + closesSince('1001')).toBe(0);
      // Each shard's session is still held by the gateway (resumable), none was ended.
      expect(stopped['sessions']).toBe(4);
      expect(statesOf(first, 0).at(-1)).toBe('idle');

      const second = startClusterProcess(fleet, assignment);
      await waitForLine(second, 'ready', 'second process ready');
      const after = await simState(fleet);
      expect(after['identifies']).toBe(before['identifies']);
      expect(after['resumes'] - before['resumes']).toBe(4);
      expect(
        lines(second, 'resumed')
          .map((line) => line['shardId'])
          .sort(),
      ).toEqual([0, 1, 2, 3]);
      for (const shardId of assignment.shardIds) expect(statesOf(second, shardId)).toContain('resuming');
      expect(after['violations']).toMatchObject({
        identifyRate: 0,
        duplicateLiveSessions: 0,
        resumeWhileLive: 0,
      });
    },
  );
});

describe('fatal gateway closes', () => {
  it.each([4004, 4014])(
    'close %i on shard 0 → `fatal` with that code and a reason; shard 0 stays down, shards 1 and 2 keep serving',
    async (code) => {
      const fleet = await startSim({ guilds: 300, shards: 3 });
      const proc = startClusterProcess(fleet, { clusterId: 0, shardIds: [0, 1, 2], clusterIds: [0] });
      await waitForLine(proc, 'ready', 'cluster ready');
      const before = await simState(fleet);

      expect((await admin(fleet, `/shards/0/close?code=${code}`))['closed']).toBe(1);
      const fatal = await waitForLine(proc, 'fatal', 'fatal event');
      expect(fatal).toMatchObject({ shardId: 0, code });
      expect(fatal['reason']).toContain(FATAL_CLOSE_CODES[code]);
      await waitFor(() => statesOf(proc, 0).at(-1) === 'idle', { description: 'shard 0 idle' });

      // The quiet period, counted: shard 1 goes through two resumable close → RESUME cycles. Each
      // takes @discordjs/ws through the same destroy → reconnect path a non-fatal shard 0 would
      // have taken, and started after shard 0 closed, so a reconnect of shard 0 would show up in
      // the simulator's counters by then.
      for (let cycle = 1; cycle <= 2; cycle++) {
        expect((await admin(fleet, '/shards/1/close?code=4000'))['closed']).toBe(1);
        await waitFor(() => lines(proc, 'resumed').filter((l) => l['shardId'] === 1).length === cycle, {
          description: `shard 1 resumed (cycle ${cycle})`,
        });
      }
      const after = await simState(fleet);
      expect(after['identifies']).toBe(before['identifies']);
      expect(after['connectionsOpened'] - before['connectionsOpened']).toBe(2);
      expect(after['resumes'] - before['resumes']).toBe(2);
      expect(after['liveSessions'].map((s: SimJson) => s['shard'][0]).sort()).toEqual([1, 2]);
      expect(lines(proc, 'fatal')).toHaveLength(1);
      expect(statesOf(proc, 0).at(-1)).toBe('idle');

      // The other shards still deliver events.
      for (const shardId of [1, 2]) {
        expect(await sendMessage(fleet, guildOnShard(shardId, 3), `after-fatal-${shardId}`)).toBe(1);
      }
      await waitFor(() => lines(proc, 'message').length === 2, { description: 'messages on shards 1 and 2' });
      expect(lines(proc, 'message').map((l) => [l['shardId'], l['nonce']])).toEqual(
        expect.arrayContaining([
          [1, 'after-fatal-1'],
          [2, 'after-fatal-2'],
        ]),
      );
      expect(proc.kill('SIGTERM')).toBe(true);
      expect(await proc.exited).toEqual({ code: 0, signal: null });
    },
  );
});

describe('status and shardState', () => {
  it('reports each shard ready with the guilds the simulator routes to it, and counts its events', async () => {
    const fleet = await startSim({ guilds: 500, shards: 4 });
    const guildsOf = guildCounter(fleet);
    // The test's own check of the seed assumption: the shards partition the simulator's guilds.
    expect(range(0, 4).reduce((sum, id) => sum + guildsOf(id), 0)).toBe((await simState(fleet))['guilds']);

    // A cluster with two of the four shards.
    const shardIds = [1, 3];
    const proc = startClusterProcess(
      fleet,
      { clusterId: 0, shardIds, clusterIds: [0] },
      { statsHandler: true },
    );
    await waitForLine(proc, 'started', 'cluster started');
    for (const shardId of shardIds) {
      const states = statesOf(proc, shardId);
      // shardState events, in order: nothing but these (a shard of a fresh bot has no session to resume).
      expect(states).toEqual(['waiting', 'identifying', 'ready']);
    }
    expect(lines(proc, 'ready')).toHaveLength(1);

    // The test asks over IPC, as another cluster (id 99) would.
    const nc = await harness.connectNats('lifecycle-test');
    const ipc = new ClusterIpc({ nc, bot: fleet.bot, clusterId: 99, clusterIds: () => [0] });
    await ipc.start();
    const stats = async (): Promise<ShardStatus[]> =>
      ((await ipc.request(0, 'stats')) as { shards: ShardStatus[] }).shards;
    // One READY plus one GUILD_CREATE per guild.
    await waitFor(async () => (await stats()).every((s) => s.events === 1 + guildsOf(s.id)), {
      description: 'READY and every GUILD_CREATE counted',
    });
    for (let n = 0; n < 5; n++) expect(await sendMessage(fleet, guildOnShard(3, 4, n), `s3-${n}`)).toBe(1);
    await waitFor(() => lines(proc, 'message').length === 5, { description: 'five messages on shard 3' });
    const counted = await stats();
    expect(counted.map((s) => [s.id, s.state, s.guilds, s.events])).toEqual([
      [1, 'ready', guildsOf(1), 1 + guildsOf(1)],
      [3, 'ready', guildsOf(3), 1 + guildsOf(3) + 5],
    ]);
    for (const shard of counted) {
      expect(shard.guilds).toBeGreaterThan(0);
      expect(shard.lastCloseCode).toBeNull();
      expect(shard.waitingReason).toBeNull();
    }
    ipc.close();
  });
});

describe('bad options are refused at construction with DISCLUSTER_ERR_INVALID_OPTION naming the option', () => {
  function refusal(options: unknown): DisclusterError {
    try {
      new Cluster(options as ClusterOptions);
    } catch (error) {
      if (error instanceof DisclusterError) return error;
      throw new Error(`expected a DisclusterError, got ${String(error)}`, { cause: error });
    }
    throw new Error('expected new Cluster() to throw');
  }

  it.each<[string, unknown, string]>([
    ['intents: -1', { intents: -1 }, 'intents'],
    ['intents: 1.5', { intents: 1.5 }, 'intents'],
    ['intents missing', {}, 'intents'],
    ['sessionStartFloor: -1', { intents: 1, sessionStartFloor: -1 }, 'sessionStartFloor'],
    ['fenceAfterMs: 99', { intents: 1, fenceAfterMs: 99 }, 'fenceAfterMs'],
    ['sessionFlushIntervalMs: 0', { intents: 1, sessionFlushIntervalMs: 0 }, 'sessionFlushIntervalMs'],
    ['identifyWindowMs: 0', { intents: 1, identifyWindowMs: 0 }, 'identifyWindowMs'],
    ['identifySafetyMarginMs: 9', { intents: 1, identifySafetyMarginMs: 9 }, 'identifySafetyMarginMs'],
    ['ipcMaxPayloadBytes: 63', { intents: 1, ipcMaxPayloadBytes: 63 }, 'ipcMaxPayloadBytes'],
    ['compression: "zstd-stream"', { intents: 1, compression: 'zstd-stream' }, 'compression'],
    ['statusIntervalMs: 99', { intents: 1, statusIntervalMs: 99 }, 'statusIntervalMs'],
    ['confirmAssignment: "yes"', { ...offlineOptions(), confirmAssignment: 'yes' }, 'confirmAssignment'],
    [
      'confirmAssignment in a fleet',
      { intents: 1, confirmAssignment: async () => true },
      'confirmAssignment',
    ],
  ])('%s', (_label, options, name) => {
    const error = refusal(options);
    expect(error.code).toBe(ErrorCode.InvalidOption);
    expect(error.message).toContain(`Invalid option ${name}`);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['a duplicate shard id', { shardIds: [0, 1, 1] }, 'assignment.shardIds'],
    ['a shard id equal to the count', { shardIds: [0, 2] }, 'assignment.shardIds[]'],
    ['a negative shard id', { shardIds: [-1] }, 'assignment.shardIds[]'],
    ['no shard ids', { shardIds: [] }, 'assignment.shardIds'],
    ['a missing token', { token: undefined }, 'assignment.token'],
    ['an empty token', { token: '' }, 'assignment.token'],
    ['shard count 0', { shardCount: 0 }, 'assignment.shardCount'],
    ['a negative cluster id', { clusterId: -1 }, 'assignment.clusterId'],
    ['a fractional id in clusterIds', { clusterIds: [0, 0.5] }, 'assignment.clusterIds[]'],
    ['no gateway data', { gateway: undefined }, 'assignment.gateway'],
    [
      'max_concurrency 0',
      { gateway: { ...OFFLINE_ASSIGNMENT.gateway, session_start_limit: { max_concurrency: 0 } } },
      'assignment.gateway.session_start_limit.max_concurrency',
    ],
  ])('an assignment with %s', (_label, changes, name) => {
    const error = refusal(offlineOptions(changes));
    expect(error.code).toBe(ErrorCode.InvalidOption);
    expect(error.message).toContain(`Invalid option ${name}`);
    // The token is never part of an error message.
    expect(error.message).not.toContain(OFFLINE_ASSIGNMENT.token);
  });

  it('a bot namespace that is not NATS-safe has its own code', () => {
    expect(refusal(offlineOptions({ bot: 'a.b' })).code).toBe(ErrorCode.InvalidBotNamespace);
  });

  it('a valid assignment constructs, and exposes it before start()', () => {
    const cluster = new Cluster(offlineOptions());
    expect([cluster.id, cluster.shardIds, cluster.shardCount]).toEqual([0, [0, 1], 2]);
    expect(cluster.status()).toEqual([]);
  });
});

describe('IPC between two cluster processes', () => {
  it('cluster 1 asks cluster 0 for `stats` and `shards`; errors come back with their codes', async () => {
    const fleet = await startSim({ guilds: 400, shards: 4 });
    const clusterIds = [0, 1];
    const answering = startClusterProcess(
      fleet,
      { clusterId: 0, shardIds: [0, 1], clusterIds },
      { statsHandler: true },
    );
    await waitForLine(answering, 'started', 'cluster 0 started (its handlers registered)');
    const asking = startClusterProcess(
      fleet,
      { clusterId: 1, shardIds: [2, 3], clusterIds },
      {
        requests: [
          { clusterId: 0, name: 'stats' },
          { clusterId: 0, name: 'shards' },
          { clusterId: 0, name: 'no-such-handler' },
          { clusterId: 7, name: 'stats', timeoutMs: 2000 },
        ],
      },
    );
    await waitFor(() => lines(asking, 'reply').length === 4, {
      timeoutMs: 60_000,
      description: 'four replies',
    });
    const reply = (clusterId: number, name: string): Line =>
      lines(asking, 'reply').find((l) => l['clusterId'] === clusterId && l['name'] === name)!;

    const stats = reply(0, 'stats');
    expect(stats['ok']).toBe(true);
    expect(stats['value']['clusterId']).toBe(0);
    expect((stats['value']['shards'] as ShardStatus[]).map((s) => [s.id, s.state])).toEqual([
      [0, 'ready'],
      [1, 'ready'],
    ]);
    expect(reply(0, 'shards')).toMatchObject({ ok: true, value: [0, 1] });
    expect(reply(0, 'no-such-handler')).toMatchObject({ ok: false, code: ErrorCode.IpcNoHandler });
    // Nobody listens as cluster 7: NATS says "no responders" at once, well before the timeout.
    expect(reply(7, 'stats')).toMatchObject({ ok: false, code: ErrorCode.IpcClusterUnreachable });
    expect(lines(answering, 'error')).toEqual([]);
    expect(lines(asking, 'error')).toEqual([]);
  });
});

describe('more lifecycle edges', () => {
  it('a wrong token: `fatal` 4004 with a reason, and start() rejects before any session starts', async () => {
    const fleet = await startSim({ guilds: 200, shards: 2 });
    const proc = startClusterProcess(fleet, {
      clusterId: 0,
      shardIds: [0, 1],
      clusterIds: [0],
      token: 'not-the-token',
    });
    // The fixture exits 1 when start() rejects.
    expect(await proc.exited).toEqual({ code: 1, signal: null });
    // Shard 1 (another rate-limit key) may or may not have sent its IDENTIFY before the exit.
    const fatals = lines(proc, 'fatal');
    expect(fatals.length).toBeGreaterThanOrEqual(1);
    for (const fatal of fatals) {
      expect(fatal).toMatchObject({ code: 4004, reason: expect.stringContaining(FATAL_CLOSE_CODES[4004]!) });
    }
    expect(lines(proc, 'startError')).toHaveLength(1);
    const state = await simState(fleet);
    expect(state['identifies']).toBe(0);
    expect(Object.keys(state['serverCloses'])).toEqual(['4004']);
    expect(`${proc.lines.join('\n')}${proc.stderr()}`).not.toContain('not-the-token');
  });

  it('SIGTERM while the shards wait at the session-start floor → exit code 0, no IDENTIFY', async () => {
    const fleet = await startSim({ guilds: 20, shards: 2, 'session-start-remaining': 10 });
    const proc = startClusterProcess(fleet, { clusterId: 0, shardIds: [0, 1], clusterIds: [0] });
    await waitFor(() => lines(proc, 'waiting').length === 2, { description: 'both shards waiting' });
    expect(proc.kill('SIGTERM')).toBe(true);
    expect(await proc.exited).toEqual({ code: 0, signal: null });
    const state = await simState(fleet);
    expect(state['identifies']).toBe(0);
    expect(state['sessionStartRemaining']).toBe(10);
  });
});

describe('malformed messages (Promise 5)', () => {
  // Promise 5: a malformed message gets a clear error and changes nothing. Regression test: an
  // emit('error') without a listener throws, and a throw inside a NATS subscription callback ends
  // the NATS client's read loop; the cluster then stopped reading NATS and fenced its shards.
  it('a malformed IPC message does not disturb a cluster that has no `error` listener', async () => {
    const fleet = await startSim({ guilds: 20, shards: 1 });
    const proc = startClusterProcess(
      fleet,
      { clusterId: 0, shardIds: [0], clusterIds: [0] },
      { errorListener: false },
    );
    await waitForLine(proc, 'started', 'cluster started');
    const nc = await harness.connectNats('lifecycle-test');
    const ipc = new ClusterIpc({ nc, bot: fleet.bot, clusterId: 99, clusterIds: () => [0] });
    await ipc.start();
    expect(await ipc.request(0, 'shards')).toEqual([0]);
    nc.publish(ipcSubjects(fleet.bot).broadcast, 'not json');
    expect(await ipc.request(0, 'shards', undefined, { timeoutMs: 5000 })).toEqual([0]);
    ipc.close();
  });
});

// Regression tests for SDK bugs these tests found; each failed against cluster-sdk/src as it was then.
describe('SDK bugs found while writing these tests', () => {
  // @discordjs/ws emits its `ready` event before the READY dispatch, and the status tracker counted
  // guilds from that dispatch only: at the cluster's `ready` event (and at each shard's `shardState`
  // 'ready') the shard that had just become ready showed 0 guilds.
  it("status() read in a `ready` listener already counts every shard's guilds", async () => {
    const fleet = await startSim({ guilds: 500, shards: 4 });
    const guildsOf = guildCounter(fleet);
    const proc = startClusterProcess(
      fleet,
      { clusterId: 0, shardIds: [1, 3], clusterIds: [0] },
      { statusOnReady: true },
    );
    await waitForLine(proc, 'status', 'status printed at ready');
    const atReady = lines(proc, 'status')[0]!['shards'] as ShardStatus[];
    expect(atReady.map((s) => [s.id, s.state, s.guilds])).toEqual([
      [1, 'ready', guildsOf(1)],
      [3, 'ready', guildsOf(3)],
    ]);
  });

  // The SDK README (cluster-sdk/README.md) registers IPC listeners and handlers before
  // `await cluster.start()`; `cluster.ipc` threw DISCLUSTER_ERR_CLOSED until start() had resolved,
  // which is only once every shard is READY (or never, while a shard waits at the budget floor).
  it('IPC listeners and handlers can be registered before start()', () => {
    const cluster = new Cluster(offlineOptions());
    expect(() => cluster.ipc.handle('stats', () => 1)).not.toThrow();
    expect(() => cluster.ipc.on('hello', () => undefined)).not.toThrow();
    // Sending needs NATS: it fails clearly before start().
    let sendError: unknown;
    try {
      cluster.ipc.emit('hello');
    } catch (error) {
      sendError = error;
    }
    expect(sendError).toBeInstanceOf(DisclusterError);
    expect((sendError as DisclusterError).code).toBe(ErrorCode.Closed);
  });

  // new Cluster() accepted identifyWindowMs: 50 (only `>= 1` was checked); start() then connected to
  // NATS, created the session bucket, and only the identify throttler rejected it, as
  // "Invalid option windowMs: windowMs + safetyMarginMs is 75 ms, but nats-server needs ... 100 ms".
  it('an identify window + margin below 100 ms is refused at construction, naming identifyWindowMs', () => {
    expect(() => new Cluster({ ...offlineOptions(), identifyWindowMs: 50 })).toThrow(
      /Invalid option identifyWindowMs/,
    );
  });
});
