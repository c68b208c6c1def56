import type { NatsConnection } from '@nats-io/transport-node';
import { ErrorCode, ipcSubjects, isDisclusterError } from 'discluster-protocol';
import { startNatsServer, waitFor, type NatsServerHandle } from 'discluster-testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ClusterIpc, type ClusterIpcOptions } from '../src/ipc/ClusterIpc';
import { Cleanup, connectNats, uniqueBot } from './helpers';

let server: NatsServerHandle;
const cleanup = new Cleanup();

beforeAll(async () => {
  server = await startNatsServer({ jetstream: false });
});
afterEach(async () => {
  await cleanup.run();
});
afterAll(async () => {
  await server?.stop();
});

interface TestCluster {
  readonly ipc: ClusterIpc;
  readonly nc: NatsConnection;
  readonly errors: Error[];
}

/** One cluster "process": its own NATS connection and IPC. */
async function startCluster(
  bot: string,
  clusterId: number,
  plan: () => readonly number[],
  extra: Partial<ClusterIpcOptions> = {},
): Promise<TestCluster> {
  const nc = await connectNats(server.url, `cluster-${clusterId}`);
  const errors: Error[] = [];
  const ipc = new ClusterIpc({
    nc,
    bot,
    clusterId,
    clusterIds: plan,
    onError: (e) => errors.push(e),
    ...extra,
  });
  await ipc.start();
  cleanup.add(async () => {
    ipc.close();
    await nc.close();
  });
  return { ipc, nc, errors };
}

async function startFleet(count: number, bot = uniqueBot('ipc')): Promise<TestCluster[]> {
  const plan = () => Array.from({ length: count }, (_, i) => i);
  return Promise.all(Array.from({ length: count }, (_, i) => startCluster(bot, i, plan)));
}

describe('ClusterIpc events', () => {
  it('emit reaches every cluster, the sender included, with the sender id', async () => {
    const fleet = await startFleet(3);
    const received: Array<[number, unknown, number]> = [];
    fleet.forEach((cluster, id) => cluster.ipc.on('hello', (data, from) => received.push([id, data, from])));
    fleet[1]!.ipc.emit('hello', { n: 1 });
    await waitFor(() => received.length === 3, { description: 'three deliveries' });
    expect(received.map(([id]) => id).sort()).toEqual([0, 1, 2]);
    expect(received.every(([, data, from]) => from === 1 && (data as { n: number }).n === 1)).toBe(true);
  });

  it('emitTo reaches only its target', async () => {
    const fleet = await startFleet(3);
    const received: number[] = [];
    fleet.forEach((cluster, id) => cluster.ipc.on('only', () => received.push(id)));
    fleet[0]!.ipc.emitTo(2, 'only', null);
    // The broadcast marker is published after emitTo on the same connection, so once every
    // cluster has it, the targeted event has had every chance to arrive.
    const markers = new Set<number>();
    fleet.forEach((cluster, id) => cluster.ipc.on('marker', () => markers.add(id)));
    fleet[0]!.ipc.emit('marker');
    await waitFor(() => markers.size === 3, { description: 'markers' });
    expect(received).toEqual([2]);
  });

  it('keeps bots apart on one NATS', async () => {
    const [a] = await startFleet(1, uniqueBot('a'));
    const [b] = await startFleet(1, uniqueBot('b'));
    const seen: string[] = [];
    a!.ipc.on('x', () => seen.push('a'));
    b!.ipc.on('x', () => seen.push('b'));
    a!.ipc.emit('x');
    await waitFor(() => seen.length >= 1, { description: 'a gets its own event' });
    b!.ipc.emit('x');
    await waitFor(() => seen.length >= 2, { description: 'b gets its own event' });
    expect(seen).toEqual(['a', 'b']);
  });

  it('drops malformed events with an error and keeps working; a throwing listener does not stop others', async () => {
    const bot = uniqueBot('bad');
    const [cluster] = await startFleet(1, bot);
    const subjects = ipcSubjects(bot);
    const got: unknown[] = [];
    cluster!.ipc.on('ok', () => {
      throw new Error('listener bug');
    });
    cluster!.ipc.on('ok', (data) => got.push(data));
    for (const junk of [
      'not json',
      '{"v":1}',
      '{"v":2,"name":"ok","from":0,"data":1}',
      '{"v":1,"name":"","from":0}',
      '[]',
    ]) {
      cluster!.nc.publish(subjects.broadcast, junk);
    }
    cluster!.ipc.emit('ok', 42);
    await waitFor(() => got.length === 1, { description: 'the good event' });
    expect(got).toEqual([42]);
    expect(cluster!.errors.filter((e) => isDisclusterError(e, ErrorCode.InvalidMessage))).toHaveLength(5);
    expect(cluster!.errors.some((e) => e.message.includes('listener'))).toBe(true);
  });
});

describe('ClusterIpc requests', () => {
  it('request resolves with the handler value (sync or async)', async () => {
    const fleet = await startFleet(2);
    fleet[1]!.ipc.handle('double', (data) => (data as number) * 2);
    fleet[1]!.ipc.handle('later', async (data, from) => ({ data, from }));
    await expect(fleet[0]!.ipc.request(1, 'double', 21)).resolves.toBe(42);
    await expect(fleet[0]!.ipc.request(1, 'later', 'x')).resolves.toEqual({ data: 'x', from: 0 });
  });

  it('reports handler failures, missing handlers and unreachable clusters with stable codes', async () => {
    const fleet = await startFleet(2);
    fleet[1]!.ipc.handle('boom', () => {
      throw new Error('kaput');
    });
    const failed = await fleet[0]!.ipc.request(1, 'boom').catch((e: unknown) => e);
    expect(isDisclusterError(failed, ErrorCode.IpcHandlerFailed)).toBe(true);
    expect((failed as Error).message).toContain('kaput');
    const missing = await fleet[0]!.ipc.request(1, 'nothing-here').catch((e: unknown) => e);
    expect(isDisclusterError(missing, ErrorCode.IpcNoHandler)).toBe(true);
    const unreachable = await fleet[0]!.ipc
      .request(7, 'double', 1, { timeoutMs: 30_000 })
      .catch((e: unknown) => e);
    // No responders is reported by NATS at once, not at the 30 s timeout.
    expect(isDisclusterError(unreachable, ErrorCode.IpcClusterUnreachable)).toBe(true);
  });

  it('times out a cluster that never answers', async () => {
    const fleet = await startFleet(2);
    fleet[1]!.ipc.handle('hang', () => new Promise(() => {}));
    const error = await fleet[0]!.ipc.request(1, 'hang', null, { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(isDisclusterError(error, ErrorCode.IpcTimeout)).toBe(true);
  });

  it('requestAll answers once per planned cluster, with a dead and a hung cluster among them', async () => {
    const bot = uniqueBot('all');
    const plan = () => [0, 1, 2, 3];
    const clusters = await Promise.all([0, 1, 2, 3].map((id) => startCluster(bot, id, plan)));
    clusters.forEach((cluster, id) => cluster.ipc.handle('who', () => `cluster-${id}`));
    clusters[3]!.ipc.handle('who', () => new Promise(() => {}));
    // Cluster 2 dies: its connection closes, as when its process is killed.
    clusters[2]!.ipc.close();
    await clusters[2]!.nc.close();
    // The server drops a closed client's subscriptions a moment later; until then a request to it
    // times out instead of failing fast. Wait for the fleet's view to settle before asking everyone.
    await waitFor(
      async () =>
        clusters[0]!.ipc.request(2, 'who', null, { timeoutMs: 200 }).then(
          () => false,
          (error: unknown) => isDisclusterError(error, ErrorCode.IpcClusterUnreachable),
        ),
      { description: 'cluster 2 gone from NATS' },
    );
    const results = await clusters[0]!.ipc.requestAll('who', null, { timeoutMs: 500 });
    expect(results.map((r) => r.clusterId)).toEqual([0, 1, 2, 3]);
    expect(results[0]).toMatchObject({ ok: true, value: 'cluster-0' });
    expect(results[1]).toMatchObject({ ok: true, value: 'cluster-1' });
    expect(results[2]!.ok === false && results[2]!.error.code).toBe(ErrorCode.IpcClusterUnreachable);
    expect(results[3]!.ok === false && results[3]!.error.code).toBe(ErrorCode.IpcTimeout);
  });

  it('rejects oversize and non-JSON payloads before sending, with a clear error', async () => {
    const bot = uniqueBot('size');
    const plan = () => [0, 1];
    const [sender, receiver] = await Promise.all([
      startCluster(bot, 0, plan, { maxPayloadBytes: 1024 }),
      startCluster(bot, 1, plan),
    ]);
    receiver!.ipc.handle('big', () => 'x'.repeat(10));
    const big = 'x'.repeat(2000);
    expect(() => sender!.ipc.emit('big', big)).toThrow(/limit is 1024/);
    const rejected = await sender!.ipc.request(1, 'big', big).catch((e: unknown) => e);
    expect(isDisclusterError(rejected, ErrorCode.IpcPayloadTooLarge)).toBe(true);
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(() => sender!.ipc.emitTo(1, 'big', cyclic)).toThrow(/JSON/);
    expect(() => sender!.ipc.emit('', 1)).toThrow(/names must be/);
    // A reply over the receiver's limit comes back as an error instead of a broken message.
    const small = await startCluster(bot, 2, plan, { maxPayloadBytes: 200 });
    small.ipc.handle('huge-reply', () => 'y'.repeat(1000));
    const tooBig = await sender!.ipc.request(2, 'huge-reply').catch((e: unknown) => e);
    expect(isDisclusterError(tooBig, ErrorCode.IpcPayloadTooLarge)).toBe(true);
  });

  it('concurrent requests to several clusters each get their own answer; a thenable handler is awaited', async () => {
    const fleet = await startFleet(3);
    fleet[1]!.ipc.handle('id', (data) => ({ data, by: 1 }));
    fleet[2]!.ipc.handle('id', (data) => ({
      then: (resolve: (value: unknown) => void) => resolve({ data, by: 2 }),
    }));
    const answers = await Promise.all(
      Array.from({ length: 300 }, (_, i) => fleet[0]!.ipc.request(1 + (i % 2), 'id', i)),
    );
    answers.forEach((answer, i) => expect(answer).toEqual({ data: i, by: 1 + (i % 2) }));
    const all = await Promise.all(Array.from({ length: 20 }, () => fleet[0]!.ipc.requestAll('id', 'x')));
    for (const results of all) {
      expect(results.map((r) => r.clusterId)).toEqual([0, 1, 2]);
      expect(results[0]!.ok).toBe(false);
      expect(results.slice(1)).toEqual([
        { clusterId: 1, ok: true, value: { data: 'x', by: 1 } },
        { clusterId: 2, ok: true, value: { data: 'x', by: 2 } },
      ]);
    }
  });

  it('a request waiting when its connection closes rejects with NATS_CLOSED, not at its timeout', async () => {
    const fleet = await startFleet(2);
    fleet[1]!.ipc.handle('hang', () => new Promise(() => {}));
    const waiting = fleet[0]!.ipc.request(1, 'hang', null, { timeoutMs: 600_000 }).catch((e: unknown) => e);
    await fleet[0]!.nc.flush();
    await fleet[0]!.nc.close();
    expect(isDisclusterError(await waiting, ErrorCode.NatsClosed)).toBe(true);
    const after = await fleet[0]!.ipc
      .request(1, 'hang', null, { timeoutMs: 600_000 })
      .catch((e: unknown) => e);
    expect(isDisclusterError(after, ErrorCode.NatsClosed)).toBe(true);
  });

  it('answers a malformed request with an error instead of crashing', async () => {
    const bot = uniqueBot('badreq');
    const [cluster] = await startFleet(1, bot);
    cluster!.ipc.handle('x', () => 1);
    const reply = await cluster!.nc.request(ipcSubjects(bot).requests(0), '{"v":1,"name":5}', {
      timeout: 5000,
    });
    expect(reply.json()).toMatchObject({ ok: false, error: { code: ErrorCode.InvalidMessage } });
    await expect(cluster!.ipc.request(0, 'x')).resolves.toBe(1);
  });
});
