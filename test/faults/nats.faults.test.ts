import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectFleetInvariants } from '../support/invariants';
import { FaultRig, RecoveryClock, reportResult, shardsOfHost } from './support';

/**
 * The fault matrix, NATS faults (docs/reliability.md): a fleet of two stand-in machines (beta reaches
 * NATS through a TCP proxy the test cuts), 8 shards in 4 clusters, MASTER, discord-sim, and a
 * nats-server the test stops and starts again on the same port and JetStream store. In order: the
 * server restarted, the server down for longer than the fence time, one machine cut off from it.
 */

const SHARDS = 8;
/** The fleet's lease time: clusters fence after half of it without NATS. */
const LEASE_MS = 6000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let rig: FaultRig;

beforeAll(async () => {
  rig = await FaultRig.start({
    bot: 'faults-nats',
    hosts: [{ id: 'alpha' }, { id: 'beta', viaProxy: true }],
    shards: SHARDS,
    maxConcurrency: 2,
    guilds: 160,
    leaseMs: LEASE_MS,
    hostTimeoutMs: 3000,
  });
  rig.fleet.startMaster();
  await rig.allReady('every shard ready after the first plan', 120_000);
  await rig.checkDeliveryModel();
}, 180_000);

afterAll(async () => {
  await rig?.stop();
}, 120_000);

describe('fault matrix: NATS', () => {
  it(
    'NATS server restarted (same port and store): the fleet serves again within 30 s; every event delivered, 0 duplicates, 0 identify violations',
    { timeout: 120_000 },
    async () => {
      const planBefore = await rig.fleet.status();
      const before = await rig.invariants();
      const traffic = await rig.startTraffic(40, 12);
      await sleep(1000);
      const clock = RecoveryClock.start();
      await rig.restartNats();
      const recoveryMs = await clock.until(
        'MASTER and every CONTROL to answer with every shard ready',
        30_000,
        async () => {
          const status = await rig.fleet.status();
          return status.master.up && status.hosts.length === 2 && (await rig.allShardsLive());
        },
        () => rig.fleet.diagnostics(),
      );
      const status = await rig.allReady('every shard ready after the restart', 30_000);
      const delivery = await rig.delivery(traffic, { timeoutMs: 30_000 });
      const after = await rig.invariants();
      reportResult({ fault: 'NATS server restarted', delivery, invariants: after, recoveryMs });
      expect(delivery.missing).toEqual([]);
      expect(status.epoch).toBe(planBefore.epoch);
      expect(after.identifies).toBe(before.identifies);
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
      expect(rig.watchdogKills()).toBe(0);
    },
  );

  it(
    'NATS down for longer than the fence (and lease) time: every cluster fences, and when NATS returns every shard resumes within 30 s; every event delivered, 0 duplicates, 0 identify violations',
    { timeout: 180_000 },
    async () => {
      const before = await rig.invariants();
      const fencedBefore = rig.fleet.botLines().filter((line) => line['t'] === 'fenced').length;
      const traffic = await rig.startTraffic(40, 25);
      await sleep(1000);
      await rig.stopNats();
      // Without NATS no lease can be renewed: every shard must close before its lease could expire.
      await RecoveryClock.start().until(
        'every shard closed (fenced) without NATS',
        30_000,
        async () => (await rig.state())['liveSessions'].length === 0,
        () => rig.fleet.diagnostics(),
      );
      // Longer than the whole lease time, not only the fence time: the leases have expired too.
      await sleep(LEASE_MS + 1000);
      const clock = RecoveryClock.start();
      await rig.restartNats();
      const recoveryMs = await clock.until(
        'every shard resumed after NATS returned',
        30_000,
        async () =>
          (await rig.invariants()).resumes - before.resumes >= SHARDS && (await rig.allShardsLive()),
        () => rig.fleet.diagnostics(),
      );
      await rig.allReady('every shard ready after the outage', 30_000);
      const fenced = rig.fleet.botLines().filter((line) => line['t'] === 'fenced').length - fencedBefore;
      const delivery = await rig.delivery(traffic, { timeoutMs: 30_000 });
      const after = await rig.invariants();
      reportResult({
        fault: 'NATS down longer than the fence (and lease) time',
        delivery,
        invariants: after,
        recoveryMs,
        notes: { fencedClusters: fenced },
      });
      expect(fenced).toBeGreaterThanOrEqual(4);
      expect(delivery.missing).toEqual([]);
      expect(after.identifies).toBe(before.identifies);
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
      expect(rig.watchdogKills()).toBe(0);
    },
  );

  it(
    'host cut off from NATS: it fences before takeover and its shards serve on the other machine by RESUME within 45 s; every event delivered, 0 duplicates, 0 identify violations',
    { timeout: 180_000 },
    async () => {
      const moved = shardsOfHost(await rig.fleet.status(), 'beta');
      expect(moved.length).toBeGreaterThan(0);
      const before = await rig.invariants();
      const traffic = await rig.startTraffic(40, 15);
      await sleep(1000);
      const clock = RecoveryClock.start();
      rig.fleet.host('beta').proxy!.cut('blackhole');
      const recoveryMs = await clock.until(
        "beta's shards resumed on alpha",
        45_000,
        async () =>
          shardsOfHost(await rig.fleet.status(), 'alpha').length === SHARDS &&
          (await rig.invariants()).resumes - before.resumes >= moved.length &&
          (await rig.allShardsLive()),
        () => rig.fleet.diagnostics(),
      );
      await rig.allReady('every shard ready on alpha', 45_000);
      expect(rig.fleet.botLines('beta').some((line) => line['t'] === 'fenced')).toBe(true);
      const delivery = await rig.delivery(traffic, { timeoutMs: 30_000 });
      rig.fleet.host('beta').proxy!.restore();
      const after = await rig.invariants();
      reportResult({ fault: 'host cut off from NATS', delivery, invariants: after, recoveryMs });
      expect(delivery.missing).toEqual([]);
      expect(after.identifies).toBe(before.identifies);
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
      expect(rig.watchdogKills()).toBe(0);
    },
  );
});
