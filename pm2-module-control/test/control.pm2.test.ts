import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode } from 'discluster-protocol';
import { startNatsServer, waitFor, type NatsServerHandle } from 'discluster-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeMaster } from './master';
import {
  killPm2,
  makePm2Home,
  teardownPm2,
  pm2Cli,
  pm2List,
  pm2Trigger,
  processesMentioning,
  type Pm2Process,
} from './pm2Cli';

/**
 * The module entry under a real pm2 daemon, configured the way an operator does it:
 * `pm2 set discluster-control:<key> <value>` (pm2 writes module_conf.json, restarts the app named
 * `discluster-control` and hands it the section as `process.env['discluster-control']`).
 * `pm2 install <tgz>` itself is exercised in moduleInstall.test.ts. The test plays MASTER.
 */

const MAIN = path.join(__dirname, '..', 'dist', 'main.js');
const BOT_SCRIPT = path.join(__dirname, 'fixtures', 'bot.js');
const NAME = 'discluster-control';
const BOT = 'pmbot';
const HOST = 'host-p';
const NAMESPACE = `discluster-${BOT}`;
const TOKEN = 'test-bot-token-6d4f2a';
const gateway = {
  url: 'wss://gateway.invalid',
  shards: 3,
  session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 1 },
};

let nats: NatsServerHandle;
let master: FakeMaster;
let home: string;
let epoch = 0;

const describeModule = async () => (await pm2List(home)).processes.find((proc) => proc['name'] === NAME);
const outLog = () => {
  try {
    return fs.readFileSync(path.join(home, 'logs', `${NAME}-out.log`), 'utf8');
  } catch {
    return '';
  }
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const clusterProcesses = async (): Promise<Pm2Process[]> =>
  (await pm2List(home)).processes
    .filter((proc) => proc['pm2_env']?.['namespace'] === NAMESPACE)
    .sort((x, y) => String(x['name']).localeCompare(String(y['name'])));

async function assignTwoClusters(): Promise<void> {
  const command = master.assign(HOST, {
    epoch: ++epoch,
    shardCount: 3,
    gateway,
    clusters: [
      { clusterId: 0, shardIds: [0, 1] },
      { clusterId: 1, shardIds: [2] },
    ],
    token: TOKEN,
  });
  expect(await master.command(HOST, command)).toMatchObject({ ok: true, epoch });
  await master.waitForHeartbeat(
    HOST,
    (beat) => beat.clusters.length === 2 && beat.clusters.every((c) => c.state === 'online'),
    { description: 'both clusters online' },
  );
}

beforeAll(async () => {
  nats = await startNatsServer();
  master = await FakeMaster.start(nats.url, BOT);
  home = makePm2Home();
  for (const [key, value] of [
    ['nats_url', nats.url],
    ['bot', BOT],
    ['host_id', HOST],
    ['heartbeat_ms', '200'],
    ['script', BOT_SCRIPT],
  ]) {
    await pm2Cli(home, 'set', `${NAME}:${key}`, value!);
  }
});

afterAll(async () => {
  // Each step runs even if an earlier one fails: nothing may outlive the suite.
  try {
    await master?.close();
    if (home) await teardownPm2(home);
  } finally {
    await nats?.stop();
  }
});

describe('discluster-control under pm2', () => {
  it('reads its pm2 settings and heartbeats', async () => {
    // As the installed module runs (package.json "apps"): pmx off, so pm2 injects no @pm2/io and
    // CONTROL loads its own for its metrics and actions.
    const app = path.join(home, 'control-app.json');
    fs.writeFileSync(app, JSON.stringify({ apps: [{ name: NAME, script: MAIN, pmx: false }] }));
    await pm2Cli(home, 'start', app);
    expect((await describeModule())?.['pm2_env']['pmx']).toBe(false);
    await master.waitForHeartbeat(HOST, () => true, {
      description: 'heartbeat from the pm2-run CONTROL',
      timeoutMs: 20_000,
    });
  });

  it('a bad `pm2 set` value is reported naming the key, and the module stays online', async () => {
    await pm2Cli(home, 'set', `${NAME}:retry_ms`, 'soon');
    await waitFor(() => outLog().includes('retry_ms: must be a whole number'), {
      description: 'config error in the module log',
      timeoutMs: 20_000,
    });
    const restarts = (await describeModule())?.['pm2_env']['restart_time'];
    const beats = master.heartbeats.length;
    await sleep(2_000);
    const proc = await describeModule();
    expect(proc?.['pm2_env']['status']).toBe('online');
    // No crash loop, and no heartbeats from a CONTROL that is not configured.
    expect(proc?.['pm2_env']['restart_time']).toBe(restarts);
    expect(master.heartbeats.length).toBeLessThanOrEqual(beats + 1);
  });

  it('fixing the value with `pm2 set` brings it back', async () => {
    await pm2Cli(home, 'set', `${NAME}:retry_ms`, '500');
    const beats = master.heartbeats.length;
    await waitFor(() => master.heartbeats.length > beats + 2, {
      description: 'heartbeats resume',
      timeoutMs: 20_000,
    });
  });

  it('shows host metrics in pm2 (clusters online, shards ready/total, restarts, identify waits)', async () => {
    await assignTwoClusters();
    const expected = {
      'clusters online': 2,
      'shards ready': 3,
      'shards total': 3,
      restarts: 0,
      'identify waits': 0,
    };
    await waitFor(
      async () => {
        const monitor = (await describeModule())?.['pm2_env']['axm_monitor'] as Pm2Process | undefined;
        return Object.entries(expected).every(([metric, value]) => monitor?.[metric]?.value === value);
      },
      { description: `${JSON.stringify(expected)} in axm_monitor`, timeoutMs: 30_000 },
    );
    const actions = ((await describeModule())?.['pm2_env']['axm_actions'] as Pm2Process[]).map(
      (action) => action['action_name'],
    );
    expect(actions).toEqual(expect.arrayContaining(['status', 'restart-cluster']));
  });

  it('`pm2 trigger discluster-control status` answers with the host report', async () => {
    const report = (await pm2Trigger(home, NAME, 'status')) as Pm2Process;
    expect(report).toMatchObject({ type: 'heartbeat', hostId: HOST, epoch });
    expect(report['clusters'].map((c: Pm2Process) => [c['clusterId'], c['state']])).toEqual([
      [0, 'online'],
      [1, 'online'],
    ]);
    expect(JSON.stringify(report)).not.toContain(TOKEN);
  });

  it('`pm2 trigger discluster-control restart-cluster <id>` restarts that cluster only', async () => {
    const before = await clusterProcesses();
    expect(await pm2Trigger(home, NAME, 'restart-cluster', '1')).toEqual({ ok: true, clusterId: 1 });
    await waitFor(async () => (await clusterProcesses())[1]?.['pm2_env']['status'] === 'online', {
      description: 'cluster 1 online again',
    });
    const after = await clusterProcesses();
    expect(after[0]!['pid']).toBe(before[0]!['pid']);
    expect(after[1]!['pid']).not.toBe(before[1]!['pid']);
    // Shut down over IPC (resumable), not killed.
    const log = fs.readFileSync(path.join(home, 'logs', `${NAMESPACE}-cluster-1-out.log`), 'utf8');
    expect(log).toContain('"type":"shutdown"');
    for (const bad of ['x', '42'])
      expect(await pm2Trigger(home, NAME, 'restart-cluster', bad)).toMatchObject({
        ok: false,
        error: { code: bad === 'x' ? ErrorCode.InvalidClusterId : ErrorCode.InvalidOption },
      });
  });

  it('`pm2 set` restarts the module; the new boot adopts the running clusters (and uses `cores`)', async () => {
    const before = await clusterProcesses();
    const oldInstance = master.lastHeartbeat(HOST)!.instanceId;
    await pm2Cli(home, 'set', `${NAME}:cores`, '3');
    const beat = await master.waitForHeartbeat(HOST, (b) => b.instanceId !== oldInstance, {
      description: 'heartbeat of the restarted module',
      timeoutMs: 30_000,
    });
    expect(beat.cores).toBe(3);
    // The clusters kept running while CONTROL restarted; MASTER re-sends the plan to the new boot.
    await assignTwoClusters();
    const after = await clusterProcesses();
    expect(after.map((proc) => proc['pid'])).toEqual(before.map((proc) => proc['pid']));
    expect(after.map((proc) => proc['pm2_env']['restart_time'])).toEqual(
      before.map((proc) => proc['pm2_env']['restart_time']),
    );
    await waitFor(() => outLog().includes('adopting a running cluster process'), {
      description: 'adoption logged',
    });
    for (const shardId of [0, 1, 2])
      expect((await master.leaseOf(3, shardId))?.instanceId).toBe(beat.instanceId);
  });

  it('leaves no process behind once torn down', async () => {
    expect((await master.command(HOST, { v: 1, type: 'stop-all', reason: 'test over' })).ok).toBe(true);
    await pm2Cli(home, 'delete', NAME);
    await killPm2(home);
    await waitFor(() => processesMentioning(home).length === 0, {
      description: `no process of ${home} left`,
      timeoutMs: 15_000,
    });
  });
});
