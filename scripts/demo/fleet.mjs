// The demo fleet of `npm run demo` (scripts/demo.mjs): where it lives, what it runs, how it stops.
// Only Node built-ins and the pm2 CLI of node_modules; nothing here touches ~/.pm2.
//
// Process tree (every daemon started by the demo, every app ended by `pm2 kill` of its home):
//
//   pm2 daemon of <dir>/pm2                 the demo home: `PM2_HOME=<dir>/pm2 npx pm2 monit`
//     nats-server                           JetStream, store in <dir>/nats
//     discord-sim                           20,000 guilds, 32 shards, max_concurrency 4
//     discluster-master                     MASTER (foreground bin), status page on http_port
//     control-host-a / -b / -c              CONTROLs (foreground bin via host-control.js); each
//                                           drives the pm2 daemon of its own machine home:
//   pm2 daemon of <dir>/hosts/host-a        stand-in machine (active)
//     discluster-demo-cluster-0 … 3         examples/demo-bot, 4 shards each
//   pm2 daemon of <dir>/hosts/host-b        stand-in machine (active)
//     discluster-demo-cluster-4 … 7
//   pm2 daemon of <dir>/hosts/host-c        stand-in machine (standby: no clusters until a failover)
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { root } from '../setup.mjs';

export const BOT = 'demo';
export const SHARDS = 32;
export const GUILDS = 20_000;
export const MAX_CONCURRENCY = 4;
/** Must equal `identifyWindowMs` in examples/demo-bot/bot.ts. */
export const IDENTIFY_WINDOW_MS = 1000;
/** MESSAGE_CREATE events per second the demo keeps flowing through discord-sim. */
export const TRAFFIC_PER_SECOND = 50;
/** discord-sim's default bot token (it gets no --token): a public test value, not a secret. */
export const SIM_TOKEN = 'discord-sim-token';

export const HOSTS = [
  { id: 'host-a', role: 'active' },
  { id: 'host-b', role: 'active' },
  { id: 'host-c', role: 'standby' },
];

const PM2_BIN = path.join(root, 'node_modules', 'pm2', 'bin', 'pm2');
export const CLI_BIN = path.join(root, 'pm2-module-master', 'dist', 'cli', 'discluster.js');
const MASTER_BIN = path.join(root, 'pm2-module-master', 'dist', 'main.js');
const SIM_BIN = path.join(root, 'discord-sim', 'dist', 'cli.js');
const HOST_CONTROL = path.join(root, 'scripts', 'demo', 'host-control.js');
export const BOT_SCRIPT = path.join(root, 'examples', 'dist', 'demo-bot', 'bot.js');
/** Files `tsc -b` builds that the demo runs; npm links the bins before they exist on a fresh clone. */
export const BUILT_BINS = [
  CLI_BIN,
  MASTER_BIN,
  SIM_BIN,
  path.join(root, 'pm2-module-control', 'dist', 'main.js'),
];

// pm2's sockets live in each home; a unix socket path may not exceed ~107 bytes.
const SOCKET_PATH_LIMIT = 100;

/**
 * Where the demo keeps everything: `DISCLUSTER_DEMO_DIR`, else `.demo` in the project (gitignored).
 * A project path too long for pm2's unix sockets gets a short directory in the temp dir instead.
 */
export function demoDir() {
  const fromEnv = process.env.DISCLUSTER_DEMO_DIR;
  if (fromEnv) return path.resolve(fromEnv);
  const inProject = path.join(root, '.demo');
  if (longestSocket(inProject).length <= SOCKET_PATH_LIMIT) return inProject;
  return path.join(os.tmpdir(), `discluster-demo-${process.getuid?.() ?? 'user'}`);
}

export function longestSocket(dir) {
  return path.join(dir, 'hosts', 'host-a', 'rpc.sock');
}

export function paths(dir) {
  return {
    dir,
    demoHome: path.join(dir, 'pm2'),
    hostHome: (id) => path.join(dir, 'hosts', id),
    natsStore: path.join(dir, 'nats'),
    tokenFile: path.join(dir, 'secrets', 'token'),
    appsFile: path.join(dir, 'apps.json'),
    lockFile: path.join(dir, 'demo.pid'),
    /** What a new run deletes first: only what the demo itself creates (DISCLUSTER_DEMO_DIR may hold more). */
    created: ['pm2', 'hosts', 'nats', 'secrets', 'apps.json'].map((name) => path.join(dir, name)),
  };
}

/** A path as the user would type it from the project root (absolute when outside it). */
export function shown(file) {
  return file.startsWith(root + path.sep) ? path.relative(root, file) : file;
}

/** Every pm2 home of the demo: the demo home first, then the machines. */
export function homes(p) {
  return [p.demoHome, ...HOSTS.map((host) => p.hostHome(host.id))];
}

/**
 * The environment for the pm2 CLI and so for its daemon and every app: only what they need, so no
 * variable of the user's shell (a token, a `DISCLUSTER_*` setting) leaks into pm2's process lists.
 */
export function pm2Env(home) {
  const env = {};
  for (const key of ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'])
    if (process.env[key] !== undefined) env[key] = process.env[key];
  return { ...env, PM2_HOME: home, PM2_DISCRETE_MODE: 'true', PM2_DISABLE_VERSION_CHECK: 'true' };
}

/** Runs the pm2 CLI against `home`; resolves with `{ code, stdout, stderr }`, never rejects. */
export function pm2(home, args, { timeoutMs = 120_000 } = {}) {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [PM2_BIN, ...args],
      { cwd: root, env: pm2Env(home), timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** The pid of the live pm2 daemon of `home`, or undefined. */
export function daemonPid(home) {
  let pid;
  try {
    pid = Number(fs.readFileSync(path.join(home, 'pm2.pid'), 'utf8'));
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    return /pm2|God Daemon/i.test(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The pm2 apps of the demo home (written to apps.json and started with `pm2 start`). */
export function demoApps({ p, natsServer, ports }) {
  const natsUrl = `nats://127.0.0.1:${ports.nats}`;
  const node = { interpreter: process.execPath, cwd: root, merge_logs: true, vizion: false };
  return [
    {
      name: 'nats-server',
      script: natsServer,
      interpreter: 'none',
      args: ['-a', '127.0.0.1', '-p', String(ports.nats), '-js', '-sd', p.natsStore, '-n', 'discluster-demo'],
      cwd: root,
      // JetStream shuts down gracefully on SIGINT, but not instantly.
      kill_timeout: 10_000,
      pmx: false,
      vizion: false,
      merge_logs: true,
    },
    {
      ...node,
      name: 'discord-sim',
      script: SIM_BIN,
      args: [
        '--port',
        String(ports.sim),
        '--guilds',
        String(GUILDS),
        '--shards',
        String(SHARDS),
        '--max-concurrency',
        String(MAX_CONCURRENCY),
        '--identify-window-ms',
        String(IDENTIFY_WINDOW_MS),
        // Discord's 41.25 s would leave `ping` unknown for most of a short demo.
        '--heartbeat-interval-ms',
        '10000',
        '--log-level',
        'info',
      ],
      pmx: false,
    },
    {
      ...node,
      name: 'discluster-master',
      script: MASTER_BIN,
      pmx: false,
      kill_timeout: 10_000,
      env: {
        DISCLUSTER_NATS_URL: natsUrl,
        DISCLUSTER_BOT: BOT,
        // A file, never the token itself: pm2 shows every app's environment (promise 4).
        DISCLUSTER_TOKEN_FILE: p.tokenFile,
        DISCLUSTER_DISCORD_API: `http://127.0.0.1:${ports.sim}/api/v10`,
        DISCLUSTER_EXPECTED_HOSTS: String(HOSTS.length),
        DISCLUSTER_WAIT_FOR_HOSTS_MS: '30000',
        // Short, so a stopped machine's shards move within seconds in the demo.
        DISCLUSTER_HOST_TIMEOUT_MS: '6000',
        DISCLUSTER_LEASE_MS: '10000',
        DISCLUSTER_HTTP_PORT: String(ports.http),
        DISCLUSTER_LOG_LEVEL: 'info',
      },
    },
    ...HOSTS.map((host) => ({
      ...node,
      name: `control-${host.id}`,
      script: HOST_CONTROL,
      pmx: false,
      kill_timeout: 10_000,
      // The machine's pm2 daemon and clusters are not CONTROL's to take down when pm2 stops it
      // (a real CONTROL restarts while its clusters keep serving).
      treekill: false,
      env: {
        DEMO_HOST_PM2_HOME: p.hostHome(host.id),
        PM2_DISCRETE_MODE: 'true',
        PM2_DISABLE_VERSION_CHECK: 'true',
        DISCLUSTER_NATS_URL: natsUrl,
        DISCLUSTER_BOT: BOT,
        DISCLUSTER_HOST_ID: host.id,
        DISCLUSTER_ROLE: host.role,
        DISCLUSTER_SCRIPT: BOT_SCRIPT,
        // Same machine, same load: equal weights, so the two active hosts get 16 shards each.
        DISCLUSTER_CORES: '2',
        DISCLUSTER_HEARTBEAT_MS: '1000',
        DISCLUSTER_RETRY_MS: '2000',
        DISCLUSTER_LOG_LEVEL: 'info',
      },
    })),
  ];
}

/** Pids of live processes whose command line or environment mentions `needle` (skips this one). */
export function processesMentioning(needle) {
  const found = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const environ = fs.readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (cmdline.includes(needle) || environ.includes(needle)) found.push(Number(entry));
    } catch {
      // Exited meanwhile, or not ours to read.
    }
  }
  return found;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** `pm2 kill` of one home, then a SIGTERM to its daemon if it is still alive. */
async function killHome(home, log) {
  if (!daemonPid(home)) return;
  log(`stopping the pm2 daemon of ${shown(home)}`);
  await pm2(home, ['kill'], { timeoutMs: 60_000 });
  // Safety net: SIGTERM (never SIGKILL, which would orphan its apps) to a daemon still alive.
  const pid = daemonPid(home);
  if (pid) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // Gone meanwhile.
    }
  }
}

/**
 * Stops everything the demo runs, in an order that lets each part stop cleanly: the CONTROLs first
 * (a CONTROL would otherwise restart a cluster that pm2 kill just stopped, and any pm2 call
 * without a daemon spawns a new one), then the machines' daemons with their clusters (while NATS
 * is still up, so they save their sessions), then MASTER and discord-sim, and NATS last (`pm2
 * kill` stops a home's apps all at once, and MASTER would wait for a NATS that is gone).
 */
export async function stopFleet(p, log = () => {}) {
  // More than one pass only if a pm2 call raced the first one and spawned a daemon again.
  for (let pass = 0; pass < 3 && homes(p).some((home) => daemonPid(home)); pass++) {
    if (daemonPid(p.demoHome))
      await pm2(p.demoHome, ['delete', ...HOSTS.map((host) => `control-${host.id}`)], { timeoutMs: 30_000 });
    await Promise.all(
      homes(p)
        .slice(1)
        .map((home) => killHome(home, log)),
    );
    if (daemonPid(p.demoHome)) {
      log('stopping MASTER and discord-sim, then NATS');
      await pm2(p.demoHome, ['delete', 'discluster-master', 'discord-sim'], { timeoutMs: 30_000 });
    }
    await killHome(p.demoHome, log);
  }
  // pm2 kill returns when the daemon says so; give the last processes a moment to be gone.
  for (let i = 0; i < 100 && leftovers(p).length > 0; i++) await sleep(100);
  return endByPid(p, log);
}

function signal(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {
    // Gone meanwhile.
  }
}

const isPm2Daemon = (pid) => {
  try {
    return /God Daemon/.test(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return false;
  }
};

/**
 * Ends by pid whatever of the demo is still alive after pm2 had its chance (a daemon that never
 * answered, an app it lost track of, a stopFleet that failed half-way): SIGTERM, then SIGKILL.
 * Daemons first, so that none restarts an app ended under it. Returns the pids still alive.
 */
export async function endByPid(p, log = () => {}) {
  for (const sig of ['SIGTERM', 'SIGKILL', 'SIGKILL']) {
    const left = leftovers(p);
    if (left.length === 0) return [];
    log(`ending ${left.length} process(es) of the demo with ${sig}: ${left.join(', ')}`);
    const daemons = left.filter(isPm2Daemon);
    for (const pid of daemons) signal(pid, sig);
    for (const pid of left) if (!daemons.includes(pid)) signal(pid, sig);
    for (let i = 0; i < 100 && leftovers(p).length > 0; i++) await sleep(100);
  }
  return leftovers(p);
}

/**
 * Processes of this demo still alive: every pm2 daemon and app of a demo home carries PM2_HOME
 * (under the demo directory) in its environment, and nats-server names its store on its
 * command line. The launcher itself is skipped, and so are shells, `pm2 monit` clients and log
 * viewers a user opened with such a PM2_HOME or path: only the demo's own daemons and their apps
 * count (endByPid ends exactly these).
 */
export function leftovers(p) {
  // With the separator: a sibling directory (`.demo2` beside `.demo`) is another demo's.
  return processesMentioning(p.dir + path.sep).filter((pid) => {
    try {
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
      return (
        cmdline.includes(`\0-sd\0${p.natsStore}\0`) ||
        /God Daemon/.test(cmdline) ||
        environ.includes('\0pm_id=') ||
        environ.startsWith('pm_id=')
      );
    } catch {
      return false;
    }
  });
}
