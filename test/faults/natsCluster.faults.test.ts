import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  budgetBucket,
  identifyBucket,
  leaderBucket,
  leaseBucket,
  masterBucket,
  sessionBucket,
} from 'discluster-protocol';
import { startNatsCluster, waitFor, type NatsClusterHandle } from 'discluster-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectFleetInvariants } from '../support/invariants';
import { FaultRig, RecoveryClock, reportResult } from './support';

/**
 * The fault matrix, a replicated NATS (issue 13 §3): a small fleet (one stand-in machine, 4 shards,
 * MASTER, discord-sim) on a 3-node JetStream cluster with kv_replicas 3, under traffic; the node that
 * is JetStream meta leader, then the one leading the lease bucket (every renewal goes there), is
 * killed (SIGKILL) and later started again. Losing one of three nodes must cost nothing: no fence, no
 * IDENTIFY, no lost event. The KV write stall of the failover (the longest gap between successful
 * writes to a 3-replica bucket led by the killed node) is measured and printed, never asserted.
 */

const SHARDS = 4;
/** Default lease time: clusters fence after half of it (10 s) without renewals. */
const LEASE_MS = 20_000;
const BOT = 'faults-natscluster';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let cluster: NatsClusterHandle;
let rig: FaultRig;

beforeAll(async () => {
  cluster = await startNatsCluster({ nodes: 3 });
  const replicated = { DISCLUSTER_NATS_URL: cluster.urls.join(','), DISCLUSTER_KV_REPLICAS: '3' };
  try {
    rig = await FaultRig.start({
      bot: BOT,
      hosts: [{ id: 'alpha' }],
      shards: SHARDS,
      maxConcurrency: 2,
      guilds: 80,
      leaseMs: LEASE_MS,
      hostTimeoutMs: 15_000,
      // The fleet's own nats-server stays unused: every process reaches the cluster instead.
      nats: {
        master: replicated,
        control: replicated,
        cli: { DISCLUSTER_NATS_URL: replicated.DISCLUSTER_NATS_URL },
      },
    });
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  rig.fleet.startMaster();
  await rig.allReady('every shard ready after the first plan', 120_000);
  await rig.checkDeliveryModel();
}, 240_000);

afterAll(async () => {
  await rig?.stop();
  await cluster?.stop();
}, 120_000);

/** Writes to a 3-replica probe bucket every 50 ms and remembers the longest gap between successes. */
class StallProbe {
  public longestGapMs = 0;
  public failures = 0;
  private running = false;
  private loop: Promise<void> = Promise.resolve();

  public constructor(private readonly nc: NatsConnection) {}

  private kv: KV | undefined;

  /** Creates (or binds to) the probe bucket; its leader can then be placed before start(). */
  public async prepare(): Promise<void> {
    this.kv = await new Kvm(jetstream(this.nc, { timeout: 2_000 })).create('stall_probe', {
      replicas: 3,
      history: 1,
    });
    await this.kv.put('probe', '0');
  }

  public start(): void {
    const kv = this.kv;
    if (!kv) throw new Error('prepare() first');
    this.running = true;
    this.longestGapMs = 0;
    this.failures = 0;
    this.loop = (async () => {
      let lastOk = performance.now();
      for (let n = 1; this.running; n++) {
        try {
          await kv.put('probe', String(n));
          const now = performance.now();
          this.longestGapMs = Math.max(this.longestGapMs, now - lastOk);
          lastOk = now;
        } catch {
          this.failures++;
        }
        await sleep(50);
      }
    })();
  }

  public async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

describe('fault matrix: NATS cluster', () => {
  it('every KV bucket of the fleet has 3 replicas', async () => {
    const nc = await connect({ servers: [...cluster.urls] });
    try {
      const jsm = await jetstreamManager(nc, { timeout: 10_000 });
      for (const bucket of [
        leaderBucket,
        masterBucket,
        leaseBucket,
        sessionBucket,
        identifyBucket,
        budgetBucket,
      ])
        expect((await jsm.streams.info(`KV_${bucket(BOT)}`)).config.num_replicas, bucket(BOT)).toBe(3);
    } finally {
      await nc.close();
    }
  });

  it(
    'JetStream meta leader node killed and restarted: 0 fences, 0 identifies, every event delivered, 0 duplicates, 0 identify violations',
    { timeout: 240_000 },
    () => killAndRestart('meta leader', () => cluster.waitForMetaLeader()),
  );

  it(
    "the lease bucket's leader node killed and restarted: 0 fences, 0 identifies, every event delivered, 0 duplicates, 0 identify violations",
    { timeout: 240_000 },
    () => killAndRestart('lease bucket leader', leasesLeader),
  );

  it('the restarted node caught up: every node agrees on the meta leader', async () => {
    await waitFor(async () => (await cluster.metaLeader()) !== undefined, {
      description: 'a meta leader every node agrees on',
      timeoutMs: 60_000,
    });
    expect(cluster.nodes.every((node) => node.running)).toBe(true);
  });
});

const LEASES_STREAM = `KV_${leaseBucket(BOT)}`;

async function leasesLeader(): Promise<number> {
  let leader: number | undefined;
  await waitFor(async () => (leader = await cluster.streamLeader(LEASES_STREAM)) !== undefined, {
    description: 'a leader of the lease bucket',
    timeoutMs: 60_000,
  });
  return leader!;
}

/**
 * Moves the probe bucket's leadership onto `node` (2.9 cannot name the new leader, so step down
 * until it lands there), so the probe measures the stall of a bucket that loses its leader.
 */
async function probeLeaderOn(nc: NatsConnection, node: number): Promise<boolean> {
  for (let attempt = 0; attempt < 12; attempt++) {
    let leader: number | undefined;
    await waitFor(async () => (leader = await cluster.streamLeader('KV_stall_probe')) !== undefined, {
      description: 'a leader of the probe bucket',
      timeoutMs: 30_000,
    });
    if (leader === node) return true;
    await nc
      .request('$JS.API.STREAM.LEADER.STEPDOWN.KV_stall_probe', '', { timeout: 5_000 })
      .catch(() => undefined);
    await sleep(500);
  }
  return false;
}

/** Kills the node `pick` names under traffic, restarts it, and checks that the fleet did not notice. */
async function killAndRestart(what: string, pick: () => Promise<number>): Promise<void> {
  const nc = await connect({ servers: [...cluster.urls], maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const probe = new StallProbe(nc);
  try {
    await probe.prepare();
    const victim = await pick();
    const probeOnVictim = await probeLeaderOn(nc, victim);
    const metaOnVictim = (await cluster.metaLeader()) === victim;
    const leasesOnVictim = (await cluster.streamLeader(LEASES_STREAM)) === victim;
    const before = await rig.invariants();
    const fencedBefore = rig.fleet.botLines().filter((line) => line['t'] === 'fenced').length;
    const traffic = await rig.startTraffic(40, 25);
    probe.start();
    await sleep(2000);

    const clock = RecoveryClock.start();
    await cluster.killNode(victim);
    // Recovered: a new meta leader, and the lease bucket (every renewal) led by a living node.
    const recoveryMs = await clock.until(
      'a new meta leader and a living leader of the lease bucket',
      60_000,
      async () => {
        const meta = await cluster.metaLeader();
        const leases = await cluster.streamLeader(LEASES_STREAM);
        return meta !== undefined && meta !== victim && leases !== undefined && leases !== victim;
      },
      () => rig.fleet.diagnostics(),
    );
    await sleep(5000);
    await cluster.restartNode(victim);
    await cluster.waitForMetaLeader();
    await RecoveryClock.start().until(
      'every shard live once the node is back',
      60_000,
      () => rig.allShardsLive(),
      () => rig.fleet.diagnostics(),
    );
    const delivery = await rig.delivery(traffic, { timeoutMs: 60_000 });
    await probe.stop();
    await rig.allReady('every shard ready after the failover', 60_000);
    const after = await rig.invariants();
    const fenced = rig.fleet.botLines().filter((line) => line['t'] === 'fenced').length - fencedBefore;
    const stall = {
      kvStallMs: Math.round(probe.longestGapMs),
      probeWriteFailures: probe.failures,
      probeLeaderWasKilled: probeOnVictim,
      metaLeaderWasKilled: metaOnVictim,
      leasesLeaderWasKilled: leasesOnVictim,
    };
    console.log(`[nats-cluster] KV write stall, ${what} killed: ${JSON.stringify(stall)}`);
    reportResult({
      fault: `NATS cluster: ${what} node killed and restarted (kv_replicas 3)`,
      delivery,
      invariants: after,
      recoveryMs,
      notes: { ...stall, fencedClusters: fenced },
    });
    expect(fenced).toBe(0);
    expect(delivery.missing).toEqual([]);
    expect(after.identifies).toBe(before.identifies);
    expectFleetInvariants(after);
    expect(after.maxLivePerShard).toBe(1);
    expect(rig.watchdogKills()).toBe(0);
  } finally {
    await probe.stop();
    await nc.close();
  }
}
