import { pm2List, waitFor } from 'discluster-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetStatus } from 'discluster-protocol';
import { Fleet, readyShards } from './support/fleet';
import { expectFleetInvariants } from './support/invariants';

/**
 * Operator actions on a live fleet of real CONTROLs: `discluster restart --rolling` (issue 6 §3: a
 * deploy restarts every cluster one at a time; each cluster's shards RESUME, no identify is spent and
 * no MESSAGE_CREATE is lost) and `discluster rebalance` after a host joined (issue 5 §5).
 */

const SHARDS = 8;
let fleet: Fleet;

const clusterPids = async () => {
  const pids = new Map<string, number>();
  for (const [hostId, host] of fleet.hosts)
    for (const proc of (await pm2List(host.home)).processes)
      if (String(proc['name']).includes('-cluster-'))
        pids.set(`${hostId}/${proc['name']}`, proc['pid'] as number);
  return pids;
};

beforeAll(async () => {
  fleet = await Fleet.start({
    bot: 'rolling',
    hosts: [{ id: 'alpha' }, { id: 'beta' }],
    shards: SHARDS,
    maxConcurrency: 2,
    guilds: 160,
    leaseMs: 6000,
    // Exact moves are asserted: a heartbeat late by 3 s on a busy machine must not fail a host over.
    hostTimeoutMs: 6000,
  });
  fleet.startMaster();
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
}, 120_000);

const shardsOf = (status: FleetStatus, hostId: string) =>
  (status.hosts.find((host) => host.id === hostId)?.clusters ?? []).flatMap((cluster) =>
    cluster.shards.map((shard) => shard.id),
  );

describe('operator actions', () => {
  it(
    'restart --rolling restarts every cluster once; every shard resumes; 0 identifies; no event lost',
    { timeout: 300_000 },
    async () => {
      await waitFor(async () => readyShards(await fleet.status()).length === SHARDS, {
        description: 'every shard ready',
        timeoutMs: 120_000,
      });
      const before = await fleet.state();
      const pidsBefore = await clusterPids();
      expect(pidsBefore.size).toBe(4);
      const traffic = await fleet.startTraffic(30, 20);
      const result = await fleet.cli('restart', '--rolling', '--json');
      expect(result.code, `${result.stderr}${result.stdout}`).toBe(0);
      expect(JSON.parse(result.stdout)).toEqual({ hosts: ['alpha', 'beta'] });
      const pidsAfter = await clusterPids();
      expect([...pidsAfter.keys()].sort()).toEqual([...pidsBefore.keys()].sort());
      for (const [name, pid] of pidsAfter) expect(pid, `${name} restarted`).not.toBe(pidsBefore.get(name));
      await waitFor(async () => readyShards(await fleet.status()).length === SHARDS, {
        description: 'every shard ready after the rolling restart',
        timeoutMs: 60_000,
      });
      await waitFor(() => fleet.trafficDone(traffic.id), {
        description: 'the traffic run to end',
        timeoutMs: 60_000,
      });
      await waitFor(() => fleet.receivedNonces().size >= traffic.total, {
        description: `all ${traffic.total} MESSAGE_CREATE at the bot handlers`,
        timeoutMs: 30_000,
      });
      const after = await fleet.state();
      expect(after['identifies']).toBe(before['identifies']);
      expect(after['resumes'] - before['resumes']).toBeGreaterThanOrEqual(SHARDS);
      expectFleetInvariants(after);
      const nonces = fleet.receivedNonces();
      for (let n = 0; n < traffic.total; n++) expect(nonces.has(`${traffic.id}:${n}`)).toBe(true);
    },
  );

  it(
    'a joining host stays idle until rebalance, which moves the fewest shards, each by RESUME',
    { timeout: 300_000 },
    async () => {
      await fleet.startHost({ id: 'gamma' });
      await waitFor(
        async () =>
          (await fleet.status()).hosts.some((host) => host.id === 'gamma' && host.state === 'online'),
        {
          description: 'gamma announced',
          timeoutMs: 60_000,
        },
      );
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const idle = await fleet.status();
      expect(shardsOf(idle, 'gamma')).toEqual([]);
      const before = await fleet.state();
      const result = await fleet.cli('rebalance', '--json');
      expect(result.code, `${result.stderr}${result.stdout}`).toBe(0);
      const { moved } = JSON.parse(result.stdout) as { moved: number };
      // Three equal hosts over four buckets of two shards: one bucket moves to gamma.
      expect(moved).toBe(2);
      let status: FleetStatus | undefined;
      await waitFor(
        async () => {
          status = await fleet.status();
          return readyShards(status).length === SHARDS && shardsOf(status, 'gamma').length === moved;
        },
        { description: 'the moved shards ready on gamma', timeoutMs: 120_000 },
      );
      const after = await fleet.state();
      expect(after['identifies']).toBe(before['identifies']);
      expect(after['resumes'] - before['resumes']).toBe(moved);
      expectFleetInvariants(after);
      const again = await fleet.cli('rebalance');
      expect(again.stdout).toMatch(/already balanced/);
    },
  );

  it(
    'a CONTROL down long enough to be failed over, then back: rebalance returns its shards with resumes only',
    { timeout: 300_000 },
    async () => {
      const gammaShards = shardsOf(await fleet.status(), 'gamma');
      expect(gammaShards.length).toBeGreaterThan(0);
      const before = await fleet.state();
      // CONTROL dies, its clusters keep running under pm2: they fence (no keepalive), MASTER fails
      // gamma over, and the new owners start once gamma's leases expired.
      fleet.host('gamma').control.kill('SIGKILL');
      await fleet.host('gamma').control.exited;
      let last: FleetStatus | undefined;
      await waitFor(
        async () => {
          last = await fleet.status();
          return readyShards(last).length === SHARDS && shardsOf(last, 'gamma').length === 0;
        },
        { description: "gamma's shards serving elsewhere", timeoutMs: 120_000 },
      ).catch((error: unknown) => {
        throw new Error(`${String(error)}\n${JSON.stringify(last)}\n${fleet.diagnostics()}`);
      });
      // CONTROL comes back (finding its old, fenced cluster processes) and a rebalance hands gamma a
      // bucket again right away.
      fleet.restartControl('gamma');
      await waitFor(
        async () =>
          (await fleet.status()).hosts.some((host) => host.id === 'gamma' && host.state === 'online'),
        { description: 'gamma back', timeoutMs: 60_000 },
      );
      const result = await fleet.cli('rebalance', '--json');
      expect(result.code, `${result.stderr}${result.stdout}`).toBe(0);
      await waitFor(
        async () => {
          last = await fleet.status();
          return readyShards(last).length === SHARDS && shardsOf(last, 'gamma').length > 0;
        },
        { description: 'every shard ready with gamma serving again', timeoutMs: 120_000 },
      ).catch((error: unknown) => {
        throw new Error(`${String(error)}\n${JSON.stringify(last)}\n${fleet.diagnostics()}`);
      });
      const after = await fleet.state();
      expect(after['identifies']).toBe(before['identifies']);
      expectFleetInvariants(after);
    },
  );
});
