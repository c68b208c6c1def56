import fs from 'node:fs';
import { Kvm, type KV } from '@nats-io/kv';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsCluster, waitFor, type NatsClusterHandle } from '../src/index.js';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// Liveness bound for failovers on a noisy shared machine, not a performance assertion.
const FAILOVER_BOUND_MS = 60_000;

describe('startNatsCluster (3 nodes)', () => {
  let cluster: NatsClusterHandle;
  let nc: NatsConnection;
  let kv: KV;

  beforeAll(async () => {
    cluster = await startNatsCluster({ nodes: 3 });
    nc = await connect({ servers: [...cluster.urls], maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    kv = await new Kvm(jetstream(nc, { timeout: 10_000 })).create('cluster_test', {
      replicas: 3,
      history: 1,
    });
  }, 120_000);

  afterAll(async () => {
    await nc?.close();
    await cluster?.stop();
  });

  it('offers one loopback client URL per node and agrees on a meta leader', async () => {
    expect(cluster.urls).toHaveLength(3);
    for (const url of cluster.urls) expect(url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    expect(new Set(cluster.urls).size).toBe(3);
    expect(cluster.nodes.map((node) => node.name)).toEqual(['node0', 'node1', 'node2']);
    expect(await cluster.metaLeader()).toBeTypeOf('number');
  });

  it('serves a KV bucket with 3 replicas and reports its stream leader', async () => {
    await kv.put('greeting', 'hello');
    expect((await kv.get('greeting'))?.string()).toBe('hello');
    const status = await kv.status();
    expect(status.replicas).toBe(3);
    let leader: number | undefined;
    await waitFor(async () => (leader = await cluster.streamLeader('KV_cluster_test')) !== undefined, {
      description: 'a stream leader for KV_cluster_test',
      timeoutMs: FAILOVER_BOUND_MS,
    });
    expect(leader).toBeGreaterThanOrEqual(0);
  });

  it('elects another meta leader when the leader is killed, and the restarted node rejoins', async () => {
    const first = await cluster.waitForMetaLeader();
    const killedPid = cluster.nodes[first]!.pid;
    await waitFor(() => cluster.caughtUp(first), {
      description: 'every node a current replica before the kill',
      timeoutMs: FAILOVER_BOUND_MS,
    });
    await cluster.killNode(first);
    expect(cluster.nodes[first]!.running).toBe(false);
    expect(await cluster.caughtUp(first)).toBe(false);
    expect(isAlive(killedPid)).toBe(false);

    let next: number | undefined;
    await waitFor(async () => (next = await cluster.metaLeader()) !== undefined && next !== first, {
      description: 'a new meta leader after killing the old one',
      timeoutMs: FAILOVER_BOUND_MS,
      intervalMs: 200,
    });
    // Two of three replicas are a quorum: the bucket keeps taking writes.
    await waitFor(
      async () => {
        await kv.put('greeting', 'after failover');
        return true;
      },
      { description: 'a KV write after the failover', timeoutMs: FAILOVER_BOUND_MS, intervalMs: 200 },
    );

    await cluster.restartNode(first);
    expect(cluster.nodes[first]!.running).toBe(true);
    expect(cluster.nodes[first]!.pid).not.toBe(killedPid);
    // Rejoined: every node, the restarted one included, agrees on the leader again.
    await cluster.waitForMetaLeader();
    await waitFor(() => cluster.caughtUp(first), {
      description: 'the restarted node a current replica of the bucket again',
      timeoutMs: FAILOVER_BOUND_MS,
    });
    // And it caught up with the write made while it was down.
    const reader = await connect({ servers: cluster.nodes[first]!.url });
    try {
      await waitFor(
        async () => {
          const local = await new Kvm(jetstream(reader, { timeout: 5_000 })).open('cluster_test');
          return (await local.get('greeting'))?.string() === 'after failover';
        },
        { description: 'the restarted node serving the latest value', timeoutMs: FAILOVER_BOUND_MS },
      );
    } finally {
      await reader.close();
    }
  });

  it('stopNode stops a node gracefully and keeps its store', async () => {
    const index = 2;
    const pid = cluster.nodes[index]!.pid;
    await cluster.stopNode(index);
    expect(isAlive(pid)).toBe(false);
    expect(fs.existsSync(cluster.nodes[index]!.storeDir)).toBe(true);
    await cluster.restartNode(index);
    await cluster.waitForMetaLeader();
  });
});

describe('startNatsCluster stop()', () => {
  it('leaves no process and no store behind', async () => {
    const cluster = await startNatsCluster({ nodes: 3 });
    const pids = cluster.nodes.map((node) => node.pid);
    const stores = cluster.nodes.map((node) => node.storeDir);
    await cluster.killNode(1);
    await cluster.stop();
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    for (const store of stores) expect(fs.existsSync(store)).toBe(false);
    await cluster.stop(); // idempotent
  }, 120_000);
});
