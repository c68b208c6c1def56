import fs from 'node:fs';
import path from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  ErrorCode,
  FleetEventSchema,
  FleetReplySchema,
  HostHeartbeatSchema,
  ShardLeaseRecordSchema,
  decodeRecord,
  fleetSubjects,
  leaseBucket,
  leaseKey,
  generateHostKeyPair,
  sealForHost,
  splitIntoClusters,
  tokenContext,
  type FleetEvent,
  type FleetReply,
  type HostHeartbeat,
} from 'discluster-protocol';
import {
  spawnNode,
  startNatsServer,
  stopAll,
  waitFor,
  type NatsServerHandle,
  type SpawnedProcess,
} from 'discluster-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  killPm2,
  makePm2Home,
  teardownPm2,
  pm2Cli,
  pm2Env,
  pm2List,
  processesMentioning,
  type Pm2Process,
} from './pm2Cli';

/**
 * The foreground `discluster-control` against a real nats-server and a real pm2 daemon in a
 * private PM2_HOME; the test plays MASTER over NATS.
 */

const BIN = path.join(__dirname, '..', 'dist', 'main.js');
const BOT_SCRIPT = path.join(__dirname, 'fixtures', 'bot.js');
const IDLE_SCRIPT = path.join(__dirname, 'fixtures', 'idle.js');
const TOKEN = 'test-bot-token-6d4f2a'; // fixtures/bot.js checks it arrived intact
const BOT = 'testbot';
const HOST = 'host-a';
const NAMESPACE = `discluster-${BOT}`;
const subjects = fleetSubjects(BOT);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const gateway = {
  url: 'wss://gateway.invalid',
  shards: 25,
  session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 1 },
};

let nats: NatsServerHandle;
let nc: NatsConnection;
let home: string;
let control: SpawnedProcess;
const heartbeats: HostHeartbeat[] = [];
const events: FleetEvent[] = [];
let announces = 0;

const lastHeartbeat = () => heartbeats[heartbeats.length - 1];

async function command(body: unknown): Promise<FleetReply> {
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  const reply = await nc.request(subjects.commands(HOST), encoder.encode(payload), { timeout: 20_000 });
  return FleetReplySchema.parse(JSON.parse(decoder.decode(reply.data)));
}

function assign(
  epoch: number,
  clusters: { clusterId: number; shardIds: readonly number[] }[],
  publicKey: string,
) {
  return {
    v: 1,
    type: 'assign',
    epoch,
    hostId: HOST,
    shardCount: 25,
    gateway,
    clusters: clusters.map((c) => ({ clusterId: c.clusterId, shardIds: [...c.shardIds] })),
    clusterIds: clusters.map((c) => c.clusterId),
    token: sealForHost(TOKEN, publicKey, tokenContext(BOT, HOST, epoch)),
  };
}

const ours = async () =>
  (await pm2List(home)).processes.filter((proc) => proc['pm2_env']?.['namespace'] === NAMESPACE);

/** Host id holding each shard's lease (null: none), for shards 0..24. */
async function leaseHolders(): Promise<(string | null)[]> {
  const kv = await new Kvm(jetstream(nc)).open(leaseBucket(BOT));
  return Promise.all(
    Array.from({ length: 25 }, async (_, shardId) => {
      const entry = await kv.get(leaseKey(25, shardId));
      if (!entry || entry.operation !== 'PUT') return null;
      const record = decodeRecord(ShardLeaseRecordSchema, entry.value);
      return record.ok ? record.value.hostId : '(unreadable)';
    }),
  );
}

/** What the fixture bot of a cluster logged about CONTROL's messages. */
function controlMessagesOf(clusterId: number): { pid: number; message: Record<string, unknown> }[] {
  const file = path.join(home, 'logs', `${NAMESPACE}-cluster-${clusterId}-out.log`);
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { type: string; pid: number; message: Record<string, unknown> })
    .filter((line) => line.type === 'control');
}

beforeAll(async () => {
  // JetStream: CONTROL keeps shard leases in KV (it creates the bucket, TTL 20 s, when MASTER has not).
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  // MASTER's side: accept every announce, collect heartbeats and events.
  nc.subscribe(subjects.allHostAnnounces, {
    callback: (_error, msg) => {
      announces++;
      msg.respond(encoder.encode(JSON.stringify({ v: 1, ok: true })));
    },
  });
  nc.subscribe(subjects.allHeartbeats, {
    callback: (_error, msg) => {
      heartbeats.push(HostHeartbeatSchema.parse(JSON.parse(decoder.decode(msg.data))));
    },
  });
  nc.subscribe(subjects.allEvents, {
    callback: (_error, msg) => {
      events.push(FleetEventSchema.parse(JSON.parse(decoder.decode(msg.data))));
    },
  });
  home = makePm2Home();
  // An operator's own process, started by hand before CONTROL: it must never be touched.
  await pm2Cli(home, 'start', IDLE_SCRIPT, '--name', 'hand-made');
  control = spawnNode(BIN, [], {
    env: {
      ...pm2Env(home),
      DISCLUSTER_NATS_URL: nats.url,
      DISCLUSTER_BOT: BOT,
      DISCLUSTER_HOST_ID: HOST,
      DISCLUSTER_SCRIPT: BOT_SCRIPT,
      DISCLUSTER_HEARTBEAT_MS: '200',
      DISCLUSTER_RETRY_MS: '500',
      DISCLUSTER_LOG_LEVEL: 'debug',
      DISCLUSTER_CORES: '7',
    },
  });
});

afterAll(async () => {
  // Each step runs even if an earlier one fails: nothing may outlive the suite.
  try {
    await nc?.drain().catch(() => undefined);
    await stopAll();
    if (home) await teardownPm2(home);
  } finally {
    await nats?.stop();
  }
});

describe('discluster-control (foreground bin)', () => {
  it('announces itself, is accepted and heartbeats its host facts with no clusters', async () => {
    await waitFor(() => announces > 0 && heartbeats.length >= 3, { description: 'announce and heartbeats' });
    const beat = lastHeartbeat()!;
    expect(beat).toMatchObject({
      hostId: HOST,
      role: 'active',
      epoch: null,
      clusters: [],
      shardsPerCluster: 10,
    });
    // The `cores` setting replaces the count Node sees.
    expect(beat.cores).toBe(7);
    expect(beat.publicKey).toHaveLength(43);
    await control.waitForLine((line) => line.includes('accepted by MASTER'));
  });

  it('rejects malformed commands and changes nothing', async () => {
    const publicKey = lastHeartbeat()!.publicKey;
    const plaintextToken = { ...assign(1, [{ clusterId: 0, shardIds: [0] }], publicKey), token: TOKEN };
    for (const bad of ['not json', { v: 1, type: 'assign' }, { v: 1, type: 'explode' }, plaintextToken]) {
      const reply = await command(bad);
      expect(reply.ok).toBe(false);
      if (!reply.ok) expect(reply.error.code).toBe(ErrorCode.InvalidMessage);
    }
    // A box sealed for another key is refused too.
    const other = await command(
      assign(1, [{ clusterId: 0, shardIds: [0] }], generateHostKeyPair().publicKey),
    );
    expect(other.ok).toBe(false);
    if (!other.ok) expect(other.error.code).toBe(ErrorCode.SealedTokenInvalid);
    const before = heartbeats.length;
    await waitFor(() => heartbeats.length > before + 1, { description: 'more heartbeats' });
    expect(lastHeartbeat()).toMatchObject({ epoch: null, clusters: [] });
    expect(await ours()).toEqual([]);
    // Nothing it logged carries the token.
    expect(control.lines.join('\n')).not.toContain(TOKEN);
  });

  it('starts the assigned clusters as pm2 processes in its namespace and hands them the token over IPC', async () => {
    const handMadeBefore = (await pm2List(home)).processes.find((proc) => proc['name'] === 'hand-made');
    // A leftover of an earlier CONTROL (our namespace and name pattern, not in the plan) is removed.
    await pm2Cli(home, 'start', IDLE_SCRIPT, '--name', `${NAMESPACE}-cluster-42`, '--namespace', NAMESPACE);
    const clusters = splitIntoClusters(
      Array.from({ length: 25 }, (_, i) => i),
      { shardsPerCluster: 10, maxConcurrency: 1 },
    );
    expect(await command(assign(5, clusters, lastHeartbeat()!.publicKey))).toEqual({
      v: 1,
      ok: true,
      epoch: 5,
    });
    await waitFor(
      () => {
        const beat = lastHeartbeat();
        return (
          beat?.epoch === 5 && beat.clusters.length === 3 && beat.clusters.every((c) => c.state === 'online')
        );
      },
      { description: 'three clusters online in the heartbeat', timeoutMs: 30_000 },
    );
    const beat = lastHeartbeat()!;
    expect(beat.clusters.map((c) => c.shardIds.length)).toEqual([10, 10, 5]);
    for (const cluster of beat.clusters) {
      expect(cluster.shards?.every((shard) => shard.waitingReason === 'token-ok')).toBe(true);
    }
    const { processes, raw } = await pm2List(home);
    const mine = processes.filter((proc) => proc['pm2_env']?.['namespace'] === NAMESPACE);
    expect(mine.map((proc) => proc['name']).sort()).toEqual(
      [0, 1, 2].map((id) => `${NAMESPACE}-cluster-${id}`),
    );
    for (const proc of mine) {
      expect(proc['pm2_env']['status']).toBe('online');
      expect(proc['pm2_env']['kill_timeout']).toBeGreaterThanOrEqual(10_000);
      expect(proc['pm2_env']['DISCLUSTER_CLUSTER_ID']).toBe(proc['name'].split('-').pop());
      // CONTROL's own settings are not copied into the clusters' environment.
      expect(proc['pm2_env']['DISCLUSTER_SCRIPT']).toBeUndefined();
      // glibc reads the arena limit at the process's start: it must be in the real environment.
      const environ = fs.readFileSync(`/proc/${String(proc['pid'])}/environ`, 'utf8').split('\0');
      expect(environ).toContain('MALLOC_ARENA_MAX=2');
    }
    // Promise 4: the token is in no pm2 process description or environment.
    expect(raw).not.toContain(TOKEN);
    const handMade = processes.find((proc) => proc['name'] === 'hand-made');
    expect(handMade?.['pm2_env']['status']).toBe('online');
    expect(handMade?.['pid']).toBe(handMadeBefore?.['pid']);
    expect(handMade?.['pm2_env']['restart_time']).toBe(0);
    // Promise 2: every shard is leased to this host before its cluster runs, and clusters are told
    // to fence after half the lease time (the bucket CONTROL created has the default 20 s).
    expect(await leaseHolders()).toEqual(Array.from({ length: 25 }, () => HOST));
    expect(controlMessagesOf(0).find((line) => line.message['type'] === 'assign')?.message).toMatchObject({
      epoch: 5,
      fenceAfterMs: 10_000,
    });
  });

  it('answers a host status request (`discluster status` without MASTER) with its heartbeat facts', async () => {
    const reply = await nc.request(subjects.hostStatus, encoder.encode('{}'), { timeout: 5_000 });
    const facts = HostHeartbeatSchema.parse(JSON.parse(decoder.decode(reply.data)));
    expect(facts).toMatchObject({ hostId: HOST, epoch: 5, cores: 7 });
    expect(facts.clusters.map((c) => c.clusterId)).toEqual([0, 1, 2]);
  });

  it('a lease time MASTER changes at run time reaches the running clusters as a new fenceAfterMs', async () => {
    // MASTER restarted with another lease_ms sets the bucket's TTL (longer here: a shorter one
    // needs the duplicate window cut too); CONTROL re-sends each cluster its assignment, same epoch.
    const jsm = await jetstreamManager(nc);
    const setLeaseTime = (ms: number) =>
      jsm.streams.update(`KV_${leaseBucket(BOT)}`, { max_age: ms * 1_000_000 });
    const assignsWith = (clusterId: number, fenceAfterMs: number) =>
      controlMessagesOf(clusterId).filter(
        (line) =>
          line.message['type'] === 'assign' &&
          line.message['epoch'] === 5 &&
          line.message['fenceAfterMs'] === fenceAfterMs,
      ).length;
    await setLeaseTime(24_000);
    await waitFor(() => [0, 1, 2].every((id) => assignsWith(id, 12_000) === 1), {
      description: 'every cluster told fenceAfterMs 12000',
      timeoutMs: 20_000,
    });
    const back = [0, 1, 2].map((id) => assignsWith(id, 10_000));
    await setLeaseTime(20_000);
    await waitFor(() => [0, 1, 2].every((id, i) => assignsWith(id, 10_000) === back[i]! + 1), {
      description: 'every cluster told fenceAfterMs 10000 again',
      timeoutMs: 20_000,
    });
  });

  it('refuses a stale epoch and keeps its clusters', async () => {
    // The lease-time test before this one may have fenced and restarted clusters on a busy machine:
    // start from three online clusters.
    await waitFor(
      async () => (await ours()).every((proc) => proc['pm2_env']['status'] === 'online' && proc['pid'] > 0),
      { description: 'three clusters online', timeoutMs: 60_000 },
    );
    const pids = (await ours()).map((proc) => proc['pid']);
    const reply = await command(assign(4, [{ clusterId: 7, shardIds: [0] }], lastHeartbeat()!.publicKey));
    expect(reply.ok).toBe(false);
    if (!reply.ok) expect(reply.error.code).toBe(ErrorCode.StaleEpoch);
    expect((await ours()).map((proc) => proc['pid'])).toEqual(pids);
    expect(lastHeartbeat()?.epoch).toBe(5);
  });

  it('rolling restart: each cluster shut down over IPC and started again, in order, leases kept', async () => {
    const before = await ours();
    expect((await command({ v: 1, type: 'rolling-restart', epoch: 5 })).ok).toBe(true);
    const after = await ours();
    for (const proc of after) {
      const old = before.find((p) => p['name'] === proc['name'])!;
      expect(proc['pid']).not.toBe(old['pid']);
      expect(proc['pm2_env']['status']).toBe('online');
    }
    // Each old process was told to shut down (not killed), exactly once.
    for (const id of [0, 1, 2]) {
      const shutdowns = controlMessagesOf(id).filter((line) => line.message['type'] === 'shutdown');
      expect(shutdowns.map((line) => line.pid)).toEqual([
        before.find((p) => p['name'].endsWith(`-${id}`))!['pid'],
      ]);
    }
    // In cluster order.
    const startedAt = (proc: Pm2Process): number => proc['pm2_env']['pm_uptime'];
    const order = [...after].sort((a, b) => startedAt(a) - startedAt(b)).map((p) => p['name']);
    expect(order).toEqual([0, 1, 2].map((id) => `${NAMESPACE}-cluster-${id}`));
    await waitFor(
      () => lastHeartbeat()?.clusters.every((c) => c.state === 'online' && c.restarts === 0) === true,
      {
        description: 'clusters online, no restart counted as a crash',
        // A liveness bound for three restarts on a busy machine, not a speed check.
        timeoutMs: 60_000,
      },
    );
    expect(await leaseHolders()).toEqual(Array.from({ length: 25 }, () => HOST));
  });

  it('gives up on a cluster that keeps failing to start and emits cluster.failed', async () => {
    const clusters = [
      { clusterId: 0, shardIds: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] },
      { clusterId: 99, shardIds: [20] },
    ];
    expect((await command(assign(6, clusters, lastHeartbeat()!.publicKey))).ok).toBe(true);
    await waitFor(() => events.some((event) => event.type === 'cluster.failed'), {
      description: 'cluster.failed event',
      timeoutMs: 30_000,
    });
    expect(events.find((event) => event.type === 'cluster.failed')).toMatchObject({
      hostId: HOST,
      clusterId: 99,
      attempts: 3,
    });
    await waitFor(() => lastHeartbeat()?.clusters.find((c) => c.clusterId === 99)?.state === 'failed', {
      description: 'cluster 99 reported failed',
    });
    // Clusters 1 and 2 left the plan: their processes are gone; cluster 0 kept running.
    const names = (await ours()).map((proc) => proc['name']).sort();
    expect(names).toEqual([`${NAMESPACE}-cluster-0`, `${NAMESPACE}-cluster-99`]);
  });

  it('stop-all stops its clusters and nothing else, and releases their leases', async () => {
    expect((await command({ v: 1, type: 'stop-all', reason: 'test' })).ok).toBe(true);
    expect(await ours()).toEqual([]);
    expect(await leaseHolders()).toEqual(Array.from({ length: 25 }, () => null));
    const handMade = (await pm2List(home)).processes.find((proc) => proc['name'] === 'hand-made');
    expect(handMade?.['pm2_env']['status']).toBe('online');
  });

  it('leaves no process behind once torn down', async () => {
    await stopAll();
    await killPm2(home);
    await waitFor(() => processesMentioning(home).length === 0, {
      description: `no process of ${home} left`,
      timeoutMs: 15_000,
    });
  });
});
