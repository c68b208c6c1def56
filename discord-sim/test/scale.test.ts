// Scale: one simulator holds 1,024 concurrent shard connections on 250,000 guilds.
//
// The simulator runs as its CLI (a child process) and one load-client child process
// (bench/discord-sim/load-client.mjs: raw `ws`, HELLO → IDENTIFY → READY / GUILD_CREATE,
// heartbeats) opens every shard. Everything is asserted by counts; the timeouts are liveness
// bounds for a shared 2-core machine, not performance limits (speed is measured in bench/).
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
// The repo's process helpers by path (as the other discord-sim tests do): discord-sim depends on no
// package of ours. stopAll() stops every process they started, by pid.
import { spawnNode, stopAll, type SpawnedProcess } from '../../testing/src/processes.js';
import { waitFor } from '../../testing/src/waitFor.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuildStore } from '../src/guilds.js';

const SHARDS = 1024;
const GUILDS = 250_000;
const SEED = 1;
const TOKEN = 'scale-test-token';
const SIM_CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const LOAD_CLIENT = fileURLToPath(new URL('../../bench/discord-sim/load-client.mjs', import.meta.url));

interface ClientLine {
  type: 'ready' | 'guilds' | 'stats';
  readyShards: number;
  guildsDoneShards: number;
  invalidSessions: number;
  seqGaps: number;
  decodeErrors: number;
  closes: Record<string, number>;
  openSockets: number;
  guilds: {
    expected: number;
    received: number;
    duplicates: number;
    unexpected: number;
    misrouted: number;
    checksum: string;
  };
  traffic: Record<string, { count: number; distinct: number; duplicates: number }>;
  perShard?: Array<{ id: number; ready: number; expected: number; received: number }>;
}

interface SimState {
  identifies: number;
  dispatched: number;
  liveSessions: Array<{ sessionId: string; shard: [number, number] }>;
  violations: Record<string, number>;
}

let sim: SpawnedProcess | undefined;
let client: SpawnedProcess | undefined;
let admin = '';

async function adminRequest<T>(method: 'GET' | 'POST', route: string, body?: unknown): Promise<T> {
  const response = await fetch(`${admin}${route}`, {
    method,
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  if (!response.ok) throw new Error(`${method} ${route}: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

function clientLines(type: ClientLine['type']): ClientLine[] {
  return (client?.lines ?? [])
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as ClientLine)
    .filter((line) => line.type === type);
}

function expectNoViolations(state: SimState): void {
  expect(Object.keys(state.violations).length).toBeGreaterThan(0);
  for (const [name, count] of Object.entries(state.violations))
    expect({ [name]: count }).toEqual({ [name]: 0 });
}

describe('discord-sim at scale: 1,024 shards, 250,000 guilds', () => {
  beforeAll(async () => {
    if (!fs.existsSync(SIM_CLI)) throw new Error(`${SIM_CLI} is missing: build first (npx tsc -b)`);
    sim = spawnNode(SIM_CLI, [
      '--port',
      '0',
      '--token',
      TOKEN,
      '--guilds',
      String(GUILDS),
      '--shards',
      String(SHARDS),
      '--max-concurrency',
      String(SHARDS),
      '--identify-window-ms',
      '100',
      '--heartbeat-interval-ms',
      '41250',
      '--session-start-total',
      '100000',
      '--seed',
      String(SEED),
    ]);
    const urls = JSON.parse(await sim.waitForLine((line) => line.startsWith('{'), 60_000)) as {
      gateway: string;
      admin: string;
    };
    admin = urls.admin;
    client = spawnNode(LOAD_CLIENT, [
      '--gateway',
      urls.gateway,
      '--token',
      TOKEN,
      '--shard-count',
      String(SHARDS),
      '--first',
      '0',
      '--last',
      String(SHARDS - 1),
      '--report-ms',
      '500',
    ]);
  }, 90_000);

  afterAll(async () => {
    // By pid: SIGTERM, then SIGKILL after the grace period; runs even when a test or beforeAll failed.
    await stopAll(5_000);
  }, 30_000);

  it('holds every shard live at once and delivers each guild exactly once, on its shard', async () => {
    const guildsLine = JSON.parse(
      await client!.waitForLine((line) => line.includes('"type":"guilds"'), 240_000),
    ) as ClientLine;

    const state = await adminRequest<SimState>('GET', '/state');
    expect(state.liveSessions).toHaveLength(SHARDS);
    expect(new Set(state.liveSessions.map((session) => session.shard[0])).size).toBe(SHARDS);
    expect(state.liveSessions.every((session) => session.shard[1] === SHARDS)).toBe(true);
    expect(state.identifies).toBe(SHARDS);
    expectNoViolations(state);

    expect(guildsLine.readyShards).toBe(SHARDS);
    expect(guildsLine.openSockets).toBe(SHARDS);
    expect(guildsLine.invalidSessions).toBe(0);
    expect(guildsLine.closes).toEqual({});
    expect(guildsLine.seqGaps).toBe(0);
    expect(guildsLine.decodeErrors).toBe(0);
    // Received = every id READY announced for its shard, once; ids are checked against the routing
    // formula by the client, so shards cannot overlap and the total is the number of distinct guilds.
    expect(guildsLine.guilds).toMatchObject({
      expected: GUILDS,
      received: GUILDS,
      duplicates: 0,
      unexpected: 0,
      misrouted: 0,
    });

    // The exact set: per-shard counts and the id checksum match the guilds the simulator generated.
    const store = new GuildStore(GUILDS, SEED);
    let checksum = 0n;
    for (let index = 0; index < store.size; index++)
      checksum = (checksum + BigInt(store.id(index))) & ((1n << 64n) - 1n);
    expect(guildsLine.guilds.checksum).toBe(checksum.toString());
    const perShard = guildsLine.perShard!;
    expect(perShard).toHaveLength(SHARDS);
    const mismatched = perShard.filter(
      (shard) =>
        shard.ready !== 1 ||
        shard.received !== shard.expected ||
        shard.expected !== store.guildsOfShard(shard.id, SHARDS).length,
    );
    expect(mismatched).toEqual([]);
  }, 300_000);

  it('delivers a traffic burst to the shards, each event once', async () => {
    const before = await adminRequest<SimState>('GET', '/state');
    const { id, total } = await adminRequest<{ id: number; total: number }>('POST', '/traffic', {
      eventsPerSecond: 10_000,
      seconds: 2,
    });
    expect(total).toBe(20_000);

    await waitFor(
      async () => {
        const run = await adminRequest<{ sent: number; done: boolean }>('GET', `/traffic/${id}`);
        const last = clientLines('stats').at(-1);
        return run.done && (last?.traffic[id]?.count ?? 0) >= total;
      },
      {
        description: `${total} MESSAGE_CREATEs of traffic run ${id} at the load client`,
        timeoutMs: 120_000,
        intervalMs: 250,
      },
    );
    // Let one more report arrive, so a late duplicate would show.
    await new Promise((resolve) => setTimeout(resolve, 1_000));

    const run = await adminRequest<{ sent: number; total: number; done: boolean }>('GET', `/traffic/${id}`);
    expect(run).toMatchObject({ sent: total, total, done: true });
    const last = clientLines('stats').at(-1)!;
    expect(last.traffic[id]).toMatchObject({ count: total, distinct: total, duplicates: 0 });
    expect(last.seqGaps).toBe(0);
    expect(last.closes).toEqual({});
    expect(last.openSockets).toBe(SHARDS);

    const after = await adminRequest<SimState>('GET', '/state');
    expect(after.dispatched - before.dispatched).toBe(total);
    expect(after.liveSessions).toHaveLength(SHARDS);
    expectNoViolations(after);
  }, 180_000);
});
