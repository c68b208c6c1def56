import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { leaderBucket, leaseBucket } from 'discluster-protocol';
import { openBucket } from 'discluster-runtime';
import { startNatsServer, waitFor, type NatsServerHandle } from 'discluster-testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { nextLeaseTtl } from '../src/leadership/leaseBucketTtl';
import { startMaster, type MasterHandle } from '../src/startMaster';

/**
 * Issue 13 (d), MASTER side: changing a lease bucket's TTL changes the life of every entry in it at
 * once. A standby MASTER must not touch the leader bucket's TTL (a shorter `leader_lease_ms` cut the
 * sitting leader's lease), and a lower `lease_ms` must reach the shard lease bucket in steps that
 * never expire a lease before its holder, timing by the TTL it last read, has fenced.
 */

let nats: NatsServerHandle;
let nc: NatsConnection;
let botNo = 0;
const running: MasterHandle[] = [];

beforeAll(async () => {
  nats = await startNatsServer({ jetstream: true });
  nc = await connect({ servers: nats.url });
});

afterEach(async () => {
  for (const master of running.splice(0)) await master.close();
});

afterAll(async () => {
  await nc?.drain().catch(() => undefined);
  await nats?.stop();
});

async function master(bot: string, leaderLeaseMs: number, leaseMs = 2_000): Promise<MasterHandle> {
  const handle = await startMaster({
    DISCLUSTER_NATS_URL: nats.url,
    DISCLUSTER_BOT: bot,
    DISCLUSTER_TOKEN: 'bucket-ttl-test-token',
    // Never reached: no host announces, so no plan is made.
    DISCLUSTER_DISCORD_API: 'http://127.0.0.1:9/api/v10',
    DISCLUSTER_WAIT_FOR_HOSTS_MS: '600000',
    DISCLUSTER_LEASE_MS: String(leaseMs),
    DISCLUSTER_LEADER_LEASE_MS: String(leaderLeaseMs),
    DISCLUSTER_LOG_LEVEL: 'silent',
  });
  running.push(handle);
  return handle;
}

async function bucketTtl(name: string): Promise<number> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(`KV_${name}`);
  return Math.round(info.config.max_age / 1_000_000);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('lease bucket TTLs (issue 13 d)', () => {
  it(
    'a standby with a shorter leader_lease_ms leaves the leader bucket TTL alone; it sets its own once it leads',
    { timeout: 120_000 },
    async () => {
      const bot = `t${++botNo}`;
      const first = await master(bot, 6_000);
      await waitFor(async () => (await first.master!.currentLeader()) !== null, {
        description: 'the first MASTER leading',
      });
      const leader = (await first.master!.currentLeader())!.instanceId;
      const standby = await master(bot, 1_000);
      expect(await bucketTtl(leaderBucket(bot))).toBe(6_000);
      // Longer than the standby's lease: the sitting leader's key is still the one in the bucket.
      await sleep(3_000);
      expect((await standby.master!.currentLeader())?.instanceId).toBe(leader);
      expect(await bucketTtl(leaderBucket(bot))).toBe(6_000);
      // The leader leaves: the standby leads and only then sets its own leader_lease_ms.
      await first.close();
      await waitFor(
        async () => (await standby.master!.currentLeader())?.instanceId === standby.master!.instanceId,
        {
          description: 'the standby leading',
          timeoutMs: 30_000,
        },
      );
      await waitFor(async () => (await bucketTtl(leaderBucket(bot))) === 1_000, {
        description: 'the new leader set its leader_lease_ms',
        timeoutMs: 30_000,
      });
    },
  );

  it(
    'a lower lease_ms reaches the shard lease bucket in steps of at most a quarter, one old lease apart',
    { timeout: 180_000 },
    async () => {
      const bot = `t${++botNo}`;
      // The bucket as an earlier MASTER with lease_ms 6000 left it.
      await openBucket(nc, { name: leaseBucket(bot), ttlMs: 6_000, description: 'test', timeoutMs: 10_000 });
      const seen: { ttl: number; at: number }[] = [];
      let watching = true;
      const watch = (async () => {
        while (watching) {
          const ttl = await bucketTtl(leaseBucket(bot));
          if (seen.at(-1)?.ttl !== ttl) seen.push({ ttl, at: performance.now() });
          await sleep(50);
        }
      })();
      try {
        await master(bot, 1_500, 2_000);
        await waitFor(() => seen.at(-1)?.ttl === 2_000, {
          description: 'the lease bucket TTL reaching lease_ms',
          timeoutMs: 120_000,
        });
      } finally {
        watching = false;
        await watch;
      }
      const ttls = seen.map((step) => step.ttl);
      expect(ttls).toEqual([6_000, 4_500, 3_375, 2_532, 2_000]);
      for (let i = 1; i < seen.length - 1; i++) {
        // Each step waited for the lease time before it (the watch may see a change up to a poll late).
        expect(seen[i + 1]!.at - seen[i]!.at).toBeGreaterThan(seen[i - 1]!.ttl / 2);
      }
    },
  );

  it('a higher lease_ms is set at once', async () => {
    const bot = `t${++botNo}`;
    await openBucket(nc, { name: leaseBucket(bot), ttlMs: 1_000, description: 'test', timeoutMs: 10_000 });
    await master(bot, 1_500, 5_000);
    await waitFor(async () => (await bucketTtl(leaseBucket(bot))) === 5_000, {
      description: 'the lease bucket TTL set to lease_ms',
      timeoutMs: 30_000,
    });
  });

  it('steps: never more than a quarter lower, a longer TTL at once', () => {
    expect(nextLeaseTtl(20_000, 8_000)).toBe(15_000);
    expect(nextLeaseTtl(9_000, 8_000)).toBe(8_000);
    expect(nextLeaseTtl(8_000, 20_000)).toBe(20_000);
    expect(nextLeaseTtl(0, 8_000)).toBe(8_000);
  });
});
