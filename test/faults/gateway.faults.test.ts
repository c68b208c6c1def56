import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IDENTIFY_WINDOW_MS, liveSessionsByShard, readyShards } from '../support/fleet';
import type { FleetStatus } from 'discluster-protocol';
import { expectFleetInvariants } from '../support/invariants';
import { FaultRig, RecoveryClock, earliestDispatchAt, reportResult, type Traffic } from './support';

/**
 * The fault matrix, gateway faults (docs/reliability.md): what Discord can do to every shard at
 * once, played by discord-sim's admin API on a fleet of two stand-in machines, 8 shards in buckets
 * of 2 (max_concurrency 2), in 4 clusters. In order: every shard closed with 4000 (resume storm),
 * op 7 to every shard, INVALID_SESSION(false) to every shard (re-identify storm), 4014 (fatal: the
 * fleet stops). A second fleet starts with its daily session starts near the safety floor.
 */

const SHARDS = 8;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** After a storm every shard has one live session again and the simulator counted `what` for each. */
async function storm(
  rig: FaultRig,
  route: string,
  what: 'resumes' | 'identifies',
  boundMs: number,
): Promise<{ traffic: Traffic; sentBefore: number; stormAt: number; recoveryMs: number }> {
  const before = await rig.invariants();
  const traffic = await rig.startTraffic(40, 9);
  await sleep(1500);
  const sentBefore = await rig.trafficSent(traffic);
  const stormAt = Date.now();
  const clock = RecoveryClock.start();
  await rig.admin(route);
  const recoveryMs = await clock.until(
    `every shard back after POST ${route}`,
    boundMs,
    async () => (await rig.invariants())[what] - before[what] >= SHARDS && (await rig.allShardsLive()),
    () => rig.fleet.diagnostics(),
  );
  return { traffic, sentBefore, stormAt, recoveryMs };
}

describe('fault matrix: gateway storms', () => {
  let rig: FaultRig;

  beforeAll(async () => {
    rig = await FaultRig.start({
      bot: 'faults-gateway',
      hosts: [{ id: 'alpha' }, { id: 'beta' }],
      shards: SHARDS,
      maxConcurrency: 2,
      guilds: 160,
      leaseMs: 6000,
      hostTimeoutMs: 3000,
    });
    rig.fleet.startMaster();
    await rig.allReady('every shard ready after the first plan', 120_000);
    await rig.checkDeliveryModel();
  }, 180_000);

  afterAll(async () => {
    await rig?.stop();
  }, 120_000);

  it(
    'every shard closed with 4000 at once (resume storm): every shard resumes within 30 s; every event delivered, 0 duplicates, 0 identify violations',
    { timeout: 120_000 },
    async () => {
      const before = await rig.invariants();
      const { traffic, recoveryMs } = await storm(rig, '/shards/all/close?code=4000', 'resumes', 30_000);
      await rig.allReady('every shard ready after the resume storm', 30_000);
      const delivery = await rig.delivery(traffic, { timeoutMs: 30_000 });
      const after = await rig.invariants();
      reportResult({ fault: 'resume storm (4000 on every shard)', delivery, invariants: after, recoveryMs });
      expect(delivery.missing).toEqual([]);
      expect(after.identifies).toBe(before.identifies);
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
      expect(rig.watchdogKills()).toBe(0);
    },
  );

  it(
    'op 7 RECONNECT to every shard at once: every shard resumes within 30 s; every event delivered, 0 duplicates, 0 identify violations',
    { timeout: 120_000 },
    async () => {
      const before = await rig.invariants();
      const { traffic, recoveryMs } = await storm(rig, '/shards/all/reconnect', 'resumes', 30_000);
      await rig.allReady('every shard ready after the op 7 storm', 30_000);
      const delivery = await rig.delivery(traffic, { timeoutMs: 30_000 });
      const after = await rig.invariants();
      reportResult({ fault: 'op 7 storm', delivery, invariants: after, recoveryMs });
      expect(delivery.missing).toEqual([]);
      expect(after.identifies).toBe(before.identifies);
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
      expect(rig.watchdogKills()).toBe(0);
    },
  );

  it(
    'INVALID_SESSION(false) to every shard at once (re-identify storm): identifies paced by bucket, every shard serves again within 30 s; every event sent to a session delivered, 0 duplicates, 0 identify violations',
    { timeout: 120_000 },
    async () => {
      const before = await rig.invariants();
      const { traffic, sentBefore, stormAt, recoveryMs } = await storm(
        rig,
        '/shards/all/invalidate?resumable=false',
        'identifies',
        30_000,
      );
      await rig.allReady('every shard ready after the re-identify storm', 30_000);
      // The new IDENTIFYs: one per shard, paced per rate-limit key (shard % 2) by the fleet-wide throttler.
      const identified = new Map<number, number>();
      const byKey = new Map<number, number[]>();
      for (const [shard, times] of await rig.identifiesByShard()) {
        const fresh = times.filter((at) => at >= stormAt);
        expect(fresh, `shard ${shard} identified once after the storm`).toHaveLength(1);
        identified.set(shard, fresh[0]!);
        byKey.set(
          shard % 2,
          [...(byKey.get(shard % 2) ?? []), fresh[0]!].sort((a, b) => a - b),
        );
      }
      expect(identified.size).toBe(SHARDS);
      for (const times of byKey.values())
        for (let i = 1; i < times.length; i++)
          expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(IDENTIFY_WINDOW_MS);
      // Invalidated sessions are gone: a message sent to a shard between its INVALID_SESSION and its
      // new IDENTIFY had no session to go to (Discord drops it too). Every other one must arrive: all
      // sent before the storm, and all sent after the shard's new session existed.
      const delivery = await rig.delivery(traffic, {
        timeoutMs: 30_000,
        exempt: (n) =>
          n >= sentBefore && earliestDispatchAt(traffic, n) <= identified.get(rig.shardOfNonce(n))!,
      });
      const after = await rig.invariants();
      reportResult({
        fault: 'INVALID_SESSION(false) storm',
        delivery,
        invariants: after,
        recoveryMs,
        notes: { identifiesSpent: after.identifies - before.identifies },
      });
      expect(delivery.missing).toEqual([]);
      expect(after.identifies - before.identifies).toBe(SHARDS);
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
      expect(rig.watchdogKills()).toBe(0);
    },
  );

  it(
    'a fatal close (4014, disallowed intents) stops every cluster of every host once within 60 s; nothing restarts, no identify is spent; every event sent before it delivered',
    { timeout: 120_000 },
    async () => {
      const before = await rig.invariants();
      const traffic = await rig.startTraffic(40, 6);
      await sleep(1500);
      const sentBefore = await rig.trafficSent(traffic);
      const clock = RecoveryClock.start();
      await rig.admin('/shards/0/close?code=4014');
      const recoveryMs = await clock.until(
        'the fleet stopped and every cluster process gone',
        60_000,
        async () =>
          (await rig.fleet.status()).stopped !== null &&
          (await rig.clusterProcesses('alpha')).length + (await rig.clusterProcesses('beta')).length === 0,
        () => rig.fleet.diagnostics(),
      );
      const status = await rig.fleet.status();
      expect(status.stopped).toEqual(expect.objectContaining({ code: 4014 }));
      expect(status.stopped?.reason).toMatch(/shard 0 .* fatal code 4014/);
      expect((await rig.state())['liveSessions']).toEqual([]);
      // Once stopped, stopped: no restart loop, no identify.
      await sleep(4000);
      expect((await rig.clusterProcesses('alpha')).length + (await rig.clusterProcesses('beta')).length).toBe(
        0,
      );
      const delivery = await rig.delivery(traffic, { timeoutMs: 30_000, exempt: (n) => n >= sentBefore });
      const after = await rig.invariants();
      const stops = rig.fleet.masters
        .flatMap((master) => master.lines)
        .filter((line) => /fleet stopped/.test(line));
      reportResult({
        fault: 'fatal close 4014',
        delivery,
        invariants: after,
        recoveryMs,
        notes: { stopReason: status.stopped?.reason, stopsLogged: stops.length },
      });
      expect(stops).toHaveLength(1);
      expect(delivery.missing).toEqual([]);
      expect(after.identifies).toBe(before.identifies);
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
      expect(rig.watchdogKills()).toBe(0);
    },
  );
});

describe('fault matrix: session starts near the floor', () => {
  /** Daily session starts of this fleet's simulator; the SDK keeps `remaining` at or above 10. */
  const TOTAL = 14;
  const FLOOR = 10;
  let rig: FaultRig;

  beforeAll(async () => {
    rig = await FaultRig.start({
      bot: 'faults-floor',
      hosts: [{ id: 'alpha' }],
      shards: SHARDS,
      maxConcurrency: 2,
      guilds: 160,
      leaseMs: 6000,
      hostTimeoutMs: 3000,
      sim: { 'session-start-total': TOTAL },
    });
    rig.fleet.startMaster();
  }, 180_000);

  afterAll(async () => {
    await rig?.stop();
  }, 120_000);

  it(
    'only the starts above the floor are spent; the other shards wait and say why within 30 s; after a resume storm and an INVALID_SESSION(false) the shards with a session serve again within 30 s and nothing identifies below the floor',
    { timeout: 180_000 },
    async () => {
      const clock = RecoveryClock.start();
      const floorReason = (line: Record<string, unknown>) =>
        line['t'] === 'waiting' && /safety floor/.test(String(line['reason']));
      // TOTAL - FLOOR shards get a session; every other one waits, and says why.
      const waitMs = await clock.until(
        'the shards above the floor ready and the others waiting for the floor',
        30_000,
        async () => {
          const live = liveSessionsByShard(await rig.state());
          // Waiting now: said why and has no session (a shard queued behind a lower one of its key
          // may say so for a moment while others hold reservations, then identify).
          const waiting = new Set(
            rig.fleet
              .botLines()
              .filter(floorReason)
              .map((line) => Number(line['shardId']))
              .filter((shardId) => !live.has(shardId)),
          );
          return live.size === TOTAL - FLOOR && waiting.size === SHARDS - (TOTAL - FLOOR);
        },
        () =>
          `${rig.fleet.diagnostics()}\n--- bot\n${rig.fleet
            .botLines()
            .filter((line) => line['t'] !== 'msg')
            .slice(-40)
            .map((line) => JSON.stringify(line))
            .join('\n')}`,
      );
      const serving = [...liveSessionsByShard(await rig.state()).keys()].sort((a, b) => a - b);
      // `discluster status` shows the same: the serving shards ready, every other one waiting.
      const waitingShown = (status: FleetStatus) =>
        status.hosts
          .flatMap((host) => host.clusters.flatMap((cluster) => cluster.shards))
          .filter((shard) => shard.state === 'waiting')
          .map((shard) => shard.id)
          .sort((a, b) => a - b);
      await RecoveryClock.start().until('discluster status to show the waiting shards', 15_000, async () => {
        const status = await rig.fleet.status();
        return (
          readyShards(status).join() === serving.join() &&
          waitingShown(status).join() ===
            [...Array(SHARDS).keys()].filter((id) => !serving.includes(id)).join()
        );
      });
      let state = await rig.state();
      expect(state['identifies']).toBe(TOTAL - FLOOR);
      expect(state['sessionStartRemaining']).toBe(FLOOR);

      // The fault window: every serving shard closed with 4000 (they RESUME: no start is spent), then
      // one of them invalidated (it would need a new start: it must wait for the floor instead).
      const before = await rig.invariants();
      const traffic = await rig.startTraffic(40, 10);
      await sleep(1500);
      const faultClock = RecoveryClock.start();
      await rig.admin('/shards/all/close?code=4000');
      const recoveryMs = await faultClock.until(
        'the serving shards resumed',
        30_000,
        async () => {
          const now = await rig.invariants();
          const live = liveSessionsByShard(await rig.state());
          return now.resumes - before.resumes >= serving.length && serving.every((id) => live.get(id) === 1);
        },
        () => rig.fleet.diagnostics(),
      );
      const invalidated = serving[0]!;
      const floorLinesOf = (shardId: number) =>
        rig.fleet
          .botLines()
          .filter(floorReason)
          .filter((line) => line['shardId'] === shardId).length;
      const floorLinesBefore = floorLinesOf(invalidated);
      const sentBeforeInvalidate = await rig.trafficSent(traffic);
      await rig.admin(`/shards/${invalidated}/invalidate?resumable=false`);
      await RecoveryClock.start().until(
        `shard ${invalidated} waiting for the floor instead of identifying`,
        30_000,
        () => floorLinesOf(invalidated) > floorLinesBefore,
      );
      const delivery = await rig.delivery(traffic, {
        timeoutMs: 30_000,
        exempt: (n) => {
          const shard = rig.shardOfNonce(n);
          return !serving.includes(shard) || (shard === invalidated && n >= sentBeforeInvalidate);
        },
      });
      state = await rig.state();
      const after = await rig.invariants();
      reportResult({
        fault: 'session starts near the floor',
        delivery,
        invariants: after,
        recoveryMs,
        notes: {
          waitSaidWhyMs: waitMs,
          serving,
          sessionStartRemaining: state['sessionStartRemaining'],
        },
      });
      expect(delivery.missing).toEqual([]);
      expect(state['identifies']).toBe(TOTAL - FLOOR);
      expect(state['sessionStartRemaining']).toBe(FLOOR);
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
      expect(rig.watchdogKills()).toBe(0);
    },
  );
});
