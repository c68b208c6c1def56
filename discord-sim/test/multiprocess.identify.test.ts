// Identify concurrency across processes, as a sharded bot on several machines meets it: 8 shards,
// max_concurrency 2, four child processes with two shards each (fixtures/identifyClient.js).
// (a) Nobody paces: the simulator refuses the extra IDENTIFYs with op 9 and counts each one.
// (b) Every shard waits for its bucket's turn: no violation, every shard READY.
// No timing is asserted. In (a) the identify window is far longer than the test, so every IDENTIFY
// after the first of its key is inside it however the processes are scheduled. In (b) each bucket
// starts one window plus a margin after the previous one, so an IDENTIFY may arrive up to the margin
// late without falling into the previous bucket's window.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnNode, type SpawnedProcess } from '../../testing/src/processes.js';
import type { DiscordSim } from '../src/index.js';
import { closeAllSims, getState, request, startSim, TOKEN } from './support/gateway.js';

const FIXTURE = path.join(__dirname, 'fixtures', 'identifyClient.js');
const SHARD_COUNT = 8;
const MAX_CONCURRENCY = 2;
const PROCESSES = 4;
const SHARDS_PER_PROCESS = SHARD_COUNT / PROCESSES;
// Liveness bound for a child to report; not a performance assertion.
const REPORT_MS = 45_000;

interface Report {
  pid: number;
  type: 'hello' | 'identify' | 'ready' | 'invalid_session' | 'close' | 'error';
  shard: number;
  at?: number;
  resumable?: boolean;
  code?: number;
}

const children: SpawnedProcess[] = [];

afterEach(async () => {
  // Every child by its pid (SIGTERM, then SIGKILL after the grace period), even when a test failed.
  await Promise.all(children.splice(0).map((child) => child.stop(5000)));
  await closeAllSims();
});

/** Starts the four clients; process p serves shards [2p, 2p + 1] (one shard of each rate-limit key). */
function spawnClients(sim: DiscordSim, pacing: string[] = []): SpawnedProcess[] {
  const started: SpawnedProcess[] = [];
  for (let p = 0; p < PROCESSES; p++) {
    const shards = Array.from({ length: SHARDS_PER_PROCESS }, (_, i) => p * SHARDS_PER_PROCESS + i);
    const child = spawnNode(FIXTURE, [sim.urls.gateway, String(SHARD_COUNT), shards.join(','), ...pacing], {
      env: { SIM_TOKEN: TOKEN },
    });
    children.push(child);
    started.push(child);
  }
  return started;
}

function reportsOf(child: SpawnedProcess): Report[] {
  return child.lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Report);
}

/** Waits until every shard of every child has had its answer (READY or op 9) to its IDENTIFY. */
async function waitForAnswers(clients: SpawnedProcess[]): Promise<Report[]> {
  await Promise.all(
    clients.map(async (child, p) => {
      for (let i = 0; i < SHARDS_PER_PROCESS; i++) {
        const shard = p * SHARDS_PER_PROCESS + i;
        await child.waitForLine((line) => {
          if (!line.startsWith('{')) return false;
          const report = JSON.parse(line) as Report;
          if (report.shard === shard && (report.type === 'close' || report.type === 'error')) {
            throw new Error(`shard ${shard} lost its socket before an answer: ${line}`);
          }
          return report.shard === shard && (report.type === 'ready' || report.type === 'invalid_session');
        }, REPORT_MS);
      }
    }),
  );
  return clients.flatMap(reportsOf);
}

describe('identify concurrency across processes (8 shards, max_concurrency 2)', () => {
  it('(a) four processes identifying two shards each at once: every extra IDENTIFY is op 9 and counted', async () => {
    const sim = await startSim({
      guilds: 80,
      shards: SHARD_COUNT,
      maxConcurrency: MAX_CONCURRENCY,
      identifyWindowMs: 600_000,
    });
    const clients = spawnClients(sim);
    const reports = await waitForAnswers(clients);

    const ready = reports.filter((r) => r.type === 'ready');
    const invalid = reports.filter((r) => r.type === 'invalid_session');
    expect(invalid.every((r) => r.resumable === false)).toBe(true);
    expect(ready.length + invalid.length).toBe(SHARD_COUNT);

    const state = await getState(sim);
    expect(state.violations.identifyRate).toBeGreaterThan(0);
    expect(state.violations.identifyRate).toBe(invalid.length);
    expect(state.invalidSessions).toBe(invalid.length);
    expect(state.identifies).toBe(ready.length);
    // The window outlasts the test: exactly the first IDENTIFY of each key got through.
    expect(ready.map((r) => r.shard % MAX_CONCURRENCY).sort()).toEqual([0, 1]);
    expect(invalid).toHaveLength(SHARD_COUNT - MAX_CONCURRENCY);
    expect(state.sessionStartRemaining).toBe(state.sessionStartTotal - ready.length);

    const records = (await request(`${sim.urls.admin}/identifies`)).body as Array<{
      shard: number[];
      outcome: string;
    }>;
    expect(records).toHaveLength(SHARD_COUNT);
    expect(
      records
        .filter((r) => r.outcome === 'rate-limited')
        .map((r) => r.shard[0])
        .sort(),
    ).toEqual(invalid.map((r) => r.shard).sort());
  });

  it('(b) the same processes pacing by bucket: no violation, all 8 shards READY', async () => {
    const windowMs = 300;
    const marginMs = 1000;
    const sim = await startSim({
      guilds: 80,
      shards: SHARD_COUNT,
      maxConcurrency: MAX_CONCURRENCY,
      identifyWindowMs: windowMs,
      heartbeatIntervalMs: 2000,
      heartbeatToleranceMs: 5000,
    });
    // A common start far enough ahead that all four processes are connected by then.
    const startAt = Date.now() + 4000;
    const clients = spawnClients(sim, [
      String(startAt),
      String(MAX_CONCURRENCY),
      String(windowMs),
      String(marginMs),
    ]);
    const reports = await waitForAnswers(clients);

    const ready = reports.filter((r) => r.type === 'ready');
    const invalid = reports.filter((r) => r.type === 'invalid_session');
    expect(invalid).toEqual([]);
    expect(ready.map((r) => r.shard).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);

    const state = await getState(sim);
    expect(state.violations.identifyRate).toBe(0);
    expect(state.identifies).toBe(SHARD_COUNT);
    expect(state.invalidSessions).toBe(0);
    expect(state.liveSessions.map((s) => s.shard[0]).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);

    // As the simulator saw them: buckets started in order (0-1, then 2-3, ...).
    const records = (await request(`${sim.urls.admin}/identifies`)).body as Array<{
      at: number;
      shard: number[];
      outcome: string;
    }>;
    expect(records).toHaveLength(SHARD_COUNT);
    expect(records.every((r) => r.outcome === 'ready')).toBe(true);
    const buckets = [...records]
      .sort((x, y) => x.at - y.at)
      .map((r) => Math.floor(r.shard[0]! / MAX_CONCURRENCY));
    expect(buckets).toEqual([...buckets].sort((x, y) => x - y));
  });
});
