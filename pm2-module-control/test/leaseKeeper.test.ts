import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { connect, nuid, type NatsConnection } from '@nats-io/transport-node';
import {
  ErrorCode,
  ShardLeaseRecordSchema,
  decodeRecord,
  leaseBucket,
  leaseKey,
  type ShardLeaseRecord,
} from 'discluster-protocol';
import {
  startNatsServer,
  startTcpProxy,
  waitFor,
  type NatsServerHandle,
  type TcpProxyHandle,
} from 'discluster-testing';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LEASE_TTL_MS, LeaseKeeper } from '../src/leases/leaseKeeper';
import type { LeaseClaim, LeaseHolder } from '../src/leases/shardLeases';

/**
 * LeaseKeeper against a real nats-server with JetStream (2.9: bucket TTL, no per-key TTL). Each
 * test uses its own bot namespace, so its own bucket. MASTER's part (creating the bucket with its
 * `lease_ms`) is played by the test.
 */

let nats: NatsServerHandle;
const connections: NatsConnection[] = [];
const keepers: LeaseKeeper[] = [];
const proxies: TcpProxyHandle[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
});
afterEach(async () => {
  for (const keeper of keepers.splice(0)) keeper.close();
  for (const nc of connections.splice(0)) await nc.close().catch(() => undefined);
  for (const proxy of proxies.splice(0)) await proxy.close();
});
afterAll(async () => {
  await nats?.stop();
});

const uniqueBot = () => `lk-${nuid.next().slice(-10)}`;

async function natsConnection(url = nats.url): Promise<NatsConnection> {
  const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  connections.push(nc);
  return nc;
}

/**
 * MASTER's side, after a restart with another `lease_ms`: it sets the bucket's TTL (stream
 * max_age). A shorter one needs the duplicate window (the old TTL, for a KV bucket) cut to it too,
 * or the server refuses the update.
 */
async function masterChangesLeaseTime(bot: string, ttlMs: number): Promise<void> {
  const jsm = await jetstreamManager(await natsConnection());
  const stream = `KV_${leaseBucket(bot)}`;
  const { config } = await jsm.streams.info(stream);
  const nanos = ttlMs * 1_000_000;
  await jsm.streams.update(stream, {
    max_age: nanos,
    duplicate_window: Math.min(config.duplicate_window, nanos),
  });
}

/** MASTER's side: the bucket as it creates it, with its lease time. */
async function masterBucket(bot: string, ttlMs: number): Promise<KV> {
  const nc = await natsConnection();
  return new Kvm(jetstream(nc)).create(leaseBucket(bot), { history: 1, ttl: ttlMs });
}

interface Host {
  readonly keeper: LeaseKeeper;
  readonly fences: number[];
  readonly lost: [number, LeaseHolder][];
  /** Each report of clusters whose leases were all renewed in a round (what gets a keepalive): one cluster each. */
  readonly renewed: number[][];
  /** With each report: when its oldest renewal request was sent, wall clock (the keepalive's `renewedAt`), and when it was reported. */
  readonly renewedAt: { renewedAt: number; reportedAt: number }[];
  /** The fence time after each change of the lease time (CONTROL tells its clusters). */
  readonly timesChanged: number[];
  readonly logs: Record<string, unknown>[];
}

async function startHost(
  bot: string,
  hostId: string,
  options: { url?: string; instanceId?: string; clock?: () => number; nc?: NatsConnection } = {},
): Promise<Host> {
  const logs: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) },
  );
  const fences: number[] = [];
  const lost: [number, LeaseHolder][] = [];
  const renewed: number[][] = [];
  const renewedAt: { renewedAt: number; reportedAt: number }[] = [];
  const timesChanged: number[] = [];
  const keeper = await LeaseKeeper.open(options.nc ?? (await natsConnection(options.url)), {
    bot,
    hostId,
    instanceId: options.instanceId ?? `inst-${nuid.next()}`,
    logger,
    onFence: (clusterId) => fences.push(clusterId),
    onLost: (clusterId, holder) => lost.push([clusterId, holder]),
    onRenewed: (clusterIds, at) => {
      renewed.push([...clusterIds]);
      renewedAt.push({ renewedAt: at, reportedAt: Date.now() });
    },
    onTimesChanged: (times) => timesChanged.push(times.fenceAfterMs),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  keepers.push(keeper);
  return { keeper, fences, lost, renewed, renewedAt, timesChanged, logs };
}

async function holderOf(kv: KV, shardCount: number, shardId: number): Promise<ShardLeaseRecord | null> {
  const entry = await kv.get(leaseKey(shardCount, shardId));
  if (!entry || entry.operation !== 'PUT') return null;
  const decoded = decodeRecord(ShardLeaseRecordSchema, entry.value);
  return decoded.ok ? decoded.value : null;
}

const claim = (clusterId: number, shardIds: number[], epoch = 1): LeaseClaim => ({
  clusterId,
  shardIds,
  shardCount: 8,
  epoch,
});
const acquireNow = (host: Host, what: LeaseClaim, whenHeld: 'wait' | 'fail' = 'wait') =>
  host.keeper.acquire(what, { whenHeld, signal: new AbortController().signal });

/**
 * A connection whose event loop stalls (busy, as a process starved of CPU looks to itself) for
 * `ms` right after it sent the next KV write, i.e. the next renewal round: NATS answers meanwhile,
 * and the answers wait unread in the socket until the loop turns again.
 */
async function stallingConnection(): Promise<{
  nc: NatsConnection;
  stallAfterNextWrite: (ms: number) => Promise<void>;
}> {
  const nc = await natsConnection();
  const request = nc.request.bind(nc);
  let armed: { ms: number; done: () => void } | null = null;
  nc.request = (subject, payload, options) => {
    const reply = request(subject, payload, options);
    const stall = armed;
    if (stall && subject.startsWith('$KV.')) {
      armed = null;
      // After the round's other writes went out too (they are sent in one synchronous sweep) and
      // were flushed to the socket (a microtask queued before this one).
      queueMicrotask(() => {
        const until = performance.now() + stall.ms;
        while (performance.now() < until) {
          // the stall
        }
        stall.done();
      });
    }
    return reply;
  };
  return {
    nc,
    stallAfterNextWrite: (ms) => new Promise<void>((done) => (armed = { ms, done })),
  };
}

describe('LeaseKeeper', () => {
  it('creates the bucket when MASTER has not, and otherwise uses the TTL MASTER chose', async () => {
    const fresh = await startHost(uniqueBot(), 'host-a');
    expect(fresh.keeper.ttlMs).toBe(DEFAULT_LEASE_TTL_MS);
    expect(fresh.keeper.fenceAfterMs).toBe(DEFAULT_LEASE_TTL_MS / 2);
    const bot = uniqueBot();
    await masterBucket(bot, 3_000);
    const host = await startHost(bot, 'host-a');
    expect(host.keeper.ttlMs).toBe(3_000);
    expect(host.keeper.fenceAfterMs).toBe(1_500);
  });

  it('refuses a lease bucket without a TTL (leases of a dead host would never expire)', async () => {
    const bot = uniqueBot();
    await masterBucket(bot, 0);
    await expect(startHost(bot, 'host-a')).rejects.toMatchObject({ code: ErrorCode.BucketConfigMismatch });
  });

  it('takes free shards and renews them past the TTL', async () => {
    const bot = uniqueBot();
    const kv = await masterBucket(bot, 1_200);
    const host = await startHost(bot, 'host-a');
    expect(await acquireNow(host, claim(3, [0, 1], 7))).toEqual({ kind: 'acquired' });
    const first = await kv.get(leaseKey(8, 0));
    expect(await holderOf(kv, 8, 0)).toMatchObject({
      v: 1,
      shardId: 0,
      shardCount: 8,
      hostId: 'host-a',
      clusterId: 3,
      epoch: 7,
    });
    // Three lease times later the keys are still there, renewed (newer revisions), never fenced.
    await new Promise((resolve) => setTimeout(resolve, 3_600));
    const later = await kv.get(leaseKey(8, 0));
    expect(later?.revision).toBeGreaterThan(first!.revision);
    expect((await holderOf(kv, 8, 1))?.hostId).toBe('host-a');
    expect(host.fences).toEqual([]);
  });

  it("waits out another host's lease until it is released, logging the holder once", async () => {
    const bot = uniqueBot();
    const kv = await masterBucket(bot, 5_000);
    const a = await startHost(bot, 'host-a');
    const b = await startHost(bot, 'host-b');
    await acquireNow(a, claim(0, [0, 1]));
    let blocked = 0;
    let outcome: unknown;
    const waiting = b.keeper
      .acquire(claim(4, [2, 1]), {
        whenHeld: 'wait',
        signal: new AbortController().signal,
        onBlocked: () => blocked++,
      })
      .then((result) => (outcome = result));
    await waitFor(() => blocked === 1, { description: 'host-b blocked' });
    // It took what was free, and keeps polling for the rest.
    expect((await holderOf(kv, 8, 2))?.hostId).toBe('host-b');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(outcome).toBeUndefined();
    expect((await holderOf(kv, 8, 1))?.hostId).toBe('host-a');
    await a.keeper.release(0);
    await waiting;
    expect(outcome).toEqual({ kind: 'acquired' });
    expect(blocked).toBe(1);
    expect((await holderOf(kv, 8, 1))?.hostId).toBe('host-b');
    expect(await holderOf(kv, 8, 0)).toBeNull();
    const waits = b.logs.filter((line) => String(line['msg']).includes('is leased by host host-a'));
    expect(waits).toHaveLength(1);
  });

  it('a host that stops renewing loses its shards to a waiting host only after the TTL', async () => {
    const bot = uniqueBot();
    const kv = await masterBucket(bot, 2_000);
    const a = await startHost(bot, 'host-a');
    const b = await startHost(bot, 'host-b');
    await acquireNow(a, claim(0, [5]));
    // CONTROL A restarting: renewals stop, the lease stays until the bucket TTL ends it.
    a.keeper.close();
    let blocked = false;
    const taken = b.keeper.acquire(claim(1, [5]), {
      whenHeld: 'wait',
      signal: new AbortController().signal,
      onBlocked: () => (blocked = true),
    });
    await waitFor(() => blocked, { description: 'host-b waits' });
    expect((await holderOf(kv, 8, 5))?.hostId).toBe('host-a');
    expect(await taken).toEqual({ kind: 'acquired' });
    expect((await holderOf(kv, 8, 5))?.hostId).toBe('host-b');
  });

  it('a restarted CONTROL of the same host takes its leases over (adopt), another host is refused at once', async () => {
    const bot = uniqueBot();
    const kv = await masterBucket(bot, 5_000);
    const before = await startHost(bot, 'host-a', { instanceId: 'boot-one-xyz' });
    await acquireNow(before, claim(2, [3]));
    before.keeper.close();
    const after = await startHost(bot, 'host-a', { instanceId: 'boot-two-xyz' });
    expect(await acquireNow(after, claim(2, [3]), 'fail')).toEqual({ kind: 'acquired' });
    expect(await holderOf(kv, 8, 3)).toMatchObject({ hostId: 'host-a', instanceId: 'boot-two-xyz' });
    const other = await startHost(bot, 'host-b');
    expect(await acquireNow(other, claim(9, [3]), 'fail')).toEqual({
      kind: 'held',
      holder: { shardId: 3, hostId: 'host-a', clusterId: 2 },
    });
  });

  it('a lease overwritten by another host is reported lost, once, with the new holder', async () => {
    const bot = uniqueBot();
    const kv = await masterBucket(bot, 6_000);
    const a = await startHost(bot, 'host-a');
    await acquireNow(a, claim(0, [0, 1]));
    const intruder: ShardLeaseRecord = {
      v: 1,
      shardId: 1,
      shardCount: 8,
      hostId: 'host-b',
      instanceId: 'intruder-boot',
      clusterId: 6,
      epoch: 9,
      renewedAt: Date.now(),
    };
    await kv.put(leaseKey(8, 1), JSON.stringify(intruder));
    await waitFor(() => a.lost.length > 0, { description: 'lease reported lost', timeoutMs: 5_000 });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(a.lost).toEqual([[0, { shardId: 1, hostId: 'host-b', clusterId: 6 }]]);
    // Releasing the cluster frees what is still ours and leaves the other host's lease alone.
    await a.keeper.release(0);
    expect(await holderOf(kv, 8, 0)).toBeNull();
    expect((await holderOf(kv, 8, 1))?.hostId).toBe('host-b');
  });

  it('fences after half the lease time without NATS, and confirms once NATS answers again', async () => {
    const bot = uniqueBot();
    const kv = await masterBucket(bot, 3_000);
    const proxy = await startTcpProxy(nats.port);
    proxies.push(proxy);
    const a = await startHost(bot, 'host-a', { url: proxy.url('nats') });
    await acquireNow(a, claim(0, [0, 1]));
    proxy.cut('blackhole');
    await waitFor(() => a.fences.length > 0, { description: 'fence', timeoutMs: 10_000 });
    // Fenced while the lease is still there: before another host could take the shard.
    expect((await holderOf(kv, 8, 0))?.hostId).toBe('host-a');
    expect(a.fences).toEqual([0]);
    expect(await a.keeper.confirm(0)).toBe('unknown');
    proxy.restore();
    await waitFor(async () => (await a.keeper.confirm(0)) === 'confirmed', {
      description: 'confirmed after NATS is back',
      timeoutMs: 15_000,
    });
    expect((await holderOf(kv, 8, 0))?.hostId).toBe('host-a');
    // Fenced once per outage; a later outage fences again.
    expect(a.fences).toEqual([0]);
  });

  it('NATS gone for 7 s (two renewal rounds) costs no fence: renewals resume as soon as it returns', async () => {
    // TTL 20 s: renewals every 3.3 s, each request bounded by 2 s, a failed round retried after 1 s,
    // fence at 10 s. NATS is unreachable for 7 s right after a renewal; renewing must resume before
    // the fence time (with the old timing, renew every TTL/4 with 5 s requests and a skipped tick
    // while a round hung, one lost request already reached it).
    const bot = uniqueBot();
    await masterBucket(bot, 20_000);
    const proxy = await startTcpProxy(nats.port);
    proxies.push(proxy);
    const a = await startHost(bot, 'host-a', { url: proxy.url('nats') });
    expect(await acquireNow(a, claim(0, [0, 1]))).toEqual({ kind: 'acquired' });
    await waitFor(() => a.renewed.length >= 1, { description: 'a renewal round', timeoutMs: 10_000 });
    const rounds = a.renewed.length;
    proxy.cut('reset');
    await new Promise((resolve) => setTimeout(resolve, 7_000));
    expect(a.renewed).toHaveLength(rounds);
    proxy.restore();
    await waitFor(() => a.renewed.length > rounds, {
      description: 'a renewal after NATS returned',
      timeoutMs: 10_000,
    });
    expect(a.fences).toEqual([]);
  });

  it('reports each round the clusters whose leases were all renewed: not one waiting for a lease, none while cut off', async () => {
    const bot = uniqueBot();
    await masterBucket(bot, 2_000);
    const proxy = await startTcpProxy(nats.port);
    proxies.push(proxy);
    const a = await startHost(bot, 'host-a', { url: proxy.url('nats') });
    const b = await startHost(bot, 'host-b');
    expect(await acquireNow(b, claim(5, [4]))).toEqual({ kind: 'acquired' });
    expect(await acquireNow(a, claim(0, [0, 1]))).toEqual({ kind: 'acquired' });
    // Cluster 1 holds shard 2 and waits for shard 4 (host-b's): not all its leases are held.
    const waiting = new AbortController();
    void a.keeper.acquire(claim(1, [2, 4]), { whenHeld: 'wait', signal: waiting.signal });
    await waitFor(() => a.renewed.length >= 3, { description: 'three renewal rounds', timeoutMs: 10_000 });
    expect(a.renewed.every((round) => round.join() === '0')).toBe(true);
    // Each report says when its renewal was sent: before the report, within half the fence time.
    for (const { renewedAt, reportedAt } of a.renewedAt) {
      expect(renewedAt).toBeLessThanOrEqual(reportedAt);
      expect(reportedAt - renewedAt).toBeLessThanOrEqual(a.keeper.fenceAfterMs / 2 + 1);
    }
    waiting.abort();
    // Cut off: no round succeeds, so no cluster is reported (it fences instead).
    proxy.cut('blackhole');
    await waitFor(() => a.fences.length > 0, { description: 'fence', timeoutMs: 10_000 });
    const rounds = a.renewed.length;
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // three more renewal periods
    expect(a.renewed).toHaveLength(rounds);
    proxy.restore();
    await waitFor(() => a.renewed.length > rounds, { description: 'renewals again', timeoutMs: 15_000 });
    expect(a.renewed.at(-1)).toContain(0);
  });

  it('a restart while the leases cannot be renewed waits until NATS vouches for them again', async () => {
    const bot = uniqueBot();
    await masterBucket(bot, 3_000);
    const proxy = await startTcpProxy(nats.port);
    proxies.push(proxy);
    const a = await startHost(bot, 'host-a', { url: proxy.url('nats') });
    // A restart with fresh leases asks nothing.
    await acquireNow(a, claim(0, [0]));
    expect(await acquireNow(a, claim(0, [0], 2))).toEqual({ kind: 'acquired' });
    proxy.cut('blackhole');
    await waitFor(() => a.fences.length > 0, { description: 'fence', timeoutMs: 10_000 });
    let blocked = false;
    let outcome: unknown;
    void a.keeper
      .acquire(claim(0, [0], 3), {
        whenHeld: 'wait',
        signal: new AbortController().signal,
        onBlocked: () => (blocked = true),
      })
      .then((result) => (outcome = result));
    await waitFor(() => blocked, { description: 'the restart waits', timeoutMs: 10_000 });
    expect(outcome).toBeUndefined();
    proxy.restore();
    await waitFor(() => outcome !== undefined, { description: 'the restart goes on', timeoutMs: 15_000 });
    expect(outcome).toEqual({ kind: 'acquired' });
  });

  it('refuses to confirm a shard another host took while this one was cut off', async () => {
    const bot = uniqueBot();
    const kv = await masterBucket(bot, 1_500);
    const proxy = await startTcpProxy(nats.port);
    proxies.push(proxy);
    const a = await startHost(bot, 'host-a', { url: proxy.url('nats') });
    const b = await startHost(bot, 'host-b');
    await acquireNow(a, claim(0, [4]));
    proxy.cut('blackhole');
    await waitFor(() => a.fences.length > 0, { description: 'fence', timeoutMs: 10_000 });
    // The lease expires and host-b takes the shard.
    expect(await acquireNow(b, claim(1, [4]))).toEqual({ kind: 'acquired' });
    proxy.restore();
    await waitFor(async () => (await a.keeper.confirm(0)) === 'refused', {
      description: 'confirm refused',
      timeoutMs: 15_000,
    });
    expect((await holderOf(kv, 8, 4))?.hostId).toBe('host-b');
    expect(a.lost).toEqual([[0, { shardId: 4, hostId: 'host-b', clusterId: 1 }]]);
  });

  it('sweeps leases an earlier boot of this host left for shards of no current cluster', async () => {
    const bot = uniqueBot();
    const kv = await masterBucket(bot, 20_000);
    const earlier = await startHost(bot, 'host-a');
    await acquireNow(earlier, claim(0, [0, 1]));
    await acquireNow(earlier, claim(1, [2]));
    earlier.keeper.close();
    const other = await startHost(bot, 'host-b');
    await acquireNow(other, claim(5, [6]));
    const now = await startHost(bot, 'host-a');
    await now.keeper.sweep([claim(0, [0, 1])]);
    expect((await holderOf(kv, 8, 0))?.hostId).toBe('host-a');
    expect((await holderOf(kv, 8, 1))?.hostId).toBe('host-a');
    expect(await holderOf(kv, 8, 2)).toBeNull();
    expect((await holderOf(kv, 8, 6))?.hostId).toBe('host-b');
  });

  it('an aborted wait returns at once and takes nothing more', async () => {
    const bot = uniqueBot();
    const kv = await masterBucket(bot, 20_000);
    const a = await startHost(bot, 'host-a');
    const b = await startHost(bot, 'host-b');
    await acquireNow(a, claim(0, [0]));
    const abort = new AbortController();
    const waiting = b.keeper.acquire(claim(1, [0, 1]), {
      whenHeld: 'wait',
      signal: abort.signal,
      onBlocked: () => abort.abort(),
    });
    expect(await waiting).toEqual({ kind: 'aborted' });
    await b.keeper.release(1);
    expect(await holderOf(kv, 8, 1)).toBeNull();
  });

  it('follows a lease time MASTER shortens while it holds leases: renews and fences by the new time', async () => {
    const bot = uniqueBot();
    const kv = await masterBucket(bot, 20_000);
    const proxy = await startTcpProxy(nats.port);
    proxies.push(proxy);
    const a = await startHost(bot, 'host-a', { url: proxy.url('nats') });
    expect(await acquireNow(a, claim(0, [0, 1]))).toEqual({ kind: 'acquired' });
    expect(a.keeper.fenceAfterMs).toBe(10_000);
    await masterChangesLeaseTime(bot, 8_000);
    await waitFor(() => a.keeper.ttlMs === 8_000, {
      description: 'the new lease time followed',
      timeoutMs: 10_000,
    });
    expect(a.keeper.fenceAfterMs).toBe(4_000);
    expect(a.keeper.times).toMatchObject({ renewEveryMs: 1_000, checkEveryMs: 800, requestTimeoutMs: 800 });
    // CONTROL hands the new fence time to its clusters.
    expect(a.timesChanged).toEqual([4_000]);
    // Renewed at the new cadence, then cut off: the fence comes by the new fence time, while the
    // leases (which now expire 8 s after their last renewal, not 20 s) are still this host's.
    const rounds = a.renewed.length;
    await waitFor(() => a.renewed.length > rounds, { description: 'a renewal round', timeoutMs: 10_000 });
    proxy.cut('blackhole');
    await waitFor(() => a.fences.length > 0, { description: 'fence', timeoutMs: 20_000 });
    expect((await holderOf(kv, 8, 0))?.hostId).toBe('host-a');
    expect((await holderOf(kv, 8, 1))?.hostId).toBe('host-a');
    expect(a.fences).toEqual([0]);
  });

  it('fences at once when a shorter lease time makes its last renewal too old, then renews by it', async () => {
    const bot = uniqueBot();
    // A 60 s lease renews every 10 s: no renewal round comes during this test's first seconds.
    await masterBucket(bot, 60_000);
    let skewMs = 0;
    const a = await startHost(bot, 'host-a', { clock: () => performance.now() + skewMs });
    expect(await acquireNow(a, claim(0, [0]))).toEqual({ kind: 'acquired' });
    // To the keeper its last renewal is now 5 s old: well within the 30 s fence time of a 60 s
    // lease, but a 4 s lease (fence time 2 s) may expire any moment.
    skewMs = 5_000;
    await masterChangesLeaseTime(bot, 4_000);
    await waitFor(() => a.fences.length > 0, { description: 'fence by the new time', timeoutMs: 10_000 });
    expect(a.keeper.fenceAfterMs).toBe(2_000);
    expect(a.fences).toEqual([0]);
    // NATS answers: the leases are taken again and the cluster may resume.
    expect(await a.keeper.confirm(0)).toBe('confirmed');
  });

  it('an event-loop stall with the renewals answered meanwhile costs no fence: the waiting replies are read first', async () => {
    // TTL 6 s (the CI fleet's): renewals every 750 ms, requests bounded by 600 ms, fence at 3 s.
    // The loop stalls 2.7 s right after a round went out; NATS renews every lease meanwhile. When
    // it wakes, its fence check (the last renewal read is ~3.4 s old) and the request deadlines
    // are due before the replies are read: before, that fenced the cluster and failed the round.
    const bot = uniqueBot();
    const kv = await masterBucket(bot, 6_000);
    const { nc, stallAfterNextWrite } = await stallingConnection();
    const a = await startHost(bot, 'host-a', { nc });
    expect(await acquireNow(a, claim(0, [0, 1, 2]))).toEqual({ kind: 'acquired' });
    await waitFor(() => a.renewed.length >= 1, { description: 'a renewal round', timeoutMs: 10_000 });
    const revision = (await kv.get(leaseKey(8, 0)))!.revision;
    await stallAfterNextWrite(2_700);
    const rounds = a.renewed.length;
    await waitFor(() => a.renewed.length > rounds + 1, {
      description: 'renewals after the stall',
      timeoutMs: 10_000,
    });
    expect(a.fences).toEqual([]);
    expect(a.logs.filter((log) => log['msg'] === 'lease renewal failed; retrying')).toEqual([]);
    // The round sent before the stall did renew (NATS applied it), and it counted.
    expect((await kv.get(leaseKey(8, 0)))!.revision).toBeGreaterThan(revision);
    expect((await holderOf(kv, 8, 0))?.hostId).toBe('host-a');
  });

  it('a stall past the fence time and its grace still fences, though NATS renewed meanwhile: the lease is dated by its request', async () => {
    // Promise 2 is kept: a renewal sent 3.8 s ago (past the 3 s fence time of a 6 s lease and the
    // 0.6 s a stall may add for one fresh renewal) proves only 2.2 s of lease left, however late
    // its reply was read.
    const bot = uniqueBot();
    const kv = await masterBucket(bot, 6_000);
    const { nc, stallAfterNextWrite } = await stallingConnection();
    const a = await startHost(bot, 'host-a', { nc });
    expect(await acquireNow(a, claim(0, [0, 1]))).toEqual({ kind: 'acquired' });
    await waitFor(() => a.renewed.length >= 1, { description: 'a renewal round', timeoutMs: 10_000 });
    await stallAfterNextWrite(3_800);
    await waitFor(() => a.fences.length > 0, { description: 'the fence', timeoutMs: 10_000 });
    expect(a.fences).toEqual([0]);
    expect((await holderOf(kv, 8, 0))?.hostId).toBe('host-a');
    // NATS answers: confirmed, renewals and keepalives go on.
    expect(await a.keeper.confirm(0)).toBe('confirmed');
  });

  it('cut off from NATS during a stall: fenced by the send time of the last renewal NATS answered', async () => {
    const bot = uniqueBot();
    const kv = await masterBucket(bot, 6_000);
    const proxy = await startTcpProxy(nats.port);
    proxies.push(proxy);
    const a = await startHost(bot, 'host-a', { url: proxy.url('nats') });
    expect(await acquireNow(a, claim(0, [0, 1]))).toEqual({ kind: 'acquired' });
    await waitFor(() => a.renewed.length >= 1, { description: 'a renewal round', timeoutMs: 10_000 });
    proxy.cut('blackhole');
    const cutAt = performance.now();
    const until = cutAt + 2_000;
    while (performance.now() < until) {
      // a stall with no answer waiting
    }
    await waitFor(() => a.fences.length > 0, { description: 'the fence', timeoutMs: 10_000 });
    // Before the lease could expire (the last renewal answered was sent before the cut).
    expect(performance.now() - cutAt).toBeLessThan(6_000);
    expect(a.fences).toEqual([0]);
    proxy.restore();
    expect((await holderOf(kv, 8, 0))?.hostId).toBe('host-a');
  });

  it('follows a longer lease time too', async () => {
    const bot = uniqueBot();
    await masterBucket(bot, 3_000);
    const a = await startHost(bot, 'host-a');
    expect(await acquireNow(a, claim(0, [0]))).toEqual({ kind: 'acquired' });
    await masterChangesLeaseTime(bot, 6_000);
    await waitFor(() => a.keeper.fenceAfterMs === 3_000, {
      description: 'the longer fence time',
      timeoutMs: 10_000,
    });
    expect(a.timesChanged).toEqual([3_000]);
    expect(a.fences).toEqual([]);
  });
});
