import fs from 'node:fs';
import path from 'node:path';
import { leaseKey, type ShardLeaseRecord } from 'discluster-protocol';
import {
  spawnNode,
  startNatsServer,
  stopAll,
  waitFor,
  type NatsServerHandle,
  type SpawnedProcess,
} from 'discluster-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeMaster, type PlannedCluster } from './master';
import { makePm2Home, pm2Env, pm2List, teardownPm2 } from './pm2Cli';

/**
 * Promise 2 across two machines: two foreground CONTROLs, each with its own pm2 daemon (its own
 * PM2_HOME) and host id, one nats-server with JetStream. The test plays MASTER: it creates the
 * lease bucket with a short lease time and sends conflicting assignments on purpose.
 */

const BIN = path.join(__dirname, '..', 'dist', 'main.js');
const BOT_SCRIPT = path.join(__dirname, 'fixtures', 'bot.js');
const TOKEN = 'test-bot-token-6d4f2a';
const BOT = 'leasebot';
const NAMESPACE = `discluster-${BOT}`;
const SHARD_COUNT = 8;
const LEASE_MS = 5_000;
const gateway = {
  url: 'wss://gateway.invalid',
  shards: SHARD_COUNT,
  session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 1 },
};

interface Machine {
  readonly hostId: string;
  readonly home: string;
  control: SpawnedProcess;
}

let nats: NatsServerHandle;
let master: FakeMaster;
const machines: Machine[] = [];
let epoch = 0;

function startControl(hostId: string, home: string): SpawnedProcess {
  return spawnNode(BIN, [], {
    env: {
      ...pm2Env(home),
      DISCLUSTER_NATS_URL: nats.url,
      DISCLUSTER_BOT: BOT,
      DISCLUSTER_HOST_ID: hostId,
      DISCLUSTER_SCRIPT: BOT_SCRIPT,
      DISCLUSTER_HEARTBEAT_MS: '200',
      DISCLUSTER_RETRY_MS: '500',
    },
  });
}

async function startMachine(hostId: string): Promise<Machine> {
  const machine = { hostId, home: makePm2Home(), control: undefined as unknown as SpawnedProcess };
  machines.push(machine);
  machine.control = startControl(hostId, machine.home);
  await master.waitForHeartbeat(hostId, () => true, { description: `${hostId} heartbeats` });
  return machine;
}

async function assign(machine: Machine, clusters: PlannedCluster[], clusterIds: number[]): Promise<void> {
  const reply = await master.command(
    machine.hostId,
    master.assign(machine.hostId, {
      epoch: ++epoch,
      shardCount: SHARD_COUNT,
      gateway,
      clusters,
      clusterIds,
      token: TOKEN,
    }),
  );
  expect(reply).toMatchObject({ ok: true, epoch });
}

/** Our cluster process of `clusterId` on `machine`, if pm2 has one. */
async function clusterProcess(machine: Machine, clusterId: number) {
  return (await pm2List(machine.home)).processes.find(
    (proc) =>
      proc['pm2_env']?.['namespace'] === NAMESPACE && proc['name'] === `${NAMESPACE}-cluster-${clusterId}`,
  );
}

const holders = async (shardIds: number[]): Promise<(string | null)[]> =>
  Promise.all(shardIds.map(async (id) => (await master.leaseOf(SHARD_COUNT, id))?.hostId ?? null));

const clusterState = (machine: Machine, clusterId: number) =>
  master.lastHeartbeat(machine.hostId)?.clusters.find((c) => c.clusterId === clusterId)?.state;

/**
 * Samples, until `done` resolves, whether `clusterId` runs on `machine` while any of `shardIds` is
 * leased to another host: promise 2 says that never happens.
 */
async function neverServedTwice(
  machine: Machine,
  clusterId: number,
  shardIds: number[],
  done: Promise<unknown>,
): Promise<number> {
  let finished = false;
  void done.finally(() => (finished = true));
  let samples = 0;
  while (!finished) {
    const before = await holders(shardIds);
    const running = (await clusterProcess(machine, clusterId)) !== undefined;
    const after = await holders(shardIds);
    // Only a sample whose lease reads bracket the process check proves an overlap.
    const heldElsewhere = [...before, ...after].some(
      (holder) => holder !== null && holder !== machine.hostId,
    );
    if (running && heldElsewhere && before.join() === after.join())
      throw new Error(`cluster ${clusterId} of ${machine.hostId} ran while another host held its shards`);
    samples++;
  }
  return samples;
}

beforeAll(async () => {
  nats = await startNatsServer();
  master = await FakeMaster.start(nats.url, BOT);
  await master.createLeaseBucket(LEASE_MS);
});

afterAll(async () => {
  // Each step runs even if an earlier one fails: nothing may outlive the suite.
  try {
    await master?.close();
    await stopAll();
    for (const machine of machines) await teardownPm2(machine.home).catch(() => undefined);
  } finally {
    await nats?.stop();
  }
});

describe('shard leases between two CONTROLs', () => {
  let a: Machine;
  let b: Machine;

  // Liveness bounds for a busy 2-core machine: two CONTROLs and their pm2 daemons start in the first.
  it(
    'a second host waits for shards the first one holds, and renewals keep them past the lease time',
    { timeout: 240_000 },
    async () => {
      a = await startMachine('host-a');
      b = await startMachine('host-b');
      await assign(a, [{ clusterId: 0, shardIds: [0, 1, 2, 3] }], [0, 10]);
      await master.waitForHeartbeat('host-a', () => clusterState(a, 0) === 'online', {
        description: 'cluster 0 online on host-a',
      });
      expect(await holders([0, 1, 2, 3])).toEqual(['host-a', 'host-a', 'host-a', 'host-a']);
      const revisionBefore = (await (await master.leaseKv()).get(leaseKey(SHARD_COUNT, 2)))!.revision;

      // MASTER (wrongly, or mid-failover) gives host-b shards 2 and 3 as well.
      await assign(b, [{ clusterId: 10, shardIds: [2, 3, 4, 5] }], [0, 10]);
      const waited = new Promise((resolve) => setTimeout(resolve, LEASE_MS * 1.5));
      await neverServedTwice(b, 10, [2, 3], waited);
      expect(await clusterProcess(b, 10)).toBeUndefined();
      expect(clusterState(b, 10)).toBe('starting');
      // Three lease times' worth of renewals later, host-a still holds them.
      expect(await holders([2, 3])).toEqual(['host-a', 'host-a']);
      const revisionAfter = (await (await master.leaseKv()).get(leaseKey(SHARD_COUNT, 2)))!.revision;
      expect(revisionAfter).toBeGreaterThan(revisionBefore);
      const waits = b.control.lines.filter((line) => line.includes('is leased by host host-a'));
      expect(waits).toHaveLength(1);
    },
  );

  it(
    'once the first host releases them (revoke), the second starts at once',
    { timeout: 120_000 },
    async () => {
      expect(
        (await master.command('host-a', { v: 1, type: 'revoke', epoch, clusterIds: [0], reason: 'moved' }))
          .ok,
      ).toBe(true);
      expect(await clusterProcess(a, 0)).toBeUndefined();
      await master.waitForHeartbeat('host-b', () => clusterState(b, 10) === 'online', {
        description: 'cluster 10 online on host-b',
      });
      expect(await holders([0, 1, 2, 3, 4, 5])).toEqual([null, null, 'host-b', 'host-b', 'host-b', 'host-b']);
    },
  );

  it(
    'a lease overwritten by another host stops that cluster for good (no restart)',
    { timeout: 180_000 },
    async () => {
      const proc = await clusterProcess(b, 10);
      expect(proc?.['pm2_env']['status']).toBe('online');
      const intruder: ShardLeaseRecord = {
        v: 1,
        shardId: 4,
        shardCount: SHARD_COUNT,
        hostId: 'host-z',
        instanceId: 'intruder-boot-1',
        clusterId: 77,
        epoch: 99,
        renewedAt: Date.now(),
      };
      await (await master.leaseKv()).put(leaseKey(SHARD_COUNT, 4), JSON.stringify(intruder));
      await waitFor(async () => (await clusterProcess(b, 10)) === undefined, {
        description: 'cluster 10 removed from host-b',
        timeoutMs: 30_000,
      });
      await master.waitForHeartbeat('host-b', () => clusterState(b, 10) === 'stopped', {
        description: 'cluster 10 reported stopped',
      });
      await b.control.waitForLine((line) => line.includes('taken by host host-z'));
      // It was told to shut down (closing its shards for resume), not killed.
      const log = fs.readFileSync(path.join(b.home, 'logs', `${NAMESPACE}-cluster-10-out.log`), 'utf8');
      expect(log).toContain('"type":"shutdown"');
      // What it still held is free for the next owner; the intruder's lease is left alone.
      expect(await holders([2, 3, 4, 5])).toEqual([null, null, 'host-z', null]);
      // A lease time later: never restarted.
      await new Promise((resolve) => setTimeout(resolve, LEASE_MS));
      expect(await clusterProcess(b, 10)).toBeUndefined();
      expect(clusterState(b, 10)).toBe('stopped');
    },
  );

  it("a dead host's shards start elsewhere only after its leases expired", { timeout: 180_000 }, async () => {
    await assign(a, [{ clusterId: 1, shardIds: [6, 7] }], [1, 11]);
    await master.waitForHeartbeat('host-a', () => clusterState(a, 1) === 'online', {
      description: 'cluster 1 online on host-a',
    });
    // host-a dies: CONTROL, pm2 and the cluster with them. Its leases stay until the TTL ends them.
    await a.control.stop();
    await teardownPm2(a.home);
    expect(await holders([6, 7])).toEqual(['host-a', 'host-a']);
    await assign(b, [{ clusterId: 11, shardIds: [6, 7] }], [1, 11]);
    const online = master.waitForHeartbeat('host-b', () => clusterState(b, 11) === 'online', {
      description: 'cluster 11 online on host-b',
    });
    expect(await neverServedTwice(b, 11, [6, 7], online)).toBeGreaterThan(0);
    await online;
    expect(await holders([6, 7])).toEqual(['host-b', 'host-b']);
  });
});
