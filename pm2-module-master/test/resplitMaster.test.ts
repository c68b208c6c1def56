import { ErrorCode, type FleetStatus } from 'discluster-protocol';
import { waitFor } from 'discluster-testing';
import { describe, expect, it } from 'vitest';
import { startMaster, type MasterHandle } from '../src/startMaster';
import type { FakeHost } from './fakeHost';
import { useMasterHarness } from './masterHarness';

/**
 * `discluster resplit` at MASTER (issue 17 §5) against a real nats-server and discord-sim, the
 * CONTROLs played by the test so each step can be held and checked: one group of clusters per
 * host at a time, the next only once the last step's clusters are ready, carried on by a MASTER
 * that takes over, refused with nothing changed when the size is wrong.
 */

const TOKEN = 'resplit-test-token-5c1e';
const env = useMasterHarness(TOKEN, { guilds: 64, shards: 32, 'max-concurrency': 4 });
const { running } = env;

async function master(bot: string, expectedHosts = '2'): Promise<MasterHandle> {
  const handle = await startMaster(
    env.masterEnv(bot, {
      DISCLUSTER_WAIT_FOR_HOSTS_MS: '30000',
      DISCLUSTER_EXPECTED_HOSTS: expectedHosts,
      DISCLUSTER_HOST_TIMEOUT_MS: '1500',
      DISCLUSTER_LOG_LEVEL: 'silent',
    }),
  );
  running.push(handle);
  return handle;
}

const ask = (bot: string, request: Record<string, unknown>) => env.ask(bot, request);

const sizes = (host: FakeHost) =>
  (host.lastAssign()?.clusters ?? []).map((cluster) => cluster.shardIds.length);
const range = (first: number, count: number) => Array.from({ length: count }, (_, i) => first + i);

async function twoHosts(bot: string, expectedHosts = '2'): Promise<{ alpha: FakeHost; beta: FakeHost }> {
  const alpha = await env.host({ bot, id: 'alpha', cores: 2 });
  const beta = await env.host({ bot, id: 'beta', cores: 2 });
  await master(bot, expectedHosts);
  await waitFor(() => alpha.epoch !== null && beta.epoch !== null, {
    description: 'the first assignments',
    timeoutMs: 20_000,
  });
  return { alpha, beta };
}

describe('discluster resplit at MASTER', () => {
  it('refuses a size that is no multiple of max_concurrency, and a reshard while it runs; nothing changes', async () => {
    const bot = env.nextBot('resplit-refuse');
    const { alpha } = await twoHosts(bot);
    const epoch = alpha.epoch;
    const wrong = await ask(bot, { type: 'resplit', shardsPerCluster: 6 });
    expect(wrong.code).toBe(ErrorCode.ResplitRefused);
    expect(String(wrong.result)).toMatch(
      /multiple of max_concurrency \(4\).*try 8.*|nothing changed.*multiple/,
    );
    const malformed = await ask(bot, { type: 'resplit', shardsPerCluster: 0 });
    expect(malformed.code).toBe(ErrorCode.InvalidMessage);
    const status = await env.status(bot);
    expect(status.epoch).toBe(epoch);
    expect(status.resplit).toBeNull();
    expect(status.shardsPerCluster).toBeNull();
    expect(sizes(alpha)).toEqual([4, 4, 4, 4]);

    alpha.holdNewClusters = true;
    const started = await ask(bot, { type: 'resplit', shardsPerCluster: 8 });
    expect(started.code).toBeUndefined();
    const reshard = await ask(bot, { type: 'reshard', shards: 64 });
    expect(reshard.code).toBe(ErrorCode.ReshardRefused);
    expect(String(reshard.result)).toMatch(/re-split to 8 shards per cluster is running/);
    const again = await ask(bot, { type: 'resplit', shardsPerCluster: 16 });
    expect(again.code).toBe(ErrorCode.ResplitRefused);
    expect(String(again.result)).toMatch(/already running/);
    alpha.release();
  });

  it('one group per host per step, each once the last step is ready; a new MASTER carries it on; failover keeps the size', async () => {
    const bot = env.nextBot('resplit-steps');
    const { alpha, beta } = await twoHosts(bot);
    expect(alpha.shardIds()).toEqual(range(0, 16));
    expect(sizes(alpha)).toEqual([4, 4, 4, 4]);
    const oldIds = new Set(
      [...alpha.assigns(), ...beta.assigns()].flatMap((a) => a.clusters.map((c) => c.clusterId)),
    );
    alpha.holdNewClusters = true;

    const started = (await ask(bot, { type: 'resplit', shardsPerCluster: 8 })).result as NonNullable<
      FleetStatus['resplit']
    >;
    expect(started).toMatchObject({ shardsPerCluster: 8, clustersTotal: 4, steps: 1 });
    // The step's new clusters, one per host (beta's may have reported ready already).
    expect(started.waitingFor.length).toBeGreaterThanOrEqual(1);
    // Step 1 on each host: its first two clusters became one of 8 shards, under a new id.
    await waitFor(() => sizes(alpha).sort().join() === '4,4,8' && sizes(beta).sort().join() === '4,4,8', {
      description: 'the first step on both hosts',
      timeoutMs: 10_000,
    });
    const first = alpha.lastAssign()?.clusters.find((c) => c.shardIds.length === 8);
    expect(first?.shardIds).toEqual(range(0, 8));
    expect(oldIds.has(first?.clusterId ?? -1)).toBe(false);
    expect(alpha.heldClusterIds()).toEqual([first?.clusterId]);

    // alpha's new cluster is not ready: no host goes on (beta's was ready at once).
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(sizes(beta).sort().join()).toBe('4,4,8');
    const waiting = await env.status(bot);
    expect(waiting.resplit).toMatchObject({ shardsPerCluster: 8, waitingFor: [first?.clusterId], steps: 1 });
    expect(waiting.resplit?.clustersDone).toBe(1);

    // MASTER goes away mid-way; the next one reads the re-split from the plan and carries it on.
    const epochBefore = alpha.epoch;
    await running.splice(0)[0]?.close();
    await master(bot);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(alpha.epoch).toBe(epochBefore); // a take-over moves nothing
    alpha.holdNewClusters = false;
    alpha.release();
    await waitFor(async () => (await env.status(bot)).resplit === null, {
      description: 'the re-split to end',
      timeoutMs: 30_000,
    });
    expect(sizes(alpha)).toEqual([8, 8]);
    expect(sizes(beta)).toEqual([8, 8]);
    expect(alpha.shardIds()).toEqual(range(0, 16));
    expect(beta.shardIds()).toEqual(range(16, 16));
    const done = await env.status(bot);
    expect(done.shardsPerCluster).toBe(8);

    // The size outlives the re-split: beta dies, its shards land on alpha in clusters of 8.
    beta.stop();
    await waitFor(() => alpha.shardIds().length === 32, {
      description: "beta's shards on alpha",
      timeoutMs: 30_000,
    });
    expect(sizes(alpha)).toEqual([8, 8, 8, 8]);
    const nothing = (await ask(bot, { type: 'resplit', shardsPerCluster: 8 })).result as NonNullable<
      FleetStatus['resplit']
    >;
    expect(nothing).toMatchObject({ clustersDone: 4, clustersTotal: 4, waitingFor: [] });
    expect((await env.status(bot)).resplit).toBeNull();
  });

  it('a dead standby with no shards does not hold the end back', async () => {
    const bot = env.nextBot('resplit-standby');
    const spare = await env.host({ bot, id: 'spare', cores: 2, role: 'standby' });
    const { alpha, beta } = await twoHosts(bot, '3');
    spare.stop();
    await waitFor(
      async () => (await env.status(bot)).hosts.some((h) => h.id === 'spare' && h.state === 'lost'),
      { description: 'the standby lost', timeoutMs: 20_000 },
    );
    await ask(bot, { type: 'resplit', shardsPerCluster: 8 });
    await waitFor(async () => (await env.status(bot)).resplit === null, {
      description: 'the re-split to end',
      timeoutMs: 30_000,
    });
    expect(sizes(alpha)).toEqual([8, 8]);
    expect(sizes(beta)).toEqual([8, 8]);
  });
});
