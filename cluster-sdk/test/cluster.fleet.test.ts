/**
 * Fleet mode over a plain IPC channel (the test forks the bot and plays CONTROL), without pm2:
 * the contract's validation rules, the token's secrecy in every line the process writes, and the
 * errors a bot gets when it is not started by CONTROL. The same flows under a real pm2 daemon are
 * in cluster.pm2.test.ts.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { CLUSTER_CONTROL_TOPIC, type ClusterToControl } from 'discluster-protocol';
import {
  spawnNode,
  startDiscordSimProcess,
  startNatsServer,
  stopAll,
  waitFor,
  type DiscordSimProcess,
  type NatsServerHandle,
} from 'discluster-testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { allShards, assignMessage, waitForMessage, type ControlPeer } from './control';
import { uniqueBot } from './helpers';

const FIXTURE = path.join(__dirname, 'fixtures', 'fleetCluster.js');
const TOKEN = 'fleet-ipc-secret-TOKEN-4b1d9e';

let nats: NatsServerHandle;
const sims: DiscordSimProcess[] = [];
const children: ForkedCluster[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
});
afterEach(async () => {
  for (const child of children.splice(0)) await child.stop();
  await stopAll();
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

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON lines written by the fixture
type Json = Record<string, any>;

function events(proc: { lines: readonly string[] }): Json[] {
  return proc.lines.flatMap((line) => {
    try {
      return [JSON.parse(line) as Json];
    } catch {
      return [];
    }
  });
}

async function startSim(): Promise<{ sim: DiscordSimProcess; gateway: Json }> {
  const sim = await startDiscordSimProcess({
    token: TOKEN,
    guilds: 100,
    shards: 2,
    'max-concurrency': 2,
    'identify-window-ms': 200,
    'heartbeat-interval-ms': 1000,
  });
  sims.push(sim);
  const response = await fetch(`${sim.rest}/gateway/bot`, { headers: { authorization: `Bot ${TOKEN}` } });
  return { sim, gateway: (await response.json()) as Json };
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
    expect(errors[1]).toMatch(/malformed message from CONTROL \(type: expected assign/);
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
});
