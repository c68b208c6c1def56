import { waitFor, type SpawnedProcess, type TcpProxyHandle } from 'discluster-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readyShards } from '../support/fleet';
import { expectFleetInvariants } from '../support/invariants';
import { FaultRig, RecoveryClock, clustersOfHost, reportResult, shardsOfHost } from './support';

/**
 * The fault matrix, process faults (docs/reliability.md): on one fleet of two stand-in machines
 * (alpha, beta: each its own CONTROL and pm2 daemon), 8 shards in 4 clusters, two MASTERs (the first
 * reaches NATS through a TCP proxy the test cuts), discord-sim and nats-server, in this order:
 * a cluster SIGKILLed, a cluster hung, MASTER cut off, MASTER SIGKILLed, a machine SIGKILLed, a
 * cluster in a crash loop. Each test runs MESSAGE_CREATE traffic across its fault and asserts
 * at-least-once delivery by nonce, no duplicate live session and no identify violation.
 */

const SHARDS = 8;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let rig: FaultRig;
let leader: { master: SpawnedProcess; proxy: TcpProxyHandle };
let standby: SpawnedProcess;

beforeAll(async () => {
  rig = await FaultRig.start({
    bot: 'faults-cluster',
    hosts: [{ id: 'alpha' }, { id: 'beta' }],
    shards: SHARDS,
    maxConcurrency: 2,
    guilds: 160,
    leaseMs: 6000,
    hostTimeoutMs: 3000,
  });
  leader = await rig.startMasterViaProxy();
  await leader.master.waitForLine((line) => line.includes('elected leader'), 30_000);
  await rig.allReady('every shard ready after the first plan', 120_000);
  standby = rig.fleet.startMaster();
  await standby.waitForLine((line) => line.includes('another MASTER leads'), 30_000);
  await rig.checkDeliveryModel();
}, 180_000);

afterAll(async () => {
  await rig?.stop();
}, 120_000);

const elections = (master: SpawnedProcess) =>
  master.lines.filter((line) => line.includes('elected leader')).length;

describe('fault matrix: processes', () => {
  it(
    'cluster SIGKILL: its shards resume and serve again within 30 s; every event delivered, 0 duplicates, 0 identify violations',
    { timeout: 120_000 },
    async () => {
      const victim = clustersOfHost(await rig.fleet.status(), 'alpha')[0]!;
      const proc = await rig.clusterProcess('alpha', victim.id);
      const before = await rig.invariants();
      const traffic = await rig.startTraffic(40, 10);
      await sleep(1000);
      const clock = RecoveryClock.start();
      process.kill(proc.pid, 'SIGKILL');
      const recoveryMs = await clock.until(
        `cluster ${victim.id}'s shards resumed`,
        30_000,
        async () =>
          (await rig.invariants()).resumes - before.resumes >= victim.shardIds.length &&
          (await rig.allShardsLive()),
        () => rig.fleet.diagnostics(),
      );
      await rig.allReady('every shard ready after the kill', 30_000);
      expect((await rig.clusterProcess('alpha', victim.id)).pid).not.toBe(proc.pid);
      const delivery = await rig.delivery(traffic, { timeoutMs: 30_000 });
      const after = await rig.invariants();
      reportResult({ fault: 'cluster SIGKILL', delivery, invariants: after, recoveryMs });
      expect(delivery.missing).toEqual([]);
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
      expect(rig.watchdogKills()).toBe(0);
      expect(after.identifies).toBe(before.identifies);
    },
  );

  it(
    'cluster hung (event loop blocked): CONTROL notices its silence, kills and restarts it, and it serves again within 30 s; every event delivered, 0 duplicates, 0 identify violations',
    { timeout: 120_000 },
    async () => {
      const victim = clustersOfHost(await rig.fleet.status(), 'beta')[0]!;
      const proc = await rig.clusterProcess('beta', victim.id);
      const before = await rig.invariants();
      const traffic = await rig.startTraffic(40, 15);
      await sleep(1000);
      const clock = RecoveryClock.start();
      await rig.hangCluster('beta', victim.id);
      const recoveryMs = await clock.until(
        `hung cluster ${victim.id} replaced and its shards resumed`,
        30_000,
        async () =>
          (await rig.clusterProcess('beta', victim.id)).pid !== proc.pid &&
          (await rig.invariants()).resumes - before.resumes >= victim.shardIds.length &&
          (await rig.allShardsLive()),
        () => rig.fleet.diagnostics(),
      );
      await rig.allReady('every shard ready after the hung cluster was replaced', 30_000);
      const control = rig.fleet.host('beta').control.lines;
      expect(control.some((line) => line.includes('cluster stopped reporting'))).toBe(true);
      expect(rig.fleet.botLines('beta').some((line) => line['t'] === 'hanging')).toBe(true);
      const delivery = await rig.delivery(traffic, { timeoutMs: 30_000 });
      const after = await rig.invariants();
      reportResult({ fault: 'cluster hung', delivery, invariants: after, recoveryMs });
      expect(delivery.missing).toEqual([]);
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
      // The hung-cluster watchdog killed only the cluster the test hung.
      expect(rig.watchdogKills()).toBe(1);
      expect(after.identifies).toBe(before.identifies);
    },
  );

  it(
    'MASTER cut off from NATS: the fleet keeps serving and the standby MASTER leads within 20 s; nothing moves; every event delivered, 0 duplicates, 0 identify violations',
    { timeout: 120_000 },
    async () => {
      const planBefore = await rig.fleet.status();
      const before = await rig.invariants();
      const standbyElections = elections(standby);
      const traffic = await rig.startTraffic(40, 10);
      await sleep(1000);
      const clock = RecoveryClock.start();
      leader.proxy.cut('blackhole');
      const recoveryMs = await clock.until(
        'the standby MASTER to lead and answer',
        20_000,
        async () => elections(standby) > standbyElections && (await rig.fleet.status()).master.up,
        () => rig.fleet.diagnostics(),
      );
      // The cut-off leader stepped down by itself (it could not renew its leadership).
      await leader.master.waitForLine((line) => line.includes('no longer the leader'), 10_000);
      leader.proxy.restore();
      const delivery = await rig.delivery(traffic, { timeoutMs: 30_000 });
      const status = await rig.allReady('every shard ready under the new leader', 30_000);
      const after = await rig.invariants();
      reportResult({ fault: 'MASTER cut off from NATS', delivery, invariants: after, recoveryMs });
      expect(delivery.missing).toEqual([]);
      expect(status.epoch).toBe(planBefore.epoch);
      for (const host of ['alpha', 'beta'])
        expect(shardsOfHost(status, host)).toEqual(shardsOfHost(planBefore, host));
      expect(after.identifies).toBe(before.identifies);
      expect(after.resumes).toBe(before.resumes);
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
      expect(rig.watchdogKills()).toBe(1);
    },
  );

  it(
    'MASTER SIGKILL: the fleet keeps serving and the other MASTER leads within 20 s; nothing moves; every event delivered, 0 duplicates, 0 identify violations',
    { timeout: 120_000 },
    async () => {
      const planBefore = await rig.fleet.status();
      const before = await rig.invariants();
      // The MASTER cut off before leads no more; it reconnected through its proxy and stands by.
      const leaderElections = elections(leader.master);
      const traffic = await rig.startTraffic(40, 10);
      await sleep(1000);
      const clock = RecoveryClock.start();
      standby.kill('SIGKILL');
      await standby.exited;
      const recoveryMs = await clock.until(
        'the other MASTER to lead and answer',
        20_000,
        async () => elections(leader.master) > leaderElections && (await rig.fleet.status()).master.up,
        () => rig.fleet.diagnostics(),
      );
      const delivery = await rig.delivery(traffic, { timeoutMs: 30_000 });
      const status = await rig.allReady('every shard ready under the new leader', 30_000);
      const after = await rig.invariants();
      reportResult({ fault: 'MASTER SIGKILL', delivery, invariants: after, recoveryMs });
      expect(delivery.missing).toEqual([]);
      expect(status.epoch).toBe(planBefore.epoch);
      for (const host of ['alpha', 'beta'])
        expect(shardsOfHost(status, host)).toEqual(shardsOfHost(planBefore, host));
      expect(after.identifies).toBe(before.identifies);
      expect(after.resumes).toBe(before.resumes);
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
      expect(rig.watchdogKills()).toBe(1);
    },
  );

  it(
    "host SIGKILL: the machine's shards serve on the other by RESUME within 45 s; every event delivered, 0 duplicates, 0 identify violations",
    { timeout: 180_000 },
    async () => {
      const moved = shardsOfHost(await rig.fleet.status(), 'beta');
      expect(moved.length).toBeGreaterThan(0);
      const before = await rig.invariants();
      const traffic = await rig.startTraffic(40, 15);
      await sleep(1000);
      const clock = RecoveryClock.start();
      await rig.fleet.killHost('beta');
      const recoveryMs = await clock.until(
        "beta's shards resumed on alpha",
        45_000,
        async () =>
          (await rig.invariants()).resumes - before.resumes >= moved.length && (await rig.allShardsLive()),
        () => rig.fleet.diagnostics(),
      );
      const status = await rig.allReady('every shard ready on alpha', 45_000, (now) =>
        moved.every((id) => shardsOfHost(now, 'alpha').includes(id)),
      );
      expect(shardsOfHost(status, 'alpha')).toHaveLength(SHARDS);
      const delivery = await rig.delivery(traffic, { timeoutMs: 30_000 });
      const after = await rig.invariants();
      reportResult({ fault: 'host SIGKILL', delivery, invariants: after, recoveryMs });
      expect(delivery.missing).toEqual([]);
      expect(after.identifies).toBe(before.identifies);
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
      expect(rig.watchdogKills()).toBe(1);
    },
  );

  it(
    'cluster crash loop: given up after max_cluster_restarts and reported cluster.failed within 60 s while the other clusters keep serving; their events delivered, 0 duplicates, 0 identify violations',
    { timeout: 180_000 },
    async () => {
      const victim = clustersOfHost(await rig.fleet.status(), 'alpha')[0]!;
      const proc = await rig.clusterProcess('alpha', victim.id);
      const before = await rig.invariants();
      const traffic = await rig.startTraffic(40, 15);
      await sleep(1000);
      const clock = RecoveryClock.start();
      rig.setCrashing('alpha', victim.id, true);
      process.kill(proc.pid, 'SIGKILL');
      const failedEvent = () =>
        rig.events.find((event) => event['type'] === 'cluster.failed' && event['clusterId'] === victim.id);
      const recoveryMs = await clock.until(
        `cluster.failed for cluster ${victim.id}`,
        60_000,
        () => failedEvent() !== undefined,
        () => rig.fleet.diagnostics(),
      );
      expect(failedEvent()).toMatchObject({ hostId: 'alpha', attempts: 3 });
      // The event goes out at once; MASTER's status learns it from CONTROL's next heartbeat.
      const stateShown = async () =>
        (await rig.fleet.status()).hosts
          .find((host) => host.id === 'alpha')
          ?.clusters.find((cluster) => cluster.id === victim.id)?.state;
      await waitFor(async () => (await stateShown()) === 'failed', {
        description: `discluster status to show cluster ${victim.id} failed`,
        timeoutMs: 15_000,
      });
      const status = await rig.fleet.status();
      // Three failed starts in a row: the SIGKILL itself counts as the first when the process had
      // been up only briefly (this test run alone), else three starts crashed after it. pm2 writes
      // the processes' output to its log files on its own schedule, hence the wait.
      const crashes = () =>
        rig.fleet
          .botLines('alpha')
          .filter((line) => line['t'] === 'crashing' && line['clusterId'] === victim.id).length;
      await waitFor(() => crashes() >= 2, {
        description: `the crashing starts of cluster ${victim.id} in pm2's log`,
        timeoutMs: 15_000,
      });
      const crashed = crashes();
      expect([2, 3]).toContain(crashed);
      // Every other shard serves; the failed cluster's shards have no session.
      const others = readyShards(status).filter((id) => !victim.shardIds.includes(id));
      expect(others).toHaveLength(SHARDS - victim.shardIds.length);
      const delivery = await rig.delivery(traffic, {
        timeoutMs: 30_000,
        exempt: (n) => victim.shardIds.includes(rig.shardOfNonce(n)),
      });
      // Given up means given up: no further start.
      await sleep(3000);
      expect(crashes()).toBe(crashed);
      const after = await rig.invariants();
      reportResult({
        fault: 'cluster crash loop',
        delivery,
        invariants: after,
        recoveryMs,
        notes: { failedCluster: victim.id, failedShards: victim.shardIds, crashes: crashed },
      });
      expect(delivery.missing).toEqual([]);
      expect(delivery.exempt).toBeGreaterThan(0);
      expect(after.identifies).toBe(before.identifies);
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
      expect(rig.watchdogKills()).toBe(1);
    },
  );
});
