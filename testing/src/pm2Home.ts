/**
 * Private pm2 daemons for tests, driven through the pm2 CLI in child processes: the test process
 * never requires pm2, so its PM2_HOME-at-require-time constants cannot leak between suites. Every
 * daemon lives in its own temporary PM2_HOME and is ended by its pid, never by name.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const PM2_BIN = path.join(path.dirname(require.resolve('pm2/package.json')), 'bin', 'pm2');

/** Environment for anything that should talk to the daemon of `home`. */
export function pm2Env(home: string): Record<string, string> {
  return { PM2_HOME: home, PM2_DISCRETE_MODE: 'true', PM2_DISABLE_VERSION_CHECK: 'true' };
}

/** A short private PM2_HOME (unix socket paths are limited to ~107 bytes). */
export function makePm2Home(): string {
  return fs.mkdtempSync('/tmp/pm2c-');
}

/** Runs the pm2 CLI against `home`. */
export async function pm2Cli(home: string, ...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [PM2_BIN, ...args], {
    env: { ...process.env, ...pm2Env(home) },
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- pm2's descriptions are loosely typed
export type Pm2Process = Record<string, any>;

/** `pm2 jlist`, parsed; also returns the raw text (to search it for secrets). */
export async function pm2List(home: string): Promise<{ processes: Pm2Process[]; raw: string }> {
  const raw = await pm2Cli(home, 'jlist');
  const start = raw.indexOf('[');
  return { processes: JSON.parse(raw.slice(start)) as Pm2Process[], raw };
}

// Runs in a child: connects, listens for the action's `axm:reply` on the bus, then sends the action.
// `pm2 trigger` itself opens its bus and learns how many replies to expect only after sending, so
// under load a quick reply can be missed and the CLI then waits forever (pm2 issue #3786).
const TRIGGER_SCRIPT = `
const pm2 = require(process.env.TRIGGER_PM2);
const { TRIGGER_NAME: name, TRIGGER_ACTION: action, TRIGGER_PARAM: param } = process.env;
const fail = (code, why) => { process.stderr.write(String(why)); process.exit(code); };
pm2.connect((error) => {
  if (error) fail(2, error);
  pm2.launchBus((busError, bus) => {
    if (busError) fail(2, busError);
    bus.on('axm:reply', (packet) => {
      if (packet.process.name !== name || packet.data.action_name !== action) return;
      process.stdout.write(JSON.stringify(packet.data.return === undefined ? null : packet.data.return));
      process.exit(0);
    });
    pm2.msgProcess({ name, msg: action, ...(param === undefined ? {} : { opts: param }) }, (sendError, data) => {
      if (sendError) fail(3, sendError);
      if (data && data.process_count === 0) fail(4, 'no process received the action');
    });
  });
});
`;

/**
 * What `pm2 trigger <name> <action> [param]` does, through pm2's API in a child process (so the
 * test process never requires pm2), bounded: a reply that never comes fails the call.
 */
export async function pm2Trigger(
  home: string,
  name: string,
  action: string,
  param?: string,
): Promise<unknown> {
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', TRIGGER_SCRIPT], {
    env: {
      ...process.env,
      ...pm2Env(home),
      TRIGGER_PM2: require.resolve('pm2'),
      TRIGGER_NAME: name,
      TRIGGER_ACTION: action,
      ...(param === undefined ? {} : { TRIGGER_PARAM: param }),
    },
    timeout: 30_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout) as unknown;
}

/** Ends the daemon of `home` and every app it runs; safe if there is none. */
export async function killPm2(home: string): Promise<void> {
  if (fs.existsSync(path.join(home, 'pm2.pid'))) await pm2Cli(home, 'kill').catch(() => undefined);
  // Safety net: SIGTERM (never SIGKILL, which would orphan the apps) to a daemon still alive.
  let pid = NaN;
  try {
    pid = Number(fs.readFileSync(path.join(home, 'pm2.pid'), 'utf8'));
  } catch {
    // No pid file: no daemon.
  }
  if (Number.isInteger(pid) && pid > 0) {
    try {
      if (/pm2|God Daemon/i.test(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')))
        process.kill(pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
  }
}

/**
 * Kills a whole stand-in machine at once: SIGKILL to every process whose command line or
 * environment names `home` (its pm2 daemon, its apps, and a CONTROL started with its PM2_HOME),
 * as if the power went. Resolves once they are gone.
 */
export async function killMachine(home: string): Promise<number[]> {
  const pids = processesMentioning(home);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  const deadline = Date.now() + 10_000;
  while (processesMentioning(home).length > 0 && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 50));
  return pids;
}

/** Ends the daemon of `home`, waits until none of its processes is left, then deletes `home`. */
export async function teardownPm2(home: string): Promise<void> {
  await killPm2(home);
  const deadline = Date.now() + 15_000;
  while (processesMentioning(home).length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (processesMentioning(home).length === 0) fs.rmSync(home, { recursive: true, force: true });
}

/**
 * Pids of live processes whose command line or environment mentions `needle` (the end-of-suite
 * `ps` check: every app of a daemon carries its PM2_HOME in its environment).
 */
export function processesMentioning(needle: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const environ = fs.readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (cmdline.includes(needle) || environ.includes(needle)) found.push(Number(entry));
    } catch {
      // Exited meanwhile.
    }
  }
  return found;
}
