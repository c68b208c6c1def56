import {
  seededRandom,
  startTcpProxy,
  stopAll,
  waitFor,
  type SpawnedProcess,
  type TcpProxyHandle,
} from 'discluster-testing';
import { describe, expect, it } from 'vitest';
import { uniqueBot } from './helpers';
import {
  GUILD_MESSAGES_INTENT,
  GUILDS_INTENT,
  jsonLines as events,
  startSimWithGateway,
  startStandaloneCluster,
  useStandaloneHarness,
  type JsonLine as Json,
} from './standaloneHarness';

// Cluster processes run the built SDK (dist), as a bot would; `npm test` builds first.
const TOKEN = 'cluster-test-token';

const proxies: TcpProxyHandle[] = [];
const harness = useStandaloneHarness('discluster-cluster-', async () => {
  for (const proxy of proxies.splice(0)) await proxy.close();
});

interface Fleet {
  readonly admin: string;
  readonly bot: string;
  readonly gateway: unknown;
}

/** discord-sim in its own process, with command-line flags. */
async function startSim(flags: Record<string, number>): Promise<Fleet> {
  const { sim, gateway } = await startSimWithGateway(harness.sims, TOKEN, flags);
  return { admin: sim.admin, bot: uniqueBot('cl'), gateway };
}

async function simState(fleet: Fleet): Promise<Json> {
  return (await fetch(`${fleet.admin}/state`)).json() as Promise<Json>;
}

interface ClusterProcessOptions {
  readonly clusterId: number;
  readonly shardIds: number[];
  readonly shardCount: number;
  readonly clusterIds: number[];
  readonly natsUrl?: string;
  readonly identifyWindowMs: number;
  readonly identifySafetyMarginMs?: number;
  readonly fenceAfterMs?: number;
  readonly sessionStartFloor?: number;
}

function startClusterProcess(fleet: Fleet, options: ClusterProcessOptions): SpawnedProcess {
  return startStandaloneCluster(harness.tmp, `${fleet.bot}-${options.clusterId}`, {
    intents: GUILDS_INTENT | GUILD_MESSAGES_INTENT,
    natsUrl: options.natsUrl ?? harness.nats.url,
    identifyWindowMs: options.identifyWindowMs,
    // The margin absorbs the time between a grant and the simulator reading the IDENTIFY. On this
    // shared 2-core machine (several bot processes, NATS, the simulator, the test runner) that
    // jitter reaches tens of ms, so the test uses 100 ms on its 200 ms window; against Discord's
    // 5 s window the default margin is 100 ms too (2%).
    identifySafetyMarginMs: options.identifySafetyMarginMs ?? 100,
    fenceAfterMs: options.fenceAfterMs,
    sessionStartFloor: options.sessionStartFloor,
    assignment: {
      clusterId: options.clusterId,
      shardIds: options.shardIds,
      shardCount: options.shardCount,
      clusterIds: options.clusterIds,
      bot: fleet.bot,
      token: TOKEN,
      gateway: fleet.gateway,
    },
  });
}

interface IdentifyRecord {
  readonly at: number;
  readonly shard: [number, number];
  readonly rateLimitKey: number;
  readonly outcome: string;
}

function describeIdentifyGaps(records: readonly IdentifyRecord[]): string {
  const byKey = new Map<number, IdentifyRecord[]>();
  for (const record of records)
    byKey.set(record.rateLimitKey, [...(byKey.get(record.rateLimitKey) ?? []), record]);
  return [...byKey.entries()]
    .map(
      ([key, list]) =>
        `key ${key}: ${list.map((r, i) => `${r.shard[0]}${r.outcome === 'ready' ? '' : '!'}+${i ? r.at - list[i - 1]!.at : 0}`).join(' ')}`,
    )
    .join('\n');
}

const range = (start: number, count: number): number[] => Array.from({ length: count }, (_, i) => start + i);

describe('clusters as separate processes, no MASTER anywhere', () => {
  it('4 processes × 16 shards, max_concurrency 4, 200 ms window: every shard READY, 0 identify violations', async () => {
    const fleet = await startSim({
      guilds: 3200,
      shards: 64,
      'max-concurrency': 4,
      'identify-window-ms': 200,
    });
    const clusterIds = [0, 1, 2, 3];
    const procs = clusterIds.map((clusterId) =>
      startClusterProcess(fleet, {
        clusterId,
        shardIds: range(clusterId * 16, 16),
        shardCount: 64,
        clusterIds,
        identifyWindowMs: 200,
      }),
    );
    await waitFor(() => procs.every((proc) => events(proc).some((e) => e.type === 'ready')), {
      timeoutMs: 120_000,
      description: 'every cluster ready',
    });
    const state = await simState(fleet);
    const identifies = (await (await fetch(`${fleet.admin}/identifies`)).json()) as IdentifyRecord[];
    if (process.env['DEBUG_GRANTS']) {
      const grants = procs
        .flatMap((proc) => events(proc).filter((e) => e.type === 'debug'))
        .sort((a, b) => a['at'] - b['at']);
      console.log(grants.map((g) => `${g['at']} ${String(g['message']).split('\n')[0]}`).join('\n'));
      console.log(
        identifies.map((r) => `${r.at} sim ${r.shard[0]} key ${r.rateLimitKey} ${r.outcome}`).join('\n'),
      );
    }
    // On failure, show each key's identify gaps as the simulator measured them.
    expect(state['violations'], describeIdentifyGaps(identifies)).toMatchObject({
      identifyRate: 0,
      duplicateLiveSessions: 0,
      resumeWhileLive: 0,
    });
    expect(state['liveSessions']).toHaveLength(64);
    expect(state['identifies']).toBe(64);
    // Order across processes is best effort (processes start at different times); the rate is not.
    expect(identifies.filter((record) => record.outcome !== 'ready')).toHaveLength(0);
  });

  // Issue 13 (k): the demo's simulator counted identify violations in 6 of 7 start-ups. Its shape
  // (8 processes × 4 shards, 20,000 guilds, max_concurrency 4, a 1 s window with a 250 ms margin,
  // zlib-stream) started at once, in a different random order each round: every IDENTIFY must
  // reach the simulator a window after the last of its key. What broke it was the referee: sending
  // a shard's 625 GUILD_CREATEs through pako blocked the simulator for hundreds of ms, so the next
  // IDENTIFYs were stamped late and looked too close to the previous ones.
  // A liveness bound for three rounds of 8 process starts on a busy 2-core machine, not a speed check.
  it(
    '8 processes × 4 shards started at once in random order, 3 rounds: 0 identify violations',
    { timeout: 600_000 },
    async () => {
      const random = seededRandom(13);
      for (let round = 0; round < 3; round++) {
        const fleet = await startSim({
          guilds: 20_000,
          shards: 32,
          'max-concurrency': 4,
          'identify-window-ms': 1000,
        });
        const clusterIds = range(0, 8);
        const order = [...clusterIds].sort(() => random() - 0.5);
        const procs = order.map((clusterId) =>
          startClusterProcess(fleet, {
            clusterId,
            shardIds: range(clusterId * 4, 4),
            shardCount: 32,
            clusterIds,
            identifyWindowMs: 1000,
            identifySafetyMarginMs: 250,
          }),
        );
        await waitFor(() => procs.every((proc) => events(proc).some((e) => e.type === 'ready')), {
          timeoutMs: 180_000,
          description: `round ${round}: every cluster ready (start order ${order.join(', ')})`,
        });
        const state = await simState(fleet);
        const identifies = (await (await fetch(`${fleet.admin}/identifies`)).json()) as IdentifyRecord[];
        expect(
          state['violations'],
          `round ${round}, start order ${order.join(', ')}\n${describeIdentifyGaps(identifies)}`,
        ).toMatchObject({ identifyRate: 0, duplicateLiveSessions: 0, resumeWhileLive: 0 });
        expect(state['identifies']).toBe(32);
        // The fleet's side, independent of the referee's clock: when each process sent its IDENTIFYs
        // (@discordjs/ws's "Identifying" debug line, written just before the frame), per key.
        const sent = procs.flatMap((proc) =>
          events(proc).flatMap((e) => {
            const shard = /shard id: (\d+)/.exec(String(e['message']));
            return e.type === 'debug' && shard ? [{ shardId: Number(shard[1]), at: e['at'] as number }] : [];
          }),
        );
        expect(sent).toHaveLength(32);
        for (let key = 0; key < 4; key++) {
          const times = sent.filter((s) => s.shardId % 4 === key).map((s) => s.at);
          times.sort((a, b) => a - b);
          const gaps = times.slice(1).map((at, i) => at - times[i]!);
          expect(
            Math.min(...gaps),
            `round ${round}, key ${key}: gaps between sends ${gaps.join(', ')} ms`,
          ).toBeGreaterThanOrEqual(1000);
        }
        await stopAll();
        for (const sim of harness.sims.splice(0)) await sim.stop();
      }
    },
  );

  it('a SIGKILLed cluster restarted RESUMEs every shard and gets every MESSAGE_CREATE sent while it was down', async () => {
    const fleet = await startSim({ guilds: 800, shards: 8, 'max-concurrency': 4, 'identify-window-ms': 200 });
    const clusterIds = [0, 1];
    const options = (clusterId: number): ClusterProcessOptions => ({
      clusterId,
      shardIds: range(clusterId * 4, 4),
      shardCount: 8,
      clusterIds,
      identifyWindowMs: 200,
    });
    const first = startClusterProcess(fleet, options(0));
    const other = startClusterProcess(fleet, options(1));
    await waitFor(() => [first, other].every((proc) => events(proc).some((e) => e.type === 'ready')), {
      timeoutMs: 60_000,
      description: 'both clusters ready',
    });
    const before = await simState(fleet);
    const traffic = (await (
      await fetch(`${fleet.admin}/traffic`, {
        method: 'POST',
        body: JSON.stringify({ eventsPerSecond: 400, seconds: 4 }),
      })
    ).json()) as { id: number; total: number };
    await waitFor(() => events(first).filter((e) => e.type === 'message').length > 50, {
      description: 'traffic flowing',
    });
    first.kill('SIGKILL');
    await first.exited;
    // Let a good part of the traffic go out while cluster 0 is down.
    await waitFor(
      async () =>
        ((await (await fetch(`${fleet.admin}/traffic/${traffic.id}`)).json()) as { sent: number }).sent >
        traffic.total / 2,
      {
        description: 'half the traffic sent during the gap',
      },
    );
    const restarted = startClusterProcess(fleet, options(0));
    await waitFor(() => events(restarted).some((e) => e.type === 'ready'), {
      timeoutMs: 60_000,
      description: 'restarted cluster ready',
    });
    await waitFor(
      async () =>
        ((await (await fetch(`${fleet.admin}/traffic/${traffic.id}`)).json()) as { done: boolean }).done,
      {
        description: 'traffic finished',
      },
    );
    const nonces = (): Set<string> =>
      new Set(
        [first, restarted, other].flatMap((proc) =>
          events(proc)
            .filter((e) => e.type === 'message')
            .map((e) => String(e.nonce)),
        ),
      );
    const expected = range(0, traffic.total).map((n) => `${traffic.id}:${n}`);
    await waitFor(() => expected.every((nonce) => nonces().has(nonce)), {
      description: 'every MESSAGE_CREATE delivered',
    });
    const after = await simState(fleet);
    expect(after['identifies']).toBe(before['identifies']);
    expect(after['resumes'] - before['resumes']).toBe(4);
    expect(
      events(restarted)
        .filter((e) => e.type === 'resumed')
        .map((e) => e.shardId)
        .sort(),
    ).toEqual([0, 1, 2, 3]);
    expect(after['violations']).toMatchObject({
      identifyRate: 0,
      duplicateLiveSessions: 0,
      resumeWhileLive: 0,
    });
  });

  it('fences its shards when NATS is cut for longer than the fence time, and comes back afterwards', async () => {
    const fleet = await startSim({
      guilds: 200,
      shards: 2,
      'max-concurrency': 2,
      'identify-window-ms': 200,
      'heartbeat-interval-ms': 1000,
    });
    const proxy = await startTcpProxy(harness.nats.port);
    proxies.push(proxy);
    const proc = startClusterProcess(fleet, {
      clusterId: 0,
      shardIds: [0, 1],
      shardCount: 2,
      clusterIds: [0],
      identifyWindowMs: 200,
      fenceAfterMs: 1500,
      natsUrl: proxy.url('nats'),
    });
    await waitFor(() => events(proc).some((e) => e.type === 'ready'), {
      timeoutMs: 60_000,
      description: 'cluster ready',
    });
    proxy.cut('blackhole');
    await waitFor(() => events(proc).some((e) => e.type === 'fenced'), {
      timeoutMs: 30_000,
      description: 'cluster fenced',
    });
    const fencedStates = events(proc)
      .filter((e) => e.type === 'state' && e.state === 'fenced')
      .map((e) => e.shardId);
    expect(fencedStates.sort()).toEqual([0, 1]);
    await waitFor(async () => (await simState(fleet))['liveSessions'].length === 0, {
      description: 'sessions closed at the gateway',
    });
    const whileFenced = await simState(fleet);
    proxy.restore();
    await waitFor(() => events(proc).filter((e) => e.type === 'ready').length >= 2, {
      timeoutMs: 60_000,
      description: 'ready again',
    });
    const after = await simState(fleet);
    expect(after['liveSessions']).toHaveLength(2);
    expect(after['identifies']).toBe(whileFenced['identifies']);
    expect(after['resumes'] - whileFenced['resumes']).toBe(2);
    expect(after['violations']).toMatchObject({
      identifyRate: 0,
      duplicateLiveSessions: 0,
      resumeWhileLive: 0,
    });
  });

  it('does not identify below the session-start floor, and says why', async () => {
    const fleet = await startSim({
      guilds: 10,
      shards: 1,
      'max-concurrency': 1,
      'identify-window-ms': 200,
      'session-start-remaining': 10,
    });
    const proc = startClusterProcess(fleet, {
      clusterId: 0,
      shardIds: [0],
      shardCount: 1,
      clusterIds: [0],
      identifyWindowMs: 200,
      sessionStartFloor: 10,
    });
    await waitFor(() => events(proc).some((e) => e.type === 'waiting'), {
      timeoutMs: 30_000,
      description: 'waiting reported',
    });
    const waiting = events(proc).find((e) => e.type === 'waiting')!;
    expect(waiting['reason']).toMatch(/floor/);
    expect(events(proc).some((e) => e.type === 'state' && e.state === 'waiting')).toBe(true);
    const state = await simState(fleet);
    expect(state['identifies']).toBe(0);
    expect(state['sessionStartRemaining']).toBe(10);
  });
});
