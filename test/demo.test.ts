import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { FleetStatusSchema, type FleetStatus } from 'discluster-protocol';
import { processesMentioning } from 'discluster-testing';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * Issue 6 "Must show": `npm run demo` run headless until all 32 shards are `ready` in
 * `discluster status --json`, then stopped as a terminal's Ctrl-C stops it, leaving no process.
 * The demo lives in a temporary directory (DISCLUSTER_DEMO_DIR), so a demo someone runs in this
 * checkout is not disturbed.
 */

const ROOT = path.resolve(__dirname, '..');
const CLI_BIN = path.join(ROOT, 'pm2-module-master', 'dist', 'cli', 'discluster.js');
const SHARDS = 32;

// Short: pm2's unix sockets live inside it (~107 bytes at most).
const dir = fs.mkdtempSync('/tmp/dcdemo-');
let demo: ChildProcess | undefined;
let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
const output: string[] = [];

/** SIGINT/SIGTERM to the demo's whole process group (npm, sh, node), as a terminal's Ctrl-C does. */
function signalDemo(signal: NodeJS.Signals): void {
  if (!demo?.pid || demo.exitCode !== null || demo.signalCode !== null) return;
  try {
    process.kill(-demo.pid, signal);
  } catch {
    // Already gone.
  }
}

afterAll(async () => {
  // Also after a failure: the demo's own cleanup first, then its --stop, then the group.
  signalDemo('SIGINT');
  const stoppedInTime = await Promise.race([
    exited?.then(() => true) ?? Promise.resolve(true),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 90_000)),
  ]);
  if (!stoppedInTime) signalDemo('SIGKILL');
  await promisify(execFile)(process.execPath, [path.join(ROOT, 'scripts', 'demo.mjs'), '--stop'], {
    cwd: ROOT,
    env: { ...process.env, DISCLUSTER_DEMO_DIR: dir },
  }).catch(() => undefined);
  if (processesMentioning(dir).length === 0) fs.rmSync(dir, { recursive: true, force: true });
}, 180_000);

async function status(natsUrl: string, bot: string): Promise<FleetStatus> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [CLI_BIN, 'status', '--json', '--timeout-ms', '3000', '--nats-url', natsUrl, '--bot', bot],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  return FleetStatusSchema.parse(JSON.parse(stdout));
}

const readyShards = (fleet: FleetStatus) =>
  fleet.hosts
    .flatMap((host) => host.clusters.flatMap((cluster) => cluster.shards))
    .filter((shard) => shard.state === 'ready')
    .map((shard) => shard.id)
    .sort((a, b) => a - b);

describe('npm run demo', () => {
  it('brings all 32 shards to ready, and Ctrl-C leaves no process behind', { timeout: 600_000 }, async () => {
    demo = spawn('npm', ['run', 'demo', '--', '--headless'], {
      cwd: ROOT,
      // Its own process group, so the test can signal it as a whole (like a terminal).
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        DISCLUSTER_DEMO_DIR: dir,
        // Never `npm ci` here: it would pull node_modules from under the test files running beside this one.
        DISCLUSTER_DEMO_INSTALL: 'never',
      },
    });
    const child = demo;
    exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
    let partial = '';
    const collect = (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      output.push(...lines);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const tail = () => output.slice(-60).join('\n');

    // 1. Headless, the demo prints one `[demo] ready {json}` line once every shard is ready.
    let ready: { ready: number; shards: number; natsUrl: string; bot: string; dir: string } | undefined;
    let ended = false;
    void exited.then(() => (ended = true));
    // Liveness bound only (setup, build and the fleet on a loaded machine), not a performance limit.
    const deadline = Date.now() + 480_000;
    while (!ready) {
      const line = output.find((text) => text.startsWith('[demo] ready {'));
      if (line) ready = JSON.parse(line.slice('[demo] ready '.length));
      else if (ended)
        throw new Error(`the demo exited before every shard was ready\n--- demo output ---\n${tail()}`);
      else if (Date.now() > deadline)
        throw new Error(`the demo did not report every shard ready\n--- demo output ---\n${tail()}`);
      else await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(ready).toMatchObject({ ready: SHARDS, shards: SHARDS, dir });
    // The status table and how to watch the fleet were printed.
    expect(output.some((line) => line.includes(`${SHARDS} of ${SHARDS} shards ready`))).toBe(true);
    expect(output.some((line) => line.includes(`PM2_HOME=${path.join(dir, 'pm2')} npx pm2 monit`))).toBe(
      true,
    );

    // 2. Independently of the demo's own report: all 32 shards `ready` in `discluster status --json`,
    //    on the two active machines; the standby holds none.
    const fleet = await status(ready!.natsUrl, ready!.bot);
    expect(readyShards(fleet)).toEqual(Array.from({ length: SHARDS }, (_, id) => id));
    expect(fleet.master.up).toBe(true);
    const byHost = new Map(fleet.hosts.map((host) => [host.id, host]));
    expect([...byHost.keys()].sort()).toEqual(['host-a', 'host-b', 'host-c']);
    expect(byHost.get('host-c')).toMatchObject({ role: 'standby', clusters: [] });
    // While it runs, its processes are there to be found (so the check below means something).
    expect(processesMentioning(dir).length).toBeGreaterThan(0);

    // 3. Ctrl-C: everything it started stops. npm itself then ends as a Ctrl-C'd program does
    //    (by the signal); the demo script's own success is its last line.
    signalDemo('SIGINT');
    const end = await exited;
    expect(end.code === 0 || end.signal === 'SIGINT', `${JSON.stringify(end)}\n${tail()}`).toBe(true);
    expect(output).toContain('[demo] stopped; nothing of the demo is left running');
    expect(processesMentioning(dir), tail()).toEqual([]);
  });
});
