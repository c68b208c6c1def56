import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  spawnNode,
  startDiscordSimProcess,
  startNatsServer,
  startTcpProxy,
  stopAll,
  waitFor,
  type DiscordSimProcess,
  type NatsServerHandle,
  type SimJson,
  type SpawnedProcess,
  type TcpProxyHandle,
} from 'discluster-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeMaster, type Gateway } from './master';
import { makePm2Home, pm2Cli, pm2Env, pm2List, teardownPm2, type Pm2Process } from './pm2Cli';

/**
 * CONTROL end to end with a real bot: the foreground bin runs clusters written with discluster-sdk
 * (fixtures/sdkBot.js) under a private pm2 daemon, against discord-sim and a nats-server with
 * JetStream. The test plays MASTER. CONTROL's own NATS link goes through a TCP proxy the test can
 * cut, while the clusters reach NATS directly (test knob), so only CONTROL loses NATS.
 * One daemon, one simulator and one CONTROL serve the whole file, test after test.
 */

const BIN = path.join(__dirname, '..', 'dist', 'main.js');
const BOT_SCRIPT = path.join(__dirname, 'fixtures', 'sdkBot.js');
const TOKEN = 'sdk-e2e-secret-TOKEN-93be1f';
const BOT = 'sdkbot';
const HOST = 'host-s';
const NAMESPACE = `discluster-${BOT}`;
const SHARD_COUNT = 4;
// Clusters fence LEASE_MS / 2 after their last keepalive. A restarted CONTROL must adopt them within
// that window for "no reconnect": 3 s (a 6 s lease) did not hold on a busy 2-core machine, where a
// CONTROL restart took up to 6 s.
const LEASE_MS = 20_000;
const CLUSTERS = [
  { clusterId: 0, shardIds: [0, 1] },
  { clusterId: 1, shardIds: [2, 3] },
];

let nats: NatsServerHandle;
let proxy: TcpProxyHandle;
let master: FakeMaster;
let sim: DiscordSimProcess;
let gateway: Gateway;
let home: string;
let control: SpawnedProcess;
let epoch = 0;

function startControl(): SpawnedProcess {
  return spawnNode(BIN, [], {
    env: {
      ...pm2Env(home),
      DISCLUSTER_NATS_URL: proxy.url('nats'),
      DISCLUSTER_BOT: BOT,
      DISCLUSTER_HOST_ID: HOST,
      DISCLUSTER_SCRIPT: BOT_SCRIPT,
      DISCLUSTER_HEARTBEAT_MS: '200',
      DISCLUSTER_RETRY_MS: '500',
      DISCLUSTER_LOG_LEVEL: 'debug',
    },
  });
}

async function assignAll(): Promise<void> {
  const command = master.assign(HOST, {
    epoch: ++epoch,
    shardCount: SHARD_COUNT,
    gateway,
    clusters: CLUSTERS,
    token: TOKEN,
  });
  expect(await master.command(HOST, command)).toMatchObject({ ok: true, epoch });
}

const clusterName = (clusterId: number) => `${NAMESPACE}-cluster-${clusterId}`;

async function clusterProcesses(): Promise<Pm2Process[]> {
  return (await pm2List(home)).processes
    .filter((proc) => proc['pm2_env']?.['namespace'] === NAMESPACE)
    .sort((x, y) => String(x['name']).localeCompare(String(y['name'])));
}

/** Every shard of every cluster ready, as CONTROL's heartbeat says. */
function allReady(): Promise<unknown> {
  return master.waitForHeartbeat(
    HOST,
    (beat) =>
      beat.clusters.length === CLUSTERS.length &&
      beat.clusters.every(
        (c) =>
          c.state === 'online' &&
          c.shards?.length === c.shardIds.length &&
          c.shards.every((s) => s.state === 'ready'),
      ),
    { description: 'every shard ready in the heartbeat', timeoutMs: 60_000 },
  );
}

/** JSON lines a cluster's bot wrote (pm2 keeps them across restarts of the process). */
function botLines(clusterId: number): SimJson[] {
  let text = '';
  try {
    text = fs.readFileSync(path.join(home, 'logs', `${clusterName(clusterId)}-out.log`), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as SimJson);
}

const liveShards = async (): Promise<number[]> =>
  ((await sim.state())['liveSessions'] as SimJson[]).map((s) => s['shard'][0] as number).sort();

const countLines = (clusterId: number, match: (line: SimJson) => boolean): number =>
  botLines(clusterId).filter(match).length;
const isFenced = (line: SimJson): boolean => line['type'] === 'fenced';
const isFenceOrder = (line: SimJson): boolean => line['type'] === 'control' && line['message'] === 'fence';

/** The last state each shard of the cluster reported to its bot code (`shardState` events). */
function lastShardStates(clusterId: number): Map<number, string> {
  const states = new Map<number, string>();
  for (const line of botLines(clusterId))
    if (line['type'] === 'shardState') states.set(line['shardId'] as number, line['state'] as string);
  return states;
}

/** CONTROL logged `answered confirm` with `confirmed: true` after its line `from`. */
const confirmedSince = (proc: SpawnedProcess, from: number): boolean =>
  proc.lines
    .slice(from)
    .some((line) => line.includes('answered confirm') && line.includes('"confirmed":true'));

/**
 * Silences CONTROL with `signal` while pm2 keeps its clusters running, and waits until every cluster
 * fenced itself for want of keepalives: shards closed at the gateway, state `fenced`, leases not yet
 * expired (so before another host could have started the shards). Returns the simulator state then.
 */
async function silenceControl(signal: 'SIGSTOP' | 'SIGKILL'): Promise<SimJson> {
  const before = await sim.state();
  const pidsBefore = (await clusterProcesses()).map((proc) => proc['pid']);
  for (const { clusterId } of CLUSTERS)
    expect(
      countLines(clusterId, (l) => l['type'] === 'control' && l['message'] === 'keepalive'),
    ).toBeGreaterThan(0);
  const fencedBefore = CLUSTERS.map(({ clusterId }) => countLines(clusterId, isFenced));
  const ordersBefore = CLUSTERS.map(({ clusterId }) => countLines(clusterId, isFenceOrder));
  const silencedAt = Date.now();
  expect(control.kill(signal)).toBe(true);
  for (const [i, { clusterId }] of CLUSTERS.entries())
    await waitFor(() => countLines(clusterId, isFenced) > fencedBefore[i]!, {
      description: `cluster ${clusterId} fenced without CONTROL`,
      timeoutMs: 30_000,
    });
  const fencedAfterMs = Date.now() - silencedAt;
  // Fenced while every lease is still there: before it could expire and another host start the shard.
  for (const shardId of [0, 1, 2, 3]) expect((await master.leaseOf(SHARD_COUNT, shardId))?.hostId).toBe(HOST);
  await waitFor(async () => (await liveShards()).length === 0, {
    description: 'no live session at the gateway',
    timeoutMs: 30_000,
  });
  console.info(
    `CONTROL ${signal}: every cluster fenced ${fencedAfterMs} ms later (fenceAfterMs ${LEASE_MS / 2})`,
  );
  for (const [i, { clusterId, shardIds }] of CLUSTERS.entries()) {
    // Nobody told it to: a silent CONTROL sends no `fence`.
    expect(countLines(clusterId, isFenceOrder)).toBe(ordersBefore[i]);
    const states = lastShardStates(clusterId);
    for (const shardId of shardIds) expect(states.get(shardId)).toBe('fenced');
  }
  // The cluster processes themselves keep running, and spent no identify.
  const procs = await clusterProcesses();
  expect(procs.map((proc) => proc['pid'])).toEqual(pidsBefore);
  expect(procs.every((proc) => proc['pm2_env']['status'] === 'online')).toBe(true);
  const whileFenced = await sim.state();
  expect(whileFenced['identifies']).toBe(before['identifies']);
  expect(whileFenced['violations']).toMatchObject({
    identifyRate: 0,
    duplicateLiveSessions: 0,
    resumeWhileLive: 0,
  });
  return whileFenced;
}

/** After a silence: every shard RESUMEd (none identified), each cluster `unfenced` after its fence. */
async function expectResumedAfter(whileFenced: SimJson): Promise<void> {
  await waitFor(async () => (await liveShards()).join() === '0,1,2,3', {
    description: 'every shard live again',
    timeoutMs: 60_000,
  });
  await allReady();
  for (const { clusterId } of CLUSTERS) {
    const types = botLines(clusterId).map((l) => l['type']);
    expect(types.lastIndexOf('unfenced')).toBeGreaterThan(types.lastIndexOf('fenced'));
  }
  const after = await sim.state();
  expect(after['identifies']).toBe(whileFenced['identifies']);
  expect(after['resumes'] - whileFenced['resumes']).toBe(SHARD_COUNT);
  expect(await liveShards()).toEqual([0, 1, 2, 3]);
  expect(after['violations']).toMatchObject({
    identifyRate: 0,
    duplicateLiveSessions: 0,
    resumeWhileLive: 0,
  });
}

beforeAll(async () => {
  nats = await startNatsServer();
  proxy = await startTcpProxy(nats.port);
  master = await FakeMaster.start(nats.url, BOT);
  await master.createLeaseBucket(LEASE_MS);
  sim = await startDiscordSimProcess({
    token: TOKEN,
    guilds: 200,
    shards: SHARD_COUNT,
    'max-concurrency': 1,
    'identify-window-ms': 200,
    'heartbeat-interval-ms': 1000,
  });
  const response = await fetch(`${sim.rest}/gateway/bot`, { headers: { authorization: `Bot ${TOKEN}` } });
  gateway = (await response.json()) as Gateway;
  home = makePm2Home();
  // Test knobs for the bot processes (fixtures/sdkBot.js): a direct NATS link, simulator timings.
  fs.writeFileSync(
    path.join(home, 'test-knobs.json'),
    JSON.stringify({ natsUrl: nats.url, identifyWindowMs: 200, statusIntervalMs: 500 }),
  );
  control = startControl();
  await master.waitForHeartbeat(HOST, () => true, { description: 'CONTROL heartbeat' });
});

afterAll(async () => {
  // Each step runs even if an earlier one fails: nothing may outlive the suite.
  try {
    // A test that failed while CONTROL was stopped (SIGSTOP) must not leave it frozen.
    control?.kill('SIGCONT');
    await master?.close();
    await stopAll();
    if (home) await teardownPm2(home).catch(() => undefined);
  } finally {
    await proxy?.close();
    await sim?.stop();
    await nats?.stop();
  }
});

describe('CONTROL with discluster-sdk clusters', () => {
  it('starts the clusters, each shard identified once, with the lease time as fence time', async () => {
    await assignAll();
    await allReady();
    const state = await sim.state();
    expect(state['identifies']).toBe(SHARD_COUNT);
    expect(await liveShards()).toEqual([0, 1, 2, 3]);
    expect(state['violations']).toMatchObject({
      identifyRate: 0,
      duplicateLiveSessions: 0,
      resumeWhileLive: 0,
    });
    for (const { clusterId } of CLUSTERS) {
      const assign = botLines(clusterId).find(
        (line) => line['type'] === 'control' && line['message'] === 'assign',
      );
      expect(assign?.['fenceAfterMs']).toBe(LEASE_MS / 2);
      // CONTROL handed out its own (proxied) NATS URL; the knob gave the bot a direct link instead.
      expect(control.lines.some((line) => line.includes(proxy.url('nats')))).toBe(true);
      expect(assign?.['natsServers']).toEqual([nats.url]);
    }
    for (const shardId of [0, 1, 2, 3])
      expect((await master.leaseOf(SHARD_COUNT, shardId))?.hostId).toBe(HOST);
  });

  it('keeps the token out of pm2 jlist, env, show, the logs and every command line', async () => {
    const outputs = [(await pm2List(home)).raw];
    for (const proc of await clusterProcesses()) {
      outputs.push(await pm2Cli(home, 'env', String(proc['pm_id'])));
      outputs.push(await pm2Cli(home, 'show', String(proc['name'])));
      for (const file of [proc['pm2_env']['pm_out_log_path'], proc['pm2_env']['pm_err_log_path']])
        outputs.push(fs.readFileSync(String(file), 'utf8'));
    }
    // pm2's own daemon log, and CONTROL's log (debug level).
    outputs.push(fs.readFileSync(path.join(home, 'pm2.log'), 'utf8'));
    outputs.push(control.lines.join('\n'), control.stderr());
    for (const output of outputs) expect(output).not.toContain(TOKEN);
    expect(botLines(0).some((line) => line['type'] === 'started')).toBe(true); // the logs are real
    // Only the simulator (given the token on its command line by this test) may show it in `ps`.
    const { stdout: ps } = await promisify(execFile)('ps', ['-eo', 'pid=,args=']);
    const withToken = ps
      .split('\n')
      .filter((line) => line.includes(TOKEN))
      .map((line) => Number(line.trim().split(/\s+/)[0]));
    expect(withToken.filter((pid) => pid !== sim.process.pid)).toEqual([]);
  });

  it('a SIGKILLed cluster is restarted and RESUMEs its shards: no identify spent', async () => {
    const before = await sim.state();
    const victim = (await clusterProcesses())[0]!;
    process.kill(victim['pid'] as number, 'SIGKILL');
    await waitFor(async () => (await clusterProcesses())[0]?.['pid'] !== victim['pid'], {
      description: 'cluster 0 restarted',
      timeoutMs: 30_000,
    });
    await master.waitForHeartbeat(HOST, (beat) => beat.clusters[0]?.restarts === 1, {
      description: 'restart counted',
    });
    await allReady();
    const after = await sim.state();
    expect(after['identifies']).toBe(before['identifies']);
    expect(after['resumes'] - before['resumes']).toBe(2);
    expect(await liveShards()).toEqual([0, 1, 2, 3]);
    expect(after['violations']).toMatchObject({
      identifyRate: 0,
      duplicateLiveSessions: 0,
      resumeWhileLive: 0,
    });
  });

  it('rolling restart under traffic: each cluster restarted once, 0 identifies, every message delivered', async () => {
    const before = await sim.state();
    const pidsBefore = (await clusterProcesses()).map((proc) => proc['pid'] as number);
    const shutdownsBefore = CLUSTERS.map(
      ({ clusterId }) => botLines(clusterId).filter((l) => l['message'] === 'shutdown').length,
    );
    const started = await fetch(`${sim.admin}/traffic`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ eventsPerSecond: 40, seconds: 12 }),
    });
    const run = (await started.json()) as { id: number; total: number };
    expect(await master.command(HOST, { v: 1, type: 'rolling-restart', epoch }, 120_000)).toMatchObject({
      ok: true,
    });
    await waitFor(
      async () =>
        ((await (await fetch(`${sim.admin}/traffic/${run.id}`)).json()) as SimJson)['done'] === true,
      { description: 'traffic sent', timeoutMs: 60_000 },
    );
    await allReady();
    const seen = () =>
      new Set(
        CLUSTERS.flatMap(({ clusterId }) =>
          botLines(clusterId)
            .filter((line) => line['type'] === 'message' && String(line['nonce']).startsWith(`${run.id}:`))
            .map((line) => String(line['nonce'])),
        ),
      );
    await waitFor(() => seen().size === run.total, {
      description: `all ${run.total} messages delivered`,
      timeoutMs: 30_000,
    });
    const pidsAfter = (await clusterProcesses()).map((proc) => proc['pid'] as number);
    for (let i = 0; i < CLUSTERS.length; i++) expect(pidsAfter[i]).not.toBe(pidsBefore[i]);
    // Each cluster was told to shut down exactly once.
    CLUSTERS.forEach(({ clusterId }, i) =>
      expect(botLines(clusterId).filter((l) => l['message'] === 'shutdown').length).toBe(
        shutdownsBefore[i]! + 1,
      ),
    );
    const after = await sim.state();
    expect(after['identifies']).toBe(before['identifies']);
    expect(after['resumes'] - before['resumes']).toBe(SHARD_COUNT);
    expect(after['violations']).toMatchObject({
      identifyRate: 0,
      duplicateLiveSessions: 0,
      resumeWhileLive: 0,
    });
    // Rolling restarts are not crashes.
    expect(master.lastHeartbeat(HOST)?.clusters.map((c) => c.restarts)).toEqual([1, 0]);
  }, 180_000);

  it("fence: CONTROL's NATS cut while the clusters' stays up → fence, shards closed; back → confirmed → RESUME", async () => {
    const before = await sim.state();
    const fencedBefore = CLUSTERS.map(
      ({ clusterId }) => botLines(clusterId).filter((l) => l['type'] === 'fenced').length,
    );
    proxy.cut('blackhole');
    await control.waitForLine((line) => line.includes('fencing the cluster'), 30_000);
    for (const [i, { clusterId }] of CLUSTERS.entries()) {
      await waitFor(
        () => botLines(clusterId).filter((l) => l['type'] === 'fenced').length > fencedBefore[i]!,
        {
          description: `cluster ${clusterId} fenced`,
          timeoutMs: 30_000,
        },
      );
      // CONTROL's `fence` may land a little after the cluster fenced itself: its keepalives stopped
      // with the renewals, so both fire about half a lease time after the last renewal.
      await waitFor(() => botLines(clusterId).some(isFenceOrder), {
        description: `cluster ${clusterId} told to fence`,
        timeoutMs: 30_000,
      });
    }
    await waitFor(async () => (await liveShards()).length === 0, {
      description: 'no live session at the gateway',
      timeoutMs: 30_000,
    });
    // The clusters are up and talking to NATS; only their shards are closed.
    expect((await clusterProcesses()).every((proc) => proc['pm2_env']['status'] === 'online')).toBe(true);
    const whileFenced = await sim.state();
    expect(whileFenced['identifies']).toBe(before['identifies']);

    proxy.restore();
    await control.waitForLine(
      (line) => line.includes('answered confirm') && line.includes('"confirmed":true'),
      60_000,
    );
    await waitFor(async () => (await liveShards()).join() === '0,1,2,3', {
      description: 'every shard live again',
      timeoutMs: 60_000,
    });
    await allReady();
    for (const { clusterId } of CLUSTERS) {
      const lines = botLines(clusterId).map((l) => l['type']);
      expect(lines.lastIndexOf('unfenced')).toBeGreaterThan(lines.lastIndexOf('fenced'));
    }
    const after = await sim.state();
    expect(after['identifies']).toBe(before['identifies']);
    expect(after['resumes'] - whileFenced['resumes']).toBe(SHARD_COUNT);
    expect(after['violations']).toMatchObject({
      identifyRate: 0,
      duplicateLiveSessions: 0,
      resumeWhileLive: 0,
    });
    for (const shardId of [0, 1, 2, 3])
      expect((await master.leaseOf(SHARD_COUNT, shardId))?.hostId).toBe(HOST);
    expect(control.lines.join('\n')).not.toContain('"confirmed":false');
  }, 180_000);

  it('a restarted CONTROL adopts the running clusters: same processes, no identify, no reconnect', async () => {
    const before = await sim.state();
    const procsBefore = await clusterProcesses();
    const oldInstance = master.lastHeartbeat(HOST)!.instanceId;
    await control.stop();
    control = startControl();
    const beat = await master.waitForHeartbeat(HOST, (b) => b.instanceId !== oldInstance, {
      description: 'the new CONTROL heartbeats',
    });
    expect(beat.clusters).toEqual([]);
    // MASTER re-sends the plan to the new boot (sealed for its new key).
    await assignAll();
    await allReady();
    await control.waitForLine((line) => line.includes('adopting a running cluster process'));
    const procsAfter = await clusterProcesses();
    expect(procsAfter.map((proc) => proc['pid'])).toEqual(procsBefore.map((proc) => proc['pid']));
    expect(procsAfter.map((proc) => proc['pm2_env']['restart_time'])).toEqual(
      procsBefore.map((proc) => proc['pm2_env']['restart_time']),
    );
    const after = await sim.state();
    expect(after['identifies']).toBe(before['identifies']);
    expect(after['resumes']).toBe(before['resumes']);
    expect(await liveShards()).toEqual([0, 1, 2, 3]);
    // The leases were taken over by the new boot.
    for (const shardId of [0, 1, 2, 3])
      expect((await master.leaseOf(SHARD_COUNT, shardId))?.instanceId).toBe(beat.instanceId);
  });

  it('a hung CONTROL (SIGSTOP): its clusters stop hearing keepalives and fence; continued, it confirms → RESUME', async () => {
    const linesBefore = control.lines.length;
    const whileFenced = await silenceControl('SIGSTOP');
    expect(control.kill('SIGCONT')).toBe(true);
    await waitFor(() => confirmedSince(control, linesBefore), {
      description: 'the continued CONTROL confirms',
      timeoutMs: 60_000,
    });
    await expectResumedAfter(whileFenced);
    expect(control.lines.slice(linesBefore).join('\n')).not.toContain('"confirmed":false');
  }, 180_000);

  it('a SIGKILLed CONTROL: its clusters fence; a new CONTROL adopts them, confirms → RESUME, no identify', async () => {
    const pidsBefore = (await clusterProcesses()).map((proc) => proc['pid']);
    const oldInstance = master.lastHeartbeat(HOST)!.instanceId;
    const whileFenced = await silenceControl('SIGKILL');
    await control.exited;
    control = startControl();
    const beat = await master.waitForHeartbeat(HOST, (b) => b.instanceId !== oldInstance, {
      description: 'the new CONTROL heartbeats',
    });
    // MASTER re-sends the plan to the new boot: it adopts the running (fenced) clusters.
    await assignAll();
    await control.waitForLine((line) => line.includes('adopting a running cluster process'), 30_000);
    await waitFor(() => confirmedSince(control, 0), {
      description: 'the new CONTROL confirms',
      timeoutMs: 60_000,
    });
    await expectResumedAfter(whileFenced);
    expect((await clusterProcesses()).map((proc) => proc['pid'])).toEqual(pidsBefore);
    expect(control.lines.join('\n')).not.toContain('"confirmed":false');
    for (const shardId of [0, 1, 2, 3])
      expect((await master.leaseOf(SHARD_COUNT, shardId))?.instanceId).toBe(beat.instanceId);
  }, 180_000);

  it('stop-all ends every cluster and frees every lease', async () => {
    expect((await master.command(HOST, { v: 1, type: 'stop-all', reason: 'test over' })).ok).toBe(true);
    expect(await clusterProcesses()).toEqual([]);
    for (const shardId of [0, 1, 2, 3]) expect(await master.leaseOf(SHARD_COUNT, shardId)).toBeNull();
    await waitFor(async () => (await liveShards()).length === 0, { description: 'sessions closed' });
  });
});
