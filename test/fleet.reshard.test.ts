import { waitFor } from 'discluster-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetStatus } from 'discluster-protocol';
import { Fleet, readyShards } from './support/fleet';
import { expectFleetInvariants } from './support/invariants';

/**
 * Zero-downtime resharding across machines (issue 7) on real processes: a second generation of
 * clusters under the new shard count identifies beside the running one, then the handover switches
 * bot code over with every MESSAGE_CREATE delivered exactly once; triggered by `discluster reshard`
 * or by a 4011; refused with a reason when the day's session starts cannot pay for it.
 */

type SimState = Awaited<ReturnType<Fleet['state']>>;

/** Shard ids with a live session, per shard count. */
function liveByCount(state: SimState): Map<number, Set<number>> {
  const byCount = new Map<number, Set<number>>();
  for (const session of state['liveSessions'] as { shard: [number, number] }[]) {
    const [id, count] = session.shard;
    let set = byCount.get(count);
    if (!set) byCount.set(count, (set = new Set()));
    set.add(id);
  }
  return byCount;
}

/** How often each MESSAGE_CREATE nonce reached a bot handler, fleet-wide. */
function nonceCounts(fleet: Fleet): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of fleet.botLines())
    if (line['t'] === 'msg') counts.set(String(line['nonce']), (counts.get(String(line['nonce'])) ?? 0) + 1);
  return counts;
}

const planShards = (status: FleetStatus) => readyShards(status).length;

/**
 * For a failed "exactly once": which generations delivered the doubled events, how far apart the
 * two copies came, and what MASTER said about the handover (its summary, clusters that did not cut
 * over). A skew longer than the handover's pause shows as copies from both generations seconds apart.
 */
function describeDuplicates(fleet: Fleet, twice: readonly (readonly [string, number])[]): string {
  if (twice.length === 0) return '';
  const doubled = new Set(twice.map(([nonce]) => nonce));
  const copies = new Map<string, { shardCount: number; pid: number; at: number }[]>();
  for (const line of fleet.botLines())
    if (line['t'] === 'msg' && doubled.has(String(line['nonce']))) {
      const list = copies.get(String(line['nonce'])) ?? [];
      list.push({ shardCount: Number(line['shardCount']), pid: Number(line['pid']), at: Number(line['at']) });
      copies.set(String(line['nonce']), list);
    }
  const patterns = new Map<string, number>();
  const gaps: number[] = [];
  for (const list of copies.values()) {
    const pattern = list.map((copy) => `${copy.shardCount}@pid${copy.pid}`).join(' + ');
    patterns.set(pattern, (patterns.get(pattern) ?? 0) + 1);
    const times = list.map((copy) => copy.at);
    gaps.push(Math.max(...times) - Math.min(...times));
  }
  gaps.sort((a, b) => a - b);
  const indexes = twice.map(([nonce]) => Number(nonce.split(':')[1])).sort((a, b) => a - b);
  const masterLines = fleet.masters
    .flatMap((master, i) => master.lines.map((line) => `MASTER ${i}: ${line}`))
    .filter((line) => /handover|cut over|reshard|buffer|record/i.test(line))
    .slice(-30);
  return [
    `${twice.length} doubled, traffic indexes ${indexes[0]}..${indexes.at(-1)}`,
    `copies by generation (shard count) and process: ${JSON.stringify(Object.fromEntries(patterns))}`,
    `ms between the copies: median ${gaps[Math.floor(gaps.length / 2)]}, max ${gaps.at(-1)}`,
    ...masterLines,
  ].join('\n');
}

describe('reshard 16 → 32 across 2 hosts with traffic flowing', () => {
  const FROM = 16;
  const TO = 32;
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await Fleet.start({
      bot: 'reshard',
      hosts: [{ id: 'alpha' }, { id: 'beta' }],
      shards: FROM,
      maxConcurrency: 4,
      guilds: 320,
      leaseMs: 6000,
      hostTimeoutMs: 3000,
      leaderLeaseMs: 3000,
    });
    fleet.startMaster();
  }, 120_000);

  afterAll(async () => {
    await fleet?.stop();
  }, 120_000);

  it(
    'every MESSAGE_CREATE reaches bot code exactly once, no shard is ever without a serving session, 0 identify violations, 0 duplicate sessions; a MASTER killed midway changes nothing',
    { timeout: 400_000 },
    async () => {
      await waitFor(async () => planShards(await fleet.status()) === FROM, {
        description: `all ${FROM} shards ready`,
        timeoutMs: 120_000,
      });
      const before = await fleet.state();
      // The referee: sample the simulator while it runs; at every sample one generation is whole.
      let sampling = true;
      const gaps: string[] = [];
      let samples = 0;
      const sampler = (async () => {
        while (sampling) {
          // After a failed assertion the fleet stops under the loop: end quietly then.
          const state = await fleet.state().catch(() => null);
          if (state === null) break;
          const live = liveByCount(state);
          const whole = (count: number) => (live.get(count)?.size ?? 0) === count;
          samples++;
          if (!whole(FROM) && !whole(TO))
            gaps.push(
              `sample ${samples}: ${live.get(FROM)?.size ?? 0}/${FROM} old and ${live.get(TO)?.size ?? 0}/${TO} new shards live`,
            );
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      })();
      const traffic = await fleet.startTraffic(40, 45);
      try {
        await new Promise((resolve) => setTimeout(resolve, 3_000));

        const started = await fleet.cli('reshard', '--shards', String(TO), '--json');
        expect(started.code, `${started.stderr}\n${fleet.diagnostics()}`).toBe(0);
        const progress = JSON.parse(started.stdout) as { from: number; to: number; total: number };
        expect(progress).toMatchObject({ from: FROM, to: TO, total: TO });
        // A second reshard while one runs is refused and changes nothing.
        const again = await fleet.cli('reshard', '--shards', '64');
        expect(again.code).toBe(1);
        expect(again.stderr).toMatch(/already running.*DISCLUSTER_ERR_RESHARD_REFUSED/s);

        // The reshard's state is in KV: a MASTER killed while the new generation warms up is replaced
        // and the replacement finishes it.
        // Still running: warming up, or (on a fast machine, after the CLI calls above) switching over.
        const status = await fleet.status();
        expect(status.reshard).toMatchObject({ from: FROM, to: TO });
        expect(['starting', 'switching']).toContain(status.reshard?.phase);
        const master = fleet.masters[0]!;
        master.kill('SIGKILL');
        await master.exited;
        fleet.startMaster();

        await waitFor(
          async () => {
            const now = await fleet.status().catch(() => null);
            return now !== null && now.master.up && now.shardCount === TO && !now.reshard;
          },
          { description: `the fleet on ${TO} shards`, timeoutMs: 240_000, intervalMs: 500 },
        );
        await waitFor(async () => planShards(await fleet.status()) === TO, {
          description: `all ${TO} new shards ready in status`,
          timeoutMs: 60_000,
        });
        await waitFor(() => fleet.trafficDone(traffic.id), {
          description: 'the traffic run to end',
          timeoutMs: 120_000,
        });
        await waitFor(async () => (liveByCount(await fleet.state()).get(FROM)?.size ?? 0) === 0, {
          description: 'the old generation to close',
          timeoutMs: 60_000,
        });
        await waitFor(() => nonceCounts(fleet).size >= traffic.total, {
          description: `all ${traffic.total} MESSAGE_CREATE at the bot handlers`,
          timeoutMs: 30_000,
        }).catch(() => undefined);
      } finally {
        sampling = false;
        await sampler;
      }

      const counts = nonceCounts(fleet);
      const missing = traffic.total - counts.size;
      const twice = [...counts.entries()].filter(([, n]) => n > 1);
      expect(missing, 'MESSAGE_CREATE never delivered').toBe(0);
      expect(twice, `MESSAGE_CREATE delivered more than once\n${describeDuplicates(fleet, twice)}`).toEqual(
        [],
      );
      expect(samples).toBeGreaterThan(20);
      expect(gaps, 'moments without a whole generation serving').toEqual([]);
      const after = await fleet.state();
      expectFleetInvariants(after);
      // The new generation identified once per shard; the old one spent nothing more.
      expect(after['identifies'] - before['identifies']).toBe(TO);
      const final = await fleet.status();
      expect(final.shardCount).toBe(TO);
      expect(final.hosts.every((host) => host.clusters.length > 0)).toBe(true);
    },
  );
});

describe('reshard triggers and refusals', () => {
  const SHARDS = 8;
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await Fleet.start({
      bot: 'reshard-4011',
      hosts: [{ id: 'alpha' }],
      shards: SHARDS,
      maxConcurrency: 2,
      guilds: 160,
      leaseMs: 6000,
      hostTimeoutMs: 3000,
      // 8 starts for the first plan leave 32: enough for 12 new shards above the floor of 10, not for 64.
      sim: { 'session-start-total': 40, 'max-guilds-per-shard': 30 },
    });
    fleet.startMaster({ DISCLUSTER_RESHARD_GUILDS_PER_SHARD: '20' });
    await waitFor(async () => planShards(await fleet.status()) === SHARDS, {
      description: `all ${SHARDS} shards ready`,
      timeoutMs: 120_000,
    }).catch(async (error: unknown) => {
      throw new Error(`${String(error)}\n${JSON.stringify(await fleet.state())}\n${fleet.diagnostics()}`);
    });
  }, 180_000);

  afterAll(async () => {
    await fleet?.stop();
  }, 120_000);

  it('a reshard the session-start budget cannot pay for is refused with the reason; nothing changes', async () => {
    const before = await fleet.status();
    const simBefore = await fleet.state();
    const refused = await fleet.cli('reshard', '--shards', '64');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /remaining is 32: 64 new shards would leave -32, below the floor 10 \(reshard_budget_floor\)\. Nothing changed\..*DISCLUSTER_ERR_RESHARD_REFUSED/s,
    );
    const badCount = await fleet.cli('reshard', '--shards', '9');
    expect(badCount.code).toBe(1);
    expect(badCount.stderr).toMatch(/not a multiple of max_concurrency 2.*try 10/);
    const after = await fleet.status();
    expect(after.epoch).toBe(before.epoch);
    expect(after.shardCount).toBe(SHARDS);
    expect(after.reshard ?? null).toBeNull();
    const simAfter = await fleet.state();
    expect(simAfter['identifies']).toBe(simBefore['identifies']);
    expect(simAfter['sessionStartRemaining']).toBe(simBefore['sessionStartRemaining']);
  });

  it(
    'a 4011 (sharding required) reshards by itself instead of stopping the fleet',
    { timeout: 240_000 },
    async () => {
      // The bot grows past the simulator's 30 guilds per shard (seed 1: shard 2 goes from 26 to 36).
      const grown = await fetch(`${fleet.sim.admin}/guilds`, {
        method: 'POST',
        body: JSON.stringify({ add: 64 }),
      });
      expect(grown.status).toBe(200);
      await waitFor(
        async () =>
          (await fleet.status()).hosts
            .flatMap((host) => host.clusters.flatMap((cluster) => cluster.shards))
            .reduce((sum, shard) => sum + shard.guilds, 0) === 224,
        { description: 'the shards to report 224 guilds', timeoutMs: 30_000 },
      );
      // Shard 2 loses its session: its new IDENTIFY is closed with 4011.
      const invalidated = await fetch(`${fleet.sim.admin}/shards/2/invalidate?resumable=false`, {
        method: 'POST',
      });
      expect(invalidated.status).toBe(200);
      await waitFor(() => fleet.botLines().some((line) => line['t'] === 'fatal' && line['code'] === 4011), {
        description: 'the 4011 at the bot',
        timeoutMs: 30_000,
      });
      // 224 guilds / reshard_guilds_per_shard 20 = 12 shards (a multiple of max_concurrency 2).
      await waitFor(
        async () => {
          const status = await fleet.status();
          return status.shardCount === 12 && !status.reshard && !status.stopped && planShards(status) === 12;
        },
        { description: 'the fleet resharded to 12 shards', timeoutMs: 180_000, intervalMs: 500 },
      );
      const state = await fleet.state();
      const live = liveByCount(state);
      expect(live.get(12)?.size).toBe(12);
      await waitFor(async () => !liveByCount(await fleet.state()).has(SHARDS), {
        description: 'the old generation to close',
        timeoutMs: 60_000,
      });
      expectFleetInvariants(state);
    },
  );
});

describe('a host lost during a reshard', () => {
  const SHARDS = 8;
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await Fleet.start({
      bot: 'reshard-loss',
      hosts: [{ id: 'alpha' }, { id: 'beta' }],
      shards: SHARDS,
      maxConcurrency: 2,
      guilds: 160,
      leaseMs: 6000,
      hostTimeoutMs: 3000,
    });
    fleet.startMaster();
    await waitFor(async () => planShards(await fleet.status()) === SHARDS, {
      description: `all ${SHARDS} shards ready`,
      timeoutMs: 120_000,
    });
  }, 180_000);

  afterAll(async () => {
    await fleet?.stop();
  }, 120_000);

  it(
    'rolls the reshard back: the new generation stops, the old one fails over and serves every shard, no duplicate session',
    { timeout: 240_000 },
    async () => {
      const started = await fleet.cli('reshard', '--shards', '16', '--json');
      expect(started.code, `${started.stderr}${started.stdout}`).toBe(0);
      await fleet.killHost('beta');
      await waitFor(
        async () => {
          const status = await fleet.status();
          return (
            !status.reshard &&
            status.shardCount === SHARDS &&
            !status.stopped &&
            planShards(status) === SHARDS &&
            status.hosts.find((host) => host.id === 'alpha')!.clusters.flatMap((c) => c.shards).length ===
              SHARDS
          );
        },
        {
          description: 'the old generation serving every shard on alpha, no reshard',
          timeoutMs: 180_000,
          intervalMs: 500,
        },
      );
      await waitFor(async () => !liveByCount(await fleet.state()).has(16), {
        description: 'the new generation closed',
        timeoutMs: 60_000,
      });
      const after = await fleet.state();
      expect(liveByCount(after).get(SHARDS)?.size).toBe(SHARDS);
      expectFleetInvariants(after);
      expect(
        fleet.masters[0]!.lines.some((line) => line.includes('reshard rolled back')),
        'MASTER says it rolled back',
      ).toBe(true);
    },
  );
});
