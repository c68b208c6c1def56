import fs from 'node:fs';
import path from 'node:path';
import { waitFor, type SpawnedProcess } from 'discluster-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, readyShards } from './support/fleet';
import { expectFleetInvariants } from './support/invariants';

/**
 * Issue 15 "Must show": `cluster.rest` in a real fleet (nats-server, pm2, two CONTROLs, MASTER,
 * discord-sim). 8 clusters on 2 hosts post as fast as they can to 60 channels (more than the global
 * 50/s and the 5-per-5-s bucket of each channel allow) for 30 s: the simulator must count no 429
 * and every message once; again with MASTER SIGKILLed mid-run, and with one host SIGKILLed mid-run.
 */

const SHARDS = 16;
const STORM_MS = 30_000;
const CHANNELS = 60;
let fleet: Fleet;
let master: SpawnedProcess;
let channels: string[];

interface RestCounters {
  requests: number;
  ok: number;
  rateLimited: number;
  globalRateLimited: number;
  invalid: number;
  banned: number;
}

async function restCounters(): Promise<RestCounters> {
  return (await fleet.state())['rest'] as RestCounters;
}

async function allReady(description: string): Promise<void> {
  await waitFor(async () => readyShards(await fleet.status()).length === SHARDS, {
    timeoutMs: 120_000,
    intervalMs: 500,
    description,
  });
}

/** Starts a storm on every host (clusters poll for the plan file), runs `during`, waits for its end. */
async function storm(runId: string, during: () => Promise<void> = async () => undefined): Promise<void> {
  const plan = JSON.stringify({ runId, channels, until: Date.now() + STORM_MS });
  for (const host of fleet.hosts.values()) fs.writeFileSync(path.join(host.home, 'fleetbot-rest.json'), plan);
  await during();
  const until = (JSON.parse(plan) as { until: number }).until;
  // Ended once the simulator has seen no request for 2 s after the end (queued requests drain).
  let last = { requests: -1, at: 0 };
  await waitFor(
    async () => {
      const requests = (await restCounters()).requests;
      if (requests !== last.requests) last = { requests, at: Date.now() };
      return Date.now() > until && Date.now() - last.at > 2_000;
    },
    { timeoutMs: STORM_MS + 90_000, intervalMs: 250, description: `storm ${runId} to end and drain` },
  );
}

/** The run's messages as the simulator stored them, and as the bots logged them accepted. */
async function runMessages(runId: string): Promise<{ stored: string[]; logged: string[] }> {
  // The logs first: a request still queued at the end may be accepted in between, and must then be
  // in the simulator's list too.
  const logged = fleet
    .botLines()
    .filter((line) => line['t'] === 'posted' && String(line['nonce']).startsWith(`${runId}:`))
    .map((line) => String(line['nonce']));
  const all = (await (await fetch(`${fleet.sim.admin}/messages`)).json()) as Array<{ nonce: string | null }>;
  const stored = all.map((m) => m.nonce ?? '').filter((nonce) => nonce.startsWith(`${runId}:`));
  return { stored, logged };
}

function expectExactlyOnce(messages: { stored: string[]; logged: string[] }): void {
  expect(new Set(messages.stored).size).toBe(messages.stored.length);
  const stored = new Set(messages.stored);
  expect(messages.logged.filter((nonce) => !stored.has(nonce))).toEqual([]);
  // Every cluster that logged an accepted message is among those that stored: no lost writes.
  expect(messages.logged.length).toBeGreaterThan(0);
}

function expectNo429(before: RestCounters, after: RestCounters): void {
  const errors = fleet.botLines().filter((line) => line['t'] === 'error' || line['t'] === 'restError');
  const summary = new Map<string, number>();
  for (const line of errors) {
    const key = `${String(line['t'])}: ${String(line['message']).slice(0, 160)} (${String(line['where'] ?? '').slice(0, 400)})`;
    summary.set(key, (summary.get(key) ?? 0) + 1);
  }
  expect({
    bot: [...summary].map(([message, count]) => `${count} × ${message}`),
    rateLimited: after.rateLimited - before.rateLimited,
    globalRateLimited: after.globalRateLimited - before.globalRateLimited,
    banned: after.banned - before.banned,
  }).toEqual({ bot: [], rateLimited: 0, globalRateLimited: 0, banned: 0 });
}

beforeAll(async () => {
  const perHost = { DISCLUSTER_SHARDS_PER_CLUSTER: '2' };
  fleet = await Fleet.start({
    bot: 'restfleet',
    hosts: [
      { id: 'alpha', env: perHost },
      { id: 'beta', env: perHost },
    ],
    shards: SHARDS,
    maxConcurrency: 1,
    guilds: 200,
    leaseMs: 6000,
    hostTimeoutMs: 3000,
  });
  master = fleet.startMaster();
  await allReady('every shard ready after the first plan');
  const listed = (await (await fetch(`${fleet.sim.admin}/channels?limit=${CHANNELS}`)).json()) as Array<{
    id: string;
  }>;
  channels = listed.map((channel) => channel.id);
}, 180_000);

afterAll(async () => {
  await fleet?.stop();
}, 120_000);

describe('cluster.rest in a fleet of 8 clusters on 2 hosts', () => {
  it(
    '30 s at saturation: no 429 (global or bucket), every message exactly once, the global limit used',
    { timeout: 180_000 },
    async () => {
      const clusters = new Set(
        fleet
          .botLines()
          .filter((l) => l['t'] === 'started')
          .map((l) => l['clusterId']),
      );
      expect(clusters.size).toBe(8);
      const before = await restCounters();
      await storm('a');
      const after = await restCounters();
      expectNo429(before, after);
      const messages = await runMessages('a');
      expectExactlyOnce(messages);
      // Every cluster posted: the fleet's limit is shared, not taken by one process.
      const posters = new Set(messages.logged.map((nonce) => nonce.split(':')[1]));
      expect(posters.size).toBe(8);
      // For the log (queued requests finish after the 30 s); bench/rest measures the rate.
      console.log(`[rest-fleet] ${messages.stored.length} messages posted by 8 clusters, 0 × 429`);
    },
  );

  it(
    'with MASTER SIGKILLed mid-run: REST goes on, still no 429, every message once',
    { timeout: 180_000 },
    async () => {
      const before = await restCounters();
      await storm('b', async () => {
        await new Promise((resolve) => setTimeout(resolve, 8_000));
        master.kill('SIGKILL');
        await master.exited;
      });
      const after = await restCounters();
      expectNo429(before, after);
      const messages = await runMessages('b');
      expectExactlyOnce(messages);
      // Posts kept being accepted after MASTER died (its death is 8 s in; the run lasts 30 s).
      expect(messages.stored.length).toBeGreaterThan(0);
      expect(new Set(messages.logged.map((nonce) => nonce.split(':')[1])).size).toBe(8);
    },
  );

  it(
    'with one host SIGKILLed mid-run: the other host posts on, no 429, every message once',
    { timeout: 240_000 },
    async () => {
      master = fleet.startMaster();
      const before = await restCounters();
      await storm('c', async () => {
        await new Promise((resolve) => setTimeout(resolve, 8_000));
        await fleet.killHost('beta');
      });
      const after = await restCounters();
      expectNo429(before, after);
      expectExactlyOnce(await runMessages('c'));
      // Through the runs, MASTER's and a host's death: one owner per shard (promises 1 and 2).
      expectFleetInvariants(await fleet.state());
      // Promise 4: through all of it, no NATS message carried the token (the REST records hold a hash).
      expect(fleet.tokenSightings).toEqual([]);
    },
  );
});
