import { pm2List, waitFor } from 'discluster-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, readyShards } from './support/fleet';
import { expectFleetInvariants } from './support/invariants';

/**
 * `discluster resplit` on a live fleet of real CONTROLs, pm2 and discord-sim (issue 17 §5): every
 * cluster changes size one group per host at a time, each shard RESUMEs (0 identifies), no
 * MESSAGE_CREATE is lost, and fewer processes serve the same shards; a wrong size is refused with
 * nothing changed.
 */

const SHARDS = 8;
let fleet: Fleet;

const clusterProcesses = async (hostId: string) =>
  (await pm2List(fleet.host(hostId).home)).processes.filter(
    (proc) => String(proc['name']).includes('-cluster-') && proc['pm2_env']?.['status'] === 'online',
  ).length;

beforeAll(async () => {
  fleet = await Fleet.start({
    bot: 'resplit',
    hosts: [{ id: 'alpha' }, { id: 'beta' }],
    shards: SHARDS,
    maxConcurrency: 2,
    guilds: 160,
    leaseMs: 6000,
    hostTimeoutMs: 6000,
  });
  fleet.startMaster();
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
}, 120_000);

describe('discluster resplit', () => {
  it(
    'refuses a size that is no multiple of max_concurrency, naming the fix; nothing changes',
    { timeout: 180_000 },
    async () => {
      await waitFor(async () => readyShards(await fleet.status()).length === SHARDS, {
        description: 'every shard ready',
        timeoutMs: 120_000,
      });
      const before = await fleet.status();
      const wrong = await fleet.cli('resplit', '--shards-per-cluster', '3');
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(/multiple of max_concurrency \(2\).*DISCLUSTER_ERR_RESPLIT_REFUSED/);
      const usage = await fleet.cli('resplit');
      expect(usage.code).toBe(2);
      expect(usage.stderr).toMatch(/resplit needs --shards-per-cluster N/);
      const after = await fleet.status();
      expect(after.epoch).toBe(before.epoch);
      expect(after.resplit).toBeNull();
    },
  );

  it(
    'clusters of 2 become clusters of 4 under traffic: every shard resumes, 0 identifies, no event lost, half the processes',
    { timeout: 300_000 },
    async () => {
      expect(await clusterProcesses('alpha')).toBe(2);
      expect(await clusterProcesses('beta')).toBe(2);
      const before = await fleet.state();
      const traffic = await fleet.startTraffic(30, 20);
      const result = await fleet.cli('resplit', '--shards-per-cluster', '4', '--wait');
      expect(result.code, `${result.stderr}${result.stdout}`).toBe(0);
      expect(result.stderr).toMatch(/RESPLITTING to 4 shards per cluster/);
      expect(result.stdout).toMatch(/re-split finished: clusters of 4 shards serve/);
      const status = await fleet.status();
      expect(status.resplit).toBeNull();
      expect(status.shardsPerCluster).toBe(4);
      for (const host of status.hosts) {
        expect(host.clusters.map((cluster) => cluster.shards.length)).toEqual([4]);
      }
      await waitFor(async () => readyShards(await fleet.status()).length === SHARDS, {
        description: 'every shard ready after the re-split',
        timeoutMs: 60_000,
      });
      await waitFor(
        async () => (await clusterProcesses('alpha')) === 1 && (await clusterProcesses('beta')) === 1,
        { description: 'the old cluster processes gone', timeoutMs: 60_000 },
      );
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
      const again = await fleet.cli('resplit', '--shards-per-cluster', '4');
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toMatch(/already holds 4 shards: nothing to re-split/);
    },
  );
});
