import { waitFor, type SpawnedProcess } from 'discluster-testing';
import type { FleetStatus } from 'discluster-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Receiver } from '../pm2-module-master/test/webhookReceiver';
import { liveSessionsByShard } from './support/fleet';
import { expectFleetInvariants } from './support/invariants';
import { FaultRig, clustersOfHost } from './faults/support';

/**
 * Given-up clusters are served again (issue 17 §1, `failed_cluster_action`), on a real fleet: two
 * stand-in machines (alpha, beta: each its own CONTROL and pm2 daemon), 8 shards in 4 clusters,
 * MASTER with a status page and an alert webhook (a local HTTP receiver), discord-sim, nats-server.
 * A cluster on alpha crash-loops (fixtures/fleetBot.js crashes at start while
 * `fleetbot-crash-<clusterId>` is in its host's PM2_HOME) until CONTROL gives up: MASTER moves it to
 * beta, which RESUMEs its sessions; it crash-loops there too: MASTER holds it and alerts. A MASTER
 * that takes over keeps the record; `discluster rebalance` clears it; with `hold` nothing moves.
 * Time bounds are liveness timeouts, generous for a busy 2-core machine.
 */

const SHARDS = 8;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let rig: FaultRig;
let receiver: Receiver;
let master: SpawnedProcess;

function startMaster(env: Record<string, string> = {}): SpawnedProcess {
  return rig.fleet.startMaster({
    DISCLUSTER_ALERT_WEBHOOK_URL: receiver.url,
    DISCLUSTER_HTTP_PORT: '0',
    ...env,
  });
}

/** The status page's base URL, from MASTER's log line. */
async function pageUrl(of: SpawnedProcess): Promise<string> {
  const line = await of.waitForLine((text) => text.includes('status page and /metrics at'), 30_000);
  return (JSON.parse(line) as { url: string }).url.replace(/\/$/, '');
}

type Cluster = FleetStatus['hosts'][number]['clusters'][number];

/** The cluster and the host listing it, per a status. */
function findCluster(status: FleetStatus, clusterId: number): { host: string; cluster: Cluster } | null {
  for (const host of status.hosts)
    for (const cluster of host.clusters) if (cluster.id === clusterId) return { host: host.id, cluster };
  return null;
}

async function metricValue(base: string, name: string, labels: string): Promise<number | null> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((each) => each.startsWith(`${name}{`) && each.includes(labels));
  return line === undefined ? null : Number(line.split(' ').pop());
}

function givenUp(hostId: string, clusterId: number): Record<string, unknown> | undefined {
  return rig.events.find(
    (event) =>
      event['type'] === 'cluster.failed' && event['hostId'] === hostId && event['clusterId'] === clusterId,
  );
}

/** Starts the crash loop of a running cluster: the marker makes every start crash, then SIGKILL. */
async function crashLoop(hostId: string, clusterId: number): Promise<void> {
  const proc = await rig.clusterProcess(hostId, clusterId);
  rig.setCrashing(hostId, clusterId, true);
  process.kill(proc.pid, 'SIGKILL');
  await waitFor(() => givenUp(hostId, clusterId) !== undefined, {
    description: `cluster.failed for cluster ${clusterId} on ${hostId}`,
    timeoutMs: 90_000,
  }).catch((error: unknown) => {
    throw new Error(`${String(error)}\n${rig.fleet.diagnostics()}`);
  });
}

async function statusWhere(
  description: string,
  timeoutMs: number,
  check: (status: FleetStatus) => boolean,
): Promise<FleetStatus> {
  let last: FleetStatus | undefined;
  try {
    await waitFor(
      async () => {
        last = await rig.fleet.status();
        return check(last);
      },
      { description, timeoutMs, intervalMs: 500 },
    );
  } catch (error) {
    throw new Error(`${String(error)}\nlast status: ${JSON.stringify(last)}\n${rig.fleet.diagnostics()}`);
  }
  return last!;
}

beforeAll(async () => {
  receiver = await Receiver.start();
  rig = await FaultRig.start({
    bot: 'failed-cluster',
    hosts: [{ id: 'alpha' }, { id: 'beta' }],
    shards: SHARDS,
    maxConcurrency: 2,
    guilds: 80,
    leaseMs: 6000,
    hostTimeoutMs: 3000,
  });
  master = startMaster();
  await master.waitForLine((line) => line.includes('elected leader'), 30_000);
  await rig.allReady('every shard ready after the first plan', 120_000);
}, 180_000);

afterAll(async () => {
  await rig?.stop();
  await receiver?.close();
}, 120_000);

describe('failed_cluster_action', () => {
  let victim: { id: number; shardIds: number[] };

  it(
    'move (default): a cluster that gives up on alpha moves to beta, which RESUMEs its sessions (0 identifies, never two live sessions of a shard); status, page and metrics show the move',
    { timeout: 240_000 },
    async () => {
      victim = clustersOfHost(await rig.fleet.status(), 'alpha')[0]!;
      const before = await rig.invariants();
      const epochBefore = (await rig.fleet.status()).epoch!;
      await crashLoop('alpha', victim.id);
      expect(givenUp('alpha', victim.id)).toMatchObject({ attempts: 3 });

      const status = await rig.allReady(`cluster ${victim.id} serving on beta`, 120_000, (now) => {
        const found = findCluster(now, victim.id);
        return found?.host === 'beta' && found.cluster.failure?.action === 'moved';
      });
      expect(findCluster(status, victim.id)?.cluster).toMatchObject({
        state: 'online',
        failure: { host: 'alpha', hosts: ['alpha'], attempts: 3, action: 'moved', movedTo: 'beta' },
      });
      expect(status.epoch).toBe(epochBefore + 1);
      // Alpha serves its other cluster still; nothing else moved.
      expect(clustersOfHost(status, 'alpha').map((cluster) => cluster.id)).not.toContain(victim.id);

      const after = await rig.invariants();
      expect(after.identifies, 'the moved shards RESUMEd rather than IDENTIFYing').toBe(before.identifies);
      expect(after.resumes - before.resumes).toBeGreaterThanOrEqual(victim.shardIds.length);
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
      expect(await rig.allShardsLive()).toBe(true);
      // The RESUMEs happened on beta, in the moved cluster's process.
      const resumed = rig.fleet
        .botLines('beta')
        .filter((line) => line['t'] === 'RESUMED')
        .map((line) => line['shardId']);
      for (const shard of victim.shardIds) expect(resumed).toContain(shard);

      const text = await rig.fleet.cli('status');
      expect(text.stdout).toContain(
        `CLUSTER ${victim.id} MOVED to beta: it gave up on alpha (3 failed starts`,
      );
      const base = await pageUrl(master);
      const api = (await (await fetch(`${base}/api/status`)).json()) as FleetStatus;
      expect(findCluster(api, victim.id)?.cluster.failure).toMatchObject({ action: 'moved', host: 'alpha' });
      expect(await metricValue(base, 'discluster_failed_clusters', 'action="moved"')).toBe(1);
      expect(await metricValue(base, 'discluster_failed_clusters', 'action="held"')).toBe(0);
      // The give-up itself was alerted; a move is not an outage, so no "held" alert.
      await waitFor(() => receiver.titles().includes(`Cluster ${victim.id} gave up on host alpha`), {
        description: 'the give-up alert',
        timeoutMs: 30_000,
      });
      expect(receiver.titles().some((title) => title.includes('held down'))).toBe(false);
    },
  );

  it(
    'the moved cluster gives up on beta too: MASTER holds its shards (no further move), alerts, and status, page and metrics say held',
    { timeout: 240_000 },
    async () => {
      const epochBefore = (await rig.fleet.status()).epoch!;
      await crashLoop('beta', victim.id);
      const status = await statusWhere(`cluster ${victim.id} held on beta`, 60_000, (now) => {
        const found = findCluster(now, victim.id);
        return (
          found?.host === 'beta' &&
          found.cluster.state === 'failed' &&
          found.cluster.failure?.action === 'held'
        );
      });
      expect(findCluster(status, victim.id)?.cluster.failure).toMatchObject({
        host: 'beta',
        hosts: ['alpha', 'beta'],
        action: 'held',
        movedTo: null,
        why: expect.stringContaining('gave up on alpha, then on beta'),
      });
      await waitFor(
        () =>
          receiver.titles().includes(`${victim.shardIds.length} shards of cluster ${victim.id} held down`),
        { description: 'the shards-held alert', timeoutMs: 30_000 },
      );
      const held = receiver.posts.find((post) => post.body.embeds[0].title.includes('held down'))!;
      expect(held.body.embeds[0].fields).toContainEqual(
        expect.objectContaining({ name: 'Host', value: 'beta' }),
      );

      // Held means held: no plan change, no start, no session for its shards.
      await sleep(5000);
      const later = await rig.fleet.status();
      expect(later.epoch).toBe(epochBefore);
      expect(findCluster(later, victim.id)?.host).toBe('beta');
      const live = liveSessionsByShard(await rig.fleet.state());
      for (const shard of victim.shardIds) expect(live.get(shard) ?? 0).toBe(0);
      for (let shard = 0; shard < SHARDS; shard++)
        if (!victim.shardIds.includes(shard)) expect(live.get(shard)).toBe(1);
      const text = await rig.fleet.cli('status');
      expect(text.stdout).toContain(`CLUSTER ${victim.id} HELD on beta, its shards down`);
      const base = await pageUrl(master);
      expect(await metricValue(base, 'discluster_failed_clusters', 'action="held"')).toBe(1);
      expect(await metricValue(base, 'discluster_failed_clusters', 'action="moved"')).toBe(0);
      const after = await rig.invariants();
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
    },
  );

  it(
    'a MASTER that takes over keeps the record (KV); `discluster rebalance` clears it and the held shards serve again',
    { timeout: 240_000 },
    async () => {
      // The next MASTER holds rather than moves: the last test checks that setting.
      master.kill('SIGKILL');
      await master.exited;
      master = startMaster({ DISCLUSTER_FAILED_CLUSTER_ACTION: 'hold' });
      await master.waitForLine((line) => line.includes('elected leader'), 60_000);
      const status = await statusWhere('the new MASTER to answer', 30_000, (now) => now.master.up);
      expect(findCluster(status, victim.id)?.cluster.failure).toMatchObject({ action: 'held', host: 'beta' });

      rig.setCrashing('alpha', victim.id, false);
      rig.setCrashing('beta', victim.id, false);
      const rebalance = await rig.fleet.cli('rebalance');
      expect(rebalance.code, rebalance.stderr).toBe(0);
      const served = await rig.allReady('every shard ready after the rebalance', 120_000, (now) =>
        now.hosts.every((host) => host.clusters.every((cluster) => !cluster.failure)),
      );
      // Planned again under a new cluster id (its CONTROL starts it afresh).
      expect(findCluster(served, victim.id)).toBeNull();
      const after = await rig.invariants();
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
    },
  );

  it(
    'hold: a cluster that gives up stays where it is, down, with the reason shown and alerted',
    { timeout: 240_000 },
    async () => {
      const before = await rig.fleet.status();
      const second = clustersOfHost(before, 'alpha')[0]!;
      await crashLoop('alpha', second.id);
      const status = await statusWhere(`cluster ${second.id} held on alpha`, 60_000, (now) => {
        const found = findCluster(now, second.id);
        return found?.host === 'alpha' && found.cluster.failure?.action === 'held';
      });
      expect(findCluster(status, second.id)?.cluster).toMatchObject({
        state: 'failed',
        failure: {
          host: 'alpha',
          hosts: ['alpha'],
          why: expect.stringContaining('failed_cluster_action is hold'),
        },
      });
      expect(status.epoch).toBe(before.epoch);
      await waitFor(
        () =>
          receiver.titles().includes(`${second.shardIds.length} shards of cluster ${second.id} held down`),
        { description: 'the shards-held alert', timeoutMs: 30_000 },
      );
      await sleep(3000);
      const live = liveSessionsByShard(await rig.fleet.state());
      for (const shard of second.shardIds) expect(live.get(shard) ?? 0).toBe(0);
      expect((await rig.fleet.status()).epoch).toBe(before.epoch);
      const after = await rig.invariants();
      expectFleetInvariants(after);
      expect(after.maxLivePerShard).toBe(1);
    },
  );
});
