import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { processesMentioning, type SpawnedProcess } from 'discluster-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readyShards } from '../support/fleet';
import { expectFleetInvariants } from '../support/invariants';
import { startLabRig, type LabRig } from './labFleet';
import { RecoveryClock, reportResult, shardsOfHost, type FaultRig } from './support';

/**
 * The fault matrix, real network partitions (issue 13 §4, docs/reliability.md): every machine is a
 * Linux network namespace made by the test, plugged by veth pairs into two bridges (networks `nats`
 * and `discord`) inside a switch namespace of their own. nats-server, discord-sim, two MASTERs and
 * two CONTROLs (alpha, beta: own PM2_HOME, pm2 daemon and clusters) each run in their own host with
 * their own addresses. A partition is a link taken down at the switch: the host gets no error,
 * its packets vanish. In order: MASTER cut off, then healed; beta loses Discord but keeps NATS, then
 * healed; beta loses NATS but keeps Discord; that partition heals. Each case checks promises 1 and 2
 * (no identify violation, no duplicate live session, no RESUME while live) and delivery by nonce.
 *
 * Needs root (CAP_NET_ADMIN): without it, the lab's creation fails the suite with a message saying
 * so. The lab's namespaces (and with them every link) are removed in afterAll, by an exit hook, and
 * by the next run if this process was killed.
 */

const SHARDS = 8;
// The simulator's heartbeat interval: short, so a cut longer than it is noticed by both ends (the
// client misses ACKs, the simulator misses heartbeats) within a test's time.
const HEARTBEAT_MS = 3000;
const LEASE_MS = 6000;
const LEADER_LEASE_MS = 3000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let lab: LabRig;
let rig: FaultRig;
let leader: SpawnedProcess;
let standby: SpawnedProcess;

const elections = (master: SpawnedProcess) =>
  master.lines.filter((line) => line.includes('elected leader')).length;

/** The network namespace a pid runs in (`ip netns identify`: the name of our lab namespace). */
const namespaceOf = (pid: number): string =>
  execFileSync('ip', ['netns', 'identify', String(pid)], { encoding: 'utf8' }).trim();

beforeAll(async () => {
  lab = await startLabRig({
    bot: 'faults-netns',
    controls: ['alpha', 'beta'],
    masterHosts: ['master', 'standby'],
    shards: SHARDS,
    maxConcurrency: 2,
    guilds: 160,
    leaseMs: LEASE_MS,
    hostTimeoutMs: 3000,
    leaderLeaseMs: LEADER_LEASE_MS,
    sim: { 'heartbeat-interval-ms': HEARTBEAT_MS },
  });
  rig = lab.rig;
  leader = lab.startMaster('master');
  await leader.waitForLine((line) => line.includes('elected leader'), 30_000);
  await rig.allReady('every shard ready after the first plan', 120_000);
  standby = lab.startMaster('standby');
  await standby.waitForLine((line) => line.includes('another MASTER leads'), 30_000);
  await rig.checkDeliveryModel();
}, 240_000);

afterAll(async () => {
  await lab?.stop();
}, 120_000);

describe('fault matrix: real network partitions (network namespaces)', () => {
  it('runs every process in its own host namespace, CONTROL’s pm2 daemon and clusters included', async () => {
    const { lab: net, masters } = lab;
    expect(namespaceOf(rig.fleet.nats.pid)).toBe(net.host('nats').ns);
    expect(namespaceOf(rig.fleet.sim.process.pid)).toBe(net.host('sim').ns);
    for (const [name, master] of masters) expect(namespaceOf(master.pid)).toBe(net.host(name).ns);
    for (const id of ['alpha', 'beta']) {
      const host = rig.fleet.host(id);
      expect(namespaceOf(host.control.pid)).toBe(net.host(id).ns);
      const daemon = Number(fs.readFileSync(path.join(host.home, 'pm2.pid'), 'utf8'));
      expect(namespaceOf(daemon)).toBe(net.host(id).ns);
      const clusters = await rig.clusterProcesses(id);
      expect(clusters.length).toBeGreaterThan(0);
      for (const cluster of clusters) expect(namespaceOf(cluster.pid)).toBe(net.host(id).ns);
      // Everything that names this machine's PM2_HOME lives in its namespace too.
      for (const pid of processesMentioning(host.home)) expect(namespaceOf(pid)).toBe(net.host(id).ns);
    }
    // The servers listen on lab addresses only.
    expect(lab.natsUrl).toMatch(/^nats:\/\/10\.213\.1\.\d+:4222$/);
    expect(rig.fleet.sim.gateway).toMatch(/^ws:\/\/10\.213\.2\.\d+:8080/);
  });

  it(
    'MASTER cut off (every link down): the fleet keeps serving, the standby MASTER leads; healed, the old MASTER stands by and leads once the standby is gone; nothing moves; every event delivered, 0 duplicates, 0 identify violations',
    { timeout: 180_000 },
    async () => {
      const planBefore = await rig.fleet.status();
      const before = await rig.invariants();
      const standbyElections = elections(standby);
      const traffic = await rig.startTraffic(40, 10);
      await sleep(1000);
      const clock = RecoveryClock.start();
      await lab.lab.host('master').cut();
      const recoveryMs = await clock.until(
        'the standby MASTER to lead and answer',
        60_000,
        async () => elections(standby) > standbyElections && (await rig.fleet.status()).master.up,
        () => rig.fleet.diagnostics(),
      );
      // The cut-off leader stepped down by itself: it could not renew its leadership.
      await leader.waitForLine((line) => line.includes('no longer the leader'), 30_000);
      await lab.lab.host('master').heal();
      // Healed, it stands by (a standing-by MASTER campaigns quietly): it must not lead again
      // while the standby's lease is renewed, through several of its lease periods.
      const leaderElections = elections(leader);
      await sleep(3 * LEADER_LEASE_MS);
      expect(elections(leader)).toBe(leaderElections);
      expect(elections(standby)).toBe(standbyElections + 1);
      const delivery = await rig.delivery(traffic, { timeoutMs: 30_000 });
      const status = await rig.allReady('every shard ready under the new leader', 60_000);
      const after = await rig.invariants();
      reportResult({
        fault: 'MASTER cut off (netns: links down)',
        delivery,
        invariants: after,
        recoveryMs,
      });
      expect(delivery.missing).toEqual([]);
      expect(status.epoch).toBe(planBefore.epoch);
      for (const host of ['alpha', 'beta'])
        expect(shardsOfHost(status, host)).toEqual(shardsOfHost(planBefore, host));
      expect(after.identifies).toBe(before.identifies);
      expect(after.resumes).toBe(before.resumes);
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);

      // It is back on NATS, not just quiet: with the standby gone it leads again.
      const takeover = RecoveryClock.start();
      standby.kill('SIGKILL');
      await standby.exited;
      const healedLeadsMs = await takeover.until(
        'the healed MASTER to lead again',
        60_000,
        async () => elections(leader) > leaderElections && (await rig.fleet.status()).master.up,
        () => rig.fleet.diagnostics(),
      );
      reportResult({
        fault: 'healed MASTER leads after the standby is SIGKILLed (netns)',
        delivery: { dispatched: 0, delivered: 0, exempt: 0, missing: [] },
        invariants: await rig.invariants(),
        recoveryMs: healedLeadsMs,
      });
    },
  );

  it(
    'a host loses Discord but keeps NATS: its shards stay its own (no second owner) and RESUME once healed; every event delivered, 0 duplicates, 0 identify violations',
    { timeout: 240_000 },
    async () => {
      const planBefore = await rig.fleet.status();
      const betaShards = shardsOfHost(planBefore, 'beta');
      expect(betaShards.length).toBeGreaterThan(0);
      const before = await rig.invariants();
      const traffic = await rig.startTraffic(40, 20);
      await sleep(1000);
      await lab.lab.host('beta').cut('discord');
      // Long enough for both ends to notice (several heartbeat intervals) and for a lease to have
      // expired twice over, had beta stopped renewing.
      await sleep(Math.max(5 * HEARTBEAT_MS, 2 * LEASE_MS));
      const during = await rig.fleet.status();
      const liveDuring = await rig.state();
      // Beta's TCP sockets to the simulator when the link comes back (state and unacknowledged
      // bytes): TCP's retransmission backoff on them, not a delay of ours, decides when beta learns.
      const { stdout: socketsToSim } = await lab.lab
        .host('beta')
        .exec('ss', ['-Htna', 'dst', lab.lab.host('sim').ip('discord')]);
      const clock = RecoveryClock.start();
      await lab.lab.host('beta').heal('discord');
      const recoveryMs = await clock.until(
        "beta's shards resumed on beta",
        120_000,
        async () =>
          (await rig.invariants()).resumes - before.resumes >= betaShards.length &&
          (await rig.allShardsLive()),
        () => rig.fleet.diagnostics(),
      );
      const status = await rig.allReady('every shard ready after the heal', 60_000);
      const delivery = await rig.delivery(traffic, { timeoutMs: 60_000 });
      const after = await rig.invariants();
      reportResult({
        fault: 'host loses Discord, keeps NATS (netns: link down)',
        delivery,
        invariants: after,
        recoveryMs,
        notes: {
          cutMs: Math.max(5 * HEARTBEAT_MS, 2 * LEASE_MS),
          liveSessionsDuringCut: (liveDuring['liveSessions'] as unknown[]).length,
          socketsToSimBeforeHeal: socketsToSim
            .split('\n')
            .filter((line) => line.trim() !== '')
            .map((line) => line.trim().split(/\s+/).slice(0, 3).join(' ')),
          resumes: after.resumes - before.resumes,
        },
      });
      // Nobody took beta's shards while it kept its leases through NATS.
      expect(shardsOfHost(during, 'beta')).toEqual(betaShards);
      expect(shardsOfHost(status, 'beta')).toEqual(betaShards);
      expect(delivery.missing).toEqual([]);
      expect(after.identifies).toBe(before.identifies);
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
    },
  );

  it(
    'a host loses NATS but keeps Discord: its clusters fence before their leases expire, the shards RESUME on the other host; every event delivered, 0 duplicates, 0 identify violations',
    { timeout: 240_000 },
    async () => {
      const betaShards = shardsOfHost(await rig.fleet.status(), 'beta');
      expect(betaShards.length).toBeGreaterThan(0);
      const before = await rig.invariants();
      const traffic = await rig.startTraffic(40, 20);
      await sleep(1000);
      const clock = RecoveryClock.start();
      await lab.lab.host('beta').cut('nats');
      const recoveryMs = await clock.until(
        "beta's shards resumed on alpha",
        120_000,
        async () => {
          const status = await rig.fleet.status();
          return (
            readyShards(status).length === SHARDS &&
            shardsOfHost(status, 'alpha').length === SHARDS &&
            (await rig.allShardsLive())
          );
        },
        () => rig.fleet.diagnostics(),
      );
      const fencedLines = rig.fleet.botLines('beta').filter((line) => line['t'] === 'fenced');
      const delivery = await rig.delivery(traffic, { timeoutMs: 60_000 });
      const after = await rig.invariants();
      reportResult({
        fault: 'host loses NATS, keeps Discord (netns: link down)',
        delivery,
        invariants: after,
        recoveryMs,
        notes: { moved: betaShards.length, resumes: after.resumes - before.resumes },
      });
      // Beta's clusters fenced themselves: they could still reach the simulator, so only fencing
      // (not the cut) closed their sessions before alpha resumed them.
      expect(fencedLines.length).toBeGreaterThan(0);
      expect(delivery.missing).toEqual([]);
      expect(after.identifies).toBe(before.identifies);
      expect(after.resumes - before.resumes).toBeGreaterThanOrEqual(betaShards.length);
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
    },
  );

  it(
    'the partition heals: beta rejoins, its stale clusters are stopped, a rebalance gives it shards back by RESUME; 0 duplicates, 0 identify violations',
    { timeout: 240_000 },
    async () => {
      const before = await rig.invariants();
      const clock = RecoveryClock.start();
      await lab.lab.host('beta').heal('nats');
      const staleStoppedMs = await clock.until(
        "beta's stale clusters stopped and beta online",
        120_000,
        async () =>
          (await rig.clusterProcesses('beta')).length === 0 &&
          (await rig.fleet.status()).hosts.some((host) => host.id === 'beta' && host.state === 'online'),
        () => rig.fleet.diagnostics(),
      );
      const result = await rig.fleet.cli('rebalance', '--json');
      expect(result.code, result.stderr).toBe(0);
      const { moved } = JSON.parse(result.stdout) as { moved: number };
      const rebalance = RecoveryClock.start();
      const rebalancedMs = await rebalance.until(
        'every shard ready with beta serving again',
        120_000,
        async () => {
          const status = await rig.fleet.status();
          return readyShards(status).length === SHARDS && shardsOfHost(status, 'beta').length > 0;
        },
        () => rig.fleet.diagnostics(),
      );
      await rig.checkDeliveryModel(60_000);
      const after = await rig.invariants();
      reportResult({
        fault: 'partition heals (netns: link up)',
        delivery: { dispatched: 0, delivered: 0, exempt: 0, missing: [] },
        invariants: after,
        recoveryMs: staleStoppedMs,
        notes: { moved, rebalancedMs },
      });
      expect(moved).toBeGreaterThan(0);
      expect(after.identifies).toBe(before.identifies);
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
    },
  );
});
