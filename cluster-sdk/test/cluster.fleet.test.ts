/**
 * Fleet mode over a plain IPC channel (the test forks the bot and plays CONTROL), without pm2:
 * the contract's validation rules, the token's secrecy in every line the process writes, and the
 * errors a bot gets when it is not started by CONTROL. The same flows under a real pm2 daemon are
 * in cluster.pm2.test.ts.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import {
  CLUSTER_CONTROL_TOPIC,
  budgetBucket,
  identifyBucket,
  identifyWaitersBucket,
  sessionBucket,
  type ClusterToControl,
} from 'discluster-protocol';
import {
  spawnNode,
  startNatsCluster,
  startNatsServer,
  startTcpProxy,
  stopAll,
  waitFor,
  type DiscordSimProcess,
  type NatsServerHandle,
  type TcpProxyHandle,
} from 'discluster-testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { allShards, assignMessage, waitForMessage, type ControlPeer } from './control';
import { uniqueBot } from './helpers';
import {
  jsonLines as events,
  startSimWithGateway,
  TWO_SHARD_SIM,
  type JsonLine as Json,
} from './standaloneHarness';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const FIXTURE = path.join(__dirname, 'fixtures', 'fleetCluster.js');
const TOKEN = 'fleet-ipc-secret-TOKEN-4b1d9e';

let nats: NatsServerHandle;
const sims: DiscordSimProcess[] = [];
const children: ForkedCluster[] = [];
const proxies: TcpProxyHandle[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
});
afterEach(async () => {
  for (const child of children.splice(0)) await child.stop();
  await stopAll();
  for (const proxy of proxies.splice(0)) await proxy.close();
  for (const sim of sims.splice(0)) await sim.stop();
});
afterAll(async () => {
  await nats?.stop();
});

interface ForkedCluster extends ControlPeer {
  readonly child: ChildProcess;
  /** Every stdout line, and the stderr text: all the process ever wrote. */
  readonly lines: string[];
  stderr(): string;
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** Starts the fleet fixture as CONTROL would, with an IPC channel but no pm2. */
function forkCluster(env: Record<string, string>): ForkedCluster {
  const child = fork(FIXTURE, [], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const received: ClusterToControl[] = [];
  child.on('message', (packet: { type?: string; data?: ClusterToControl }) => {
    if (packet.type === 'process:msg' && packet.data) received.push(packet.data);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const handle: ForkedCluster = {
    child,
    lines,
    stderr: () => stderr,
    received,
    exited,
    send: (data) =>
      new Promise<void>((resolve, reject) =>
        child.send({ topic: CLUSTER_CONTROL_TOPIC, data, type: 'process:msg' }, (error) =>
          error ? reject(error) : resolve(),
        ),
      ),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
  children.push(handle);
  return handle;
}

function startSim(): Promise<{ sim: DiscordSimProcess; gateway: Json }> {
  return startSimWithGateway(sims, TOKEN, TWO_SHARD_SIM);
}

/** A forked cluster serving shards 0 and 1 of a fresh simulator, assigned `epoch` by the test as CONTROL. */
async function readyTwoShardCluster(botPrefix: string, epoch: number) {
  const { sim, gateway } = await startSim();
  const proc = forkCluster({
    DISCLUSTER_CLUSTER_ID: '0',
    TEST_IDENTIFY_WINDOW_MS: '200',
    TEST_STATUS_INTERVAL_MS: '500',
  });
  await waitForMessage(proc, 'hello', { description: 'hello' });
  await proc.send(
    assignMessage({
      epoch,
      shardIds: [0, 1],
      shardCount: 2,
      bot: uniqueBot(botPrefix),
      token: TOKEN,
      gateway: gateway as never,
      natsServers: [nats.url],
    }),
  );
  const ready = await waitForMessage(proc, 'status', { where: allShards('ready'), description: 'ready' });
  return { sim, proc, ready };
}

describe('fleet mode without pm2', () => {
  it('refuses to start without an IPC channel and says how to run standalone', async () => {
    const proc = spawnNode(FIXTURE, [], { env: { DISCLUSTER_CLUSTER_ID: '0' } });
    expect((await proc.exited).code).toBe(1);
    const error = events(proc).find((e) => e.type === 'startError');
    expect(error?.['message']).toMatch(/no IPC channel/);
    expect(error?.['message']).toMatch(/options\.standalone/);
  });

  it('refuses to start without DISCLUSTER_CLUSTER_ID, naming the variable', async () => {
    const proc = forkCluster({ DISCLUSTER_CLUSTER_ID: '' });
    expect(await proc.exited).toBe(1);
    const error = events(proc).find((e) => e.type === 'startError');
    expect(error?.['message']).toMatch(/DISCLUSTER_CLUSTER_ID/);
    expect(proc.received).toHaveLength(0);
  });

  it('does not load @pm2/io outside pm2', async () => {
    const script = [
      `const { Cluster } = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});`,
      'new Cluster({ intents: 1 });',
      "const loaded = Object.keys(require.cache).filter((file) => file.includes('@pm2'));",
      'console.log(JSON.stringify({ loaded }));',
    ].join('\n');
    const proc = spawnNode('-e', [script], { env: { pm_id: undefined } });
    expect((await proc.exited).code).toBe(0);
    expect(JSON.parse(proc.lines[0]!)).toEqual({ loaded: [] });
  });

  it('loads @discordjs/rest and undici only when cluster.rest is first used', async () => {
    const script = [
      `const { Cluster } = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});`,
      'const loaded = () => Object.keys(require.cache).filter((file) => /node_modules[\\\\/](@discordjs[\\\\/]rest|undici)[\\\\/]/.test(file)).length;',
      'const cluster = new Cluster({ intents: 1 });',
      'const before = loaded();',
      'const rest = cluster.rest;',
      'console.log(JSON.stringify({ before, after: loaded() > 0, same: rest === cluster.rest }));',
    ].join('\n');
    const proc = spawnNode('-e', [script], { env: { pm_id: undefined } });
    expect((await proc.exited).code).toBe(0);
    expect(JSON.parse(proc.lines[0]!)).toEqual({ before: 0, after: true, same: true });
  });

  it('loads only the protocol modules a cluster uses, not MASTER and CONTROL ones (config, plans, operator)', async () => {
    // Each zod schema costs V8 heap at load: the whole contract was 2.6 MiB per cluster process.
    const script = [
      `require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});`,
      `require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'discordjs'))});`,
      "const loaded = Object.keys(require.cache).filter((file) => /protocol[\\\\/]dist[\\\\/]/.test(file)).map((file) => path.basename(file, '.js'));",
      'console.log(JSON.stringify(loaded));',
    ].join('\n');
    const proc = spawnNode('-e', [`const path = require('node:path');\n${script}`], {
      env: { pm_id: undefined },
    });
    expect((await proc.exited).code).toBe(0);
    const loaded = JSON.parse(proc.lines[0]!) as string[];
    expect(loaded).toContain('clusterControl');
    for (const unused of ['index', 'config', 'operator', 'fleet', 'clusterPlan', 'sealedToken'])
      expect(loaded).not.toContain(unused);
  });

  it('takes its assignment from CONTROL, validates every message, and never writes the token', async () => {
    const { sim, gateway } = await startSim();
    const bot = uniqueBot('fl');
    const proc = forkCluster({
      DISCLUSTER_CLUSTER_ID: '0',
      TEST_IDENTIFY_WINDOW_MS: '200',
      TEST_STATUS_INTERVAL_MS: '500',
    });
    await waitForMessage(proc, 'hello', { description: 'hello', where: (m) => m.clusterId === 0 });
    const assign = assignMessage({
      epoch: 5,
      shardIds: [0, 1],
      shardCount: 2,
      bot,
      token: TOKEN,
      gateway: gateway as never,
      natsServers: [nats.url],
    });
    await proc.send(assign);
    const ready = await waitForMessage(proc, 'status', {
      where: allShards('ready'),
      description: 'a status with every shard ready',
    });
    expect(ready.message).toMatchObject({ clusterId: 0, epoch: 5 });
    const before = await sim.state();
    expect(before['liveSessions']).toHaveLength(2);

    const errorsBefore = events(proc).filter((e) => e.type === 'error').length;
    const newErrors = (): string[] =>
      events(proc)
        .filter((e) => e.type === 'error')
        .slice(errorsBefore)
        .map((e) => String(e['message']));
    // Another topic is someone else's (pm2 actions, other tools): ignored without a word.
    proc.child.send({ topic: 'something-else', data: { type: 'shutdown' } });
    await proc.send({ ...assign, gateway: { url: 42 } });
    await proc.send({ v: 1, type: 'reboot' });
    await proc.send({ ...assign, epoch: 4 });
    await proc.send({ ...assign, epoch: 5, shardIds: [1] });
    await proc.send({ ...assign, clusterId: 3, clusterIds: [3] });
    await waitFor(() => newErrors().length >= 5, { description: 'five errors' });
    const errors = newErrors();
    expect(errors[0]).toMatch(/malformed message from CONTROL \(assign: gateway\.url/);
    expect(errors[1]).toMatch(
      /malformed message from CONTROL \(type: expected assign, confirm-reply, shutdown, fence or keepalive, got "reboot"/,
    );
    expect(errors[2]).toMatch(/ignored an assignment of epoch 4: this cluster runs epoch 5/);
    expect(errors[3]).toMatch(/changed assignment \(epoch 5: shards \[0, 1\] → \[1\]\).*needs a restart/);
    expect(errors[4]).toMatch(/ignored an assignment for cluster 3/);

    // The same assignment again changes nothing; a newer epoch with the same shards is adopted.
    await proc.send(assign);
    await proc.send({ ...assign, epoch: 6, clusterIds: [0, 1] });
    await waitForMessage(proc, 'status', {
      from: ready.index + 1,
      where: (m) => m.epoch === 6 && allShards('ready')(m),
      description: 'a status under epoch 6',
    });
    const after = await sim.state();
    expect(after['identifies']).toBe(before['identifies']);
    expect(after['liveSessions']).toHaveLength(2);
    expect(newErrors()).toHaveLength(5);

    await proc.send({ v: 1, type: 'shutdown', reason: 'test' });
    expect(await proc.exited).toBe(0);
    const last = proc.received.at(-1);
    expect(last).toMatchObject({ type: 'status', epoch: 6 });
    expect((last as { shards: Array<{ state: string }> }).shards.every((s) => s.state === 'idle')).toBe(true);
    await waitFor(async () => (await sim.state())['liveSessions'].length === 0, {
      description: 'sessions closed at the gateway',
    });

    // Everything the process wrote: every debug and error event, and stderr.
    expect(events(proc).filter((e) => e.type === 'debug').length).toBeGreaterThan(10);
    expect(proc.lines.join('\n')).not.toContain(TOKEN);
    expect(proc.stderr()).not.toContain(TOKEN);
    expect(JSON.stringify(proc.received)).not.toContain(TOKEN);
  });

  it("obeys CONTROL's fence: closes for resume, reports, asks at once, and RESUMEs once confirmed", async () => {
    const { sim, proc, ready } = await readyTwoShardCluster('ff', 2);
    const before = await sim.state();
    const closes4200 = (state: Json): number => state['clientCloses']?.['4200'] ?? 0;
    const debugged = (pattern: RegExp) =>
      events(proc).some((e) => e.type === 'debug' && pattern.test(String(e['message'])));

    // CONTROL could not renew the leases, although this cluster still reaches NATS.
    await proc.send({ v: 1, type: 'fence', reason: 'lease renewal failed' });
    const fenced = await waitForMessage(proc, 'fenced', { from: ready.index, description: 'fenced message' });
    expect(fenced.message).toMatchObject({ clusterId: 0, epoch: 2 });
    await waitForMessage(proc, 'status', {
      from: ready.index,
      where: allShards('fenced'),
      description: 'every shard fenced',
    });
    // Closed with 4200 at the gateway, sessions kept: no live session, nothing ended.
    await waitFor(
      async () => {
        const state = await sim.state();
        return state['liveSessions'].length === 0 && closes4200(state) - closes4200(before) === 2;
      },
      { description: 'both sockets closed with 4200' },
    );
    // stdout and the IPC channel are not ordered with each other: wait, do not assume.
    await waitFor(() => events(proc).some((e) => e.type === 'fenced'), { description: 'fenced event' });
    // The question follows at once: no NATS outage of its own to wait out.
    const confirm = await waitForMessage(proc, 'confirm', {
      from: fenced.index,
      description: 'confirm after the ordered fence',
    });
    expect(confirm.message).toMatchObject({ clusterId: 0, epoch: 2 });
    expect(debugged(/NATS unreachable/)).toBe(false);

    // A second fence while fenced changes nothing; nothing reconnects before CONTROL answers.
    await proc.send({ v: 1, type: 'fence', reason: 'lease renewal failed again' });
    await waitFor(() => debugged(/fence ordered by CONTROL .* while fenced already: nothing to do/), {
      description: 'the second fence seen as a no-op',
    });
    const confirmsSent = () => proc.received.filter((m) => m.type === 'confirm').length;
    const asked = confirmsSent();
    await waitFor(() => confirmsSent() >= asked + 2, { description: 'confirm asked again' });
    expect(proc.received.filter((m) => m.type === 'fenced')).toHaveLength(1);
    const whileFenced = await sim.state();
    expect(whileFenced['liveSessions']).toHaveLength(0);
    expect(closes4200(whileFenced) - closes4200(before)).toBe(2);

    await proc.send({ v: 1, type: 'confirm-reply', epoch: 2, confirmed: true });
    await waitForMessage(proc, 'status', {
      from: confirm.index,
      where: allShards('ready'),
      description: 'ready again after the confirmation',
    });
    await waitFor(() => events(proc).some((e) => e.type === 'unfenced'), { description: 'unfenced event' });
    const after = await sim.state();
    expect(after['liveSessions']).toHaveLength(2);
    expect(after['identifies']).toBe(before['identifies']);
    expect(after['resumes'] - before['resumes']).toBe(2);
    expect(after['violations']).toMatchObject({
      identifyRate: 0,
      duplicateLiveSessions: 0,
      resumeWhileLive: 0,
    });

    // A fence behind a shutdown is ignored: the cluster stops (idle, not fenced) and exits 0.
    const beforeShutdown = proc.received.length;
    await proc.send({ v: 1, type: 'shutdown', reason: 'test' });
    await proc.send({ v: 1, type: 'fence', reason: 'too late' });
    expect(await proc.exited).toBe(0);
    expect(proc.received.slice(beforeShutdown).filter((m) => m.type === 'fenced')).toHaveLength(0);
    const last = proc.received.at(-1) as Json;
    expect(last['shards'].map((shard: Json) => shard['state'])).toEqual(['idle', 'idle']);
    expect(proc.lines.join('\n')).not.toContain(TOKEN);
  });

  it('a fence while a shard waits to reconnect on its own leaves nothing connected, and the confirmation reconnects every shard once', async () => {
    const { sim, proc, ready } = await readyTwoShardCluster('fr', 1);
    const before = await sim.state();
    const debugged = (pattern: RegExp) =>
      events(proc).some((e) => e.type === 'debug' && pattern.test(String(e['message'])));
    // Discord closes shard 0 with 4000: @discordjs/ws marks it idle and reconnects it by itself
    // 500 ms later. CONTROL's fence lands inside that pause.
    const closed = await fetch(`${sim.admin}/shards/0/close?code=4000`, { method: 'POST' });
    expect(closed.status).toBe(200);
    await proc.send({ v: 1, type: 'fence', reason: 'lease renewal failed' });
    const fenced = await waitForMessage(proc, 'fenced', { from: ready.index, description: 'fenced message' });
    await waitForMessage(proc, 'confirm', { from: fenced.index, description: 'confirm after the fence' });
    // The shard's own reconnect came due while fenced: it must not have connected anything.
    await waitFor(() => debugged(/\[shard 0\].*Destroying shard/), {
      description: 'shard 0 destroyed by its close',
    });
    await sleep(3000);
    const whileFenced = await sim.state();
    expect(whileFenced['liveSessions']).toHaveLength(0);
    // The fence landed in the pause (the case under test) when @discordjs/ws found shard 0 idle. On a
    // starved machine it can land after the shard already resumed by itself: the fence then closed
    // that session, and only the RESUME count before the fence differs.
    const landedInPause = debugged(/\[shard 0\].*Tried to destroy a shard that was idle/);
    if (landedInPause) expect(whileFenced['resumes']).toBe(before['resumes']);
    expect(whileFenced['identifies']).toBe(before['identifies']);

    await proc.send({ v: 1, type: 'confirm-reply', epoch: 1, confirmed: true });
    await waitForMessage(proc, 'status', {
      from: fenced.index,
      where: allShards('ready'),
      description: 'every shard ready again after the confirmation',
    });
    await sleep(1500);
    const after = await sim.state();
    expect(after['liveSessions']).toHaveLength(2);
    expect(after['identifies']).toBe(before['identifies']);
    expect(after['resumes'] - whileFenced['resumes']).toBe(2);
    expect(after['violations']).toMatchObject({
      identifyRate: 0,
      duplicateLiveSessions: 0,
      resumeWhileLive: 0,
    });
  });

  it("fences after CONTROL's fenceAfterMs when it is shorter than the own setting, and follows its changes", async () => {
    const { sim, gateway } = await startSim();
    const proxy = await startTcpProxy(nats.port);
    proxies.push(proxy);
    // The fixture's own fenceAfterMs is 10000 ms; CONTROL's lease-derived time is shorter.
    const proc = forkCluster({
      DISCLUSTER_CLUSTER_ID: '0',
      TEST_IDENTIFY_WINDOW_MS: '200',
      TEST_STATUS_INTERVAL_MS: '500',
    });
    await waitForMessage(proc, 'hello', { description: 'hello' });
    const assign = assignMessage({
      epoch: 1,
      shardIds: [0, 1],
      shardCount: 2,
      bot: uniqueBot('fa'),
      token: TOKEN,
      gateway: gateway as never,
      natsServers: [proxy.url('nats')],
      fenceAfterMs: 6000,
    });
    await proc.send(assign);
    await waitForMessage(proc, 'status', { where: allShards('ready'), description: 'ready' });
    const debugLines = () =>
      events(proc)
        .filter((e) => e.type === 'debug')
        .map((e) => String(e['message']));
    await waitFor(
      () => debugLines().includes("fence time now 6000 ms (own setting 10000 ms, CONTROL's 6000)"),
      {
        description: "CONTROL's fence time adopted",
      },
    );
    // A longer time from CONTROL never lengthens the own setting; a later assignment lowers it further.
    await proc.send({ ...assign, epoch: 2, fenceAfterMs: 60_000 });
    await proc.send({ ...assign, epoch: 3, fenceAfterMs: 1500 });
    await waitFor(
      () => debugLines().includes("fence time now 1500 ms (own setting 10000 ms, CONTROL's 1500)"),
      { description: 'the fence time lowered by the later assignment' },
    );
    expect(debugLines()).toContain("fence time now 10000 ms (own setting 10000 ms, CONTROL's 60000)");
    const before = await sim.state();

    proxy.cut('blackhole');
    const fenced = await waitForMessage(proc, 'fenced', { description: 'fenced message', timeoutMs: 30_000 });
    expect(fenced.message).toMatchObject({ clusterId: 0, epoch: 3 });
    await waitFor(() => debugLines().includes('NATS unreachable for 1500 ms: fencing shards'), {
      description: 'fenced after 1500 ms',
    });
    await waitFor(async () => (await sim.state())['liveSessions'].length === 0, {
      description: 'sessions closed at the gateway',
    });

    proxy.restore();
    const confirm = await waitForMessage(proc, 'confirm', {
      from: fenced.index,
      description: 'confirm after NATS is back',
      timeoutMs: 30_000,
    });
    await proc.send({ v: 1, type: 'confirm-reply', epoch: 3, confirmed: true });
    await waitForMessage(proc, 'status', {
      from: confirm.index,
      where: allShards('ready'),
      description: 'ready again after the confirmation',
    });
    const after = await sim.state();
    expect(after['identifies']).toBe(before['identifies']);
    expect(after['resumes'] - before['resumes']).toBe(2);
  });

  // Issue 13 (e): armed from the assignment. A CONTROL that assigns and dies before its first
  // keepalive renews no lease; the cluster must not serve on after those leases expire.
  it('fences when the assignment promises keepalives and none ever comes (CONTROL died right after assigning)', async () => {
    const { sim, gateway } = await startSim();
    const proc = forkCluster({ DISCLUSTER_CLUSTER_ID: '0', TEST_IDENTIFY_WINDOW_MS: '200' });
    await waitForMessage(proc, 'hello', { description: 'hello' });
    const assign = assignMessage({
      epoch: 1,
      shardIds: [0, 1],
      shardCount: 2,
      bot: uniqueBot('ka'),
      token: TOKEN,
      gateway: gateway as never,
      natsServers: [nats.url],
      fenceAfterMs: 1500,
    });
    await proc.send({ ...assign, keepalives: true });
    const fenced = await waitForMessage(proc, 'fenced', {
      description: 'fenced for CONTROL silence',
      timeoutMs: 60_000,
    });
    expect(fenced.message).toMatchObject({ clusterId: 0, epoch: 1 });
    const silence = /no keepalive from CONTROL for \d+ ms/;
    expect(events(proc).some((e) => e.type === 'debug' && silence.test(String(e['message'])))).toBe(true);
    await waitFor(async () => (await sim.state())['liveSessions'].length === 0, {
      description: 'sessions closed at the gateway',
    });
  });
});

describe('fleet mode on a 3-node NATS cluster', () => {
  it("creates every KV bucket with CONTROL's kv_replicas, and 1 replica when CONTROL sends none", async () => {
    const natsCluster = await startNatsCluster({ nodes: 3 });
    const nc = await connect({ servers: [...natsCluster.urls] });
    try {
      const replicasOf = async (bucket: string): Promise<number> =>
        (await (await jetstreamManager(nc)).streams.info(`KV_${bucket}`)).config.num_replicas;
      const run = async (kvReplicas: number | undefined): Promise<string> => {
        const { gateway } = await startSim();
        const bot = uniqueBot('kr');
        const proc = forkCluster({ DISCLUSTER_CLUSTER_ID: '0', TEST_IDENTIFY_WINDOW_MS: '200' });
        await waitForMessage(proc, 'hello', { description: 'hello' });
        await proc.send(
          assignMessage({
            epoch: 1,
            shardIds: [0, 1],
            shardCount: 2,
            bot,
            token: TOKEN,
            gateway: gateway as never,
            natsServers: [...natsCluster.urls],
            ...(kvReplicas !== undefined && { kvReplicas }),
          }),
        );
        await waitForMessage(proc, 'status', {
          where: allShards('ready'),
          description: 'a status with every shard ready',
        });
        await proc.stop();
        return bot;
      };
      const replicated = await run(3);
      for (const bucket of [sessionBucket, identifyBucket, identifyWaitersBucket, budgetBucket])
        expect(await replicasOf(bucket(replicated))).toBe(3);
      const older = await run(undefined);
      expect(await replicasOf(sessionBucket(older))).toBe(1);
    } finally {
      await nc.close();
      await natsCluster.stop();
    }
  }, 180_000);
});
