// Shared by bench/sdk/dispatch.mjs and bench/sdk/ipc.mjs: child tracking (every process is stopped by
// pid, also on failure), /proc sampling, machine facts, statistics.
import { fork, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '..', '..');
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const benchStart = Date.now();
export function log(message) {
  const s = Math.round((Date.now() - benchStart) / 1000);
  console.log(
    `[${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}] ${message}`,
  );
}

// ---- scheduling priority ------------------------------------------------------------------------

/** Nice value for every process of the bench (needs root; ignored otherwise). */
export const NICE = -10;

/**
 * Gives a process the bench's priority; returns the priority it has afterwards. A child in its own
 * session (detached) also forms its own autogroup, whose nice is what weighs against other
 * sessions' processes under Linux autogroup scheduling.
 */
export function applyNice(pid, ownSession = false) {
  try {
    os.setPriority(pid, NICE);
  } catch {
    // Not permitted (not root): normal priority.
  }
  if (ownSession) {
    try {
      fs.writeFileSync(`/proc/${pid}/autogroup`, String(NICE));
    } catch {
      // No autogroup scheduling, or not permitted.
    }
  }
  try {
    return os.getPriority(pid);
  } catch {
    return null;
  }
}

// ---- children: tracked, stopped by pid ----------------------------------------------------------

const children = new Set();

/** When set (--cpu-prof DIR), every forked child writes a V8 CPU profile there when it exits. */
let profileDir = null;
export function setProfileDir(dir) {
  profileDir = dir ? path.resolve(dir) : null;
  if (profileDir) fs.mkdirSync(profileDir, { recursive: true });
}
/** Extra cleanups (nats-server, discord-sim handles from discluster-testing) run on failure too. */
const cleanups = [];

export function onCleanup(fn) {
  cleanups.push(fn);
}

/**
 * Forks a Node script with an IPC channel, in its own session, at the bench priority. Messages with
 * an `id` answer `request()`; others go to `handle.messages` and `onMessage` listeners.
 */
export function forkChild(script, args, name) {
  const child = fork(script, args, {
    cwd: root,
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    detached: true,
    // The bench runs the built code; source maps only cost startup time.
    execArgv: profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--cpu-prof-interval=250'] : [],
  });
  const handle = {
    child,
    name,
    pid: child.pid,
    exited: false,
    stderr: '',
    priority: child.pid ? applyNice(child.pid, true) : null,
    pending: new Map(),
    nextId: 1,
    listeners: new Set(),
  };
  handle.exit = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      handle.exited = true;
      children.delete(handle);
      for (const [, { reject }] of handle.pending)
        reject(new Error(`${name} exited (${code ?? signal}): ${handle.stderr.slice(-2000)}`));
      handle.pending.clear();
      resolve({ code, signal });
    });
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    handle.stderr = (handle.stderr + chunk).slice(-16000);
  });
  child.on('message', (message) => {
    if (message && typeof message.id === 'number' && handle.pending.has(message.id)) {
      handle.pending.get(message.id).resolve(message);
      handle.pending.delete(message.id);
      return;
    }
    for (const listener of handle.listeners) listener(message);
  });
  handle.send = (message) =>
    new Promise((resolve, reject) => {
      if (handle.exited) return reject(new Error(`${name} has exited`));
      child.send(message, (error) => (error ? reject(error) : resolve()));
    });
  handle.request = (message, timeoutMs = 30_000) =>
    new Promise((resolve, reject) => {
      if (handle.exited) return reject(new Error(`${name} has exited: ${handle.stderr.slice(-2000)}`));
      const id = handle.nextId++;
      const timer = setTimeout(() => {
        handle.pending.delete(id);
        reject(new Error(`${name}: no answer to ${message.cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      handle.pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      child.send({ ...message, id }, (error) => {
        if (error) {
          clearTimeout(timer);
          handle.pending.delete(id);
          reject(error);
        }
      });
    });
  /** Resolves with the first message matching `predicate`, rejects on exit or timeout. */
  handle.waitFor = (predicate, timeoutMs = 60_000, what = 'a message') =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        handle.listeners.delete(listener);
        reject(
          new Error(`${name}: no ${what} within ${timeoutMs} ms. stderr: ${handle.stderr.slice(-2000)}`),
        );
      }, timeoutMs);
      const listener = (message) => {
        if (!predicate(message)) return;
        clearTimeout(timer);
        handle.listeners.delete(listener);
        resolve(message);
      };
      handle.listeners.add(listener);
      void handle.exit.then(({ code, signal }) => {
        clearTimeout(timer);
        handle.listeners.delete(listener);
        reject(new Error(`${name} exited (${code ?? signal}) before ${what}: ${handle.stderr.slice(-2000)}`));
      });
    });
  children.add(handle);
  return handle;
}

/** Asks the child to stop (a message, then SIGTERM), SIGKILL after `graceMs`; by pid only. */
export async function stopChild(handle, graceMs = 8000) {
  if (handle.exited) return handle.exit;
  try {
    if (handle.child.connected) handle.child.send({ cmd: 'stop' }, () => {});
  } catch {
    // channel gone
  }
  const term = setTimeout(() => {
    try {
      process.kill(handle.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }, graceMs / 2);
  const kill = setTimeout(() => {
    try {
      process.kill(handle.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, graceMs);
  const status = await handle.exit;
  clearTimeout(term);
  clearTimeout(kill);
  return status;
}

export async function stopEverything() {
  await Promise.all([...children].map((handle) => stopChild(handle, 4000)));
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch (error) {
      log(`cleanup failed: ${error?.message ?? error}`);
    }
  }
}

process.on('exit', () => {
  for (const handle of children) {
    try {
      process.kill(handle.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    log(`${signal}: stopping every process this bench started`);
    void stopEverything().finally(() => process.exit(130));
  });
}

// ---- /proc sampling -------------------------------------------------------------------------------

export const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds (user + system, every thread) a process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** CPU seconds every process on the machine has used so far (/proc/stat). */
export function machineBusySeconds() {
  const fields = fs
    .readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy = fields.slice(0, 8).reduce((a, b) => a + b, 0) - fields[3] - fields[4];
  return busy / CLK_TCK;
}

/**
 * CPU of some processes between now and the call of the returned function (seconds and % of one
 * core), and what every other process on the machine used meanwhile.
 */
export function cpuMeter(pids) {
  const startedAt = performance.now();
  const start = pids.map(cpuSeconds);
  const self = process.cpuUsage();
  const machine = machineBusySeconds();
  return () => {
    const wall = (performance.now() - startedAt) / 1000;
    const used = pids.map((pid, i) => cpuSeconds(pid) - start[i]);
    const selfUsage = process.cpuUsage(self);
    const ours = used.reduce((a, b) => a + b, 0) + (selfUsage.user + selfUsage.system) / 1e6;
    const others = Math.max(0, machineBusySeconds() - machine - ours);
    return {
      wallS: round(wall, 3),
      cpuS: used.map((s) => round(s, 3)),
      pct: used.map((s) => round((100 * s) / wall, 1)),
      benchPct: round((100 * (selfUsage.user + selfUsage.system)) / 1e6 / wall, 1),
      otherPct: round((100 * others) / wall, 1),
    };
  };
}

/** Waits (bounded) until processes outside the bench use at most `maxPct` of a core. */
export async function waitForQuietMachine(waitMs, maxPct = 15, ourPids = []) {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const meter = cpuMeter(ourPids);
    await sleep(1000);
    const { otherPct } = meter();
    if (otherPct <= maxPct) return otherPct;
    if (Date.now() >= deadline) {
      log(`  machine still busy (others use ${otherPct}% of a core); measuring anyway`);
      return otherPct;
    }
    log(`  waiting for a quiet machine: others use ${otherPct}% of a core`);
  }
}

export function memoryMiB(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssMiB: round(kib('VmRSS') / 1024, 1), hwmMiB: round(kib('VmHWM') / 1024, 1) };
  } catch {
    return null;
  }
}

// ---- figures ----------------------------------------------------------------------------------------

export function round(value, digits = 0) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return null;
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export function median(values) {
  const sorted = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Nearest-rank percentile of a sorted numeric array (Float64Array or array). */
export function percentileSorted(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1];
}

export function fmt(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  if (typeof value !== 'number') return String(value);
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function packageVersion(name) {
  for (const dir of [
    path.join(root, 'node_modules', name),
    path.join(root, 'cluster-sdk', 'node_modules', name),
  ]) {
    try {
      return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
    } catch {
      // try the next
    }
  }
  return null;
}

function workspaceVersion(dir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, dir, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

function natsServerVersion() {
  for (const bin of [process.env.NATS_SERVER_BIN, '/usr/sbin/nats-server', '/usr/bin/nats-server']) {
    if (!bin) continue;
    const out = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    if (out.status === 0) return out.stdout.trim();
  }
  return null;
}

/** Machine and software facts recorded with every result. */
export function machineFacts() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  return {
    date: new Date().toISOString(),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: round(os.totalmem() / 1024 ** 3, 1),
    os: `${os.type()} ${os.release()}`,
    loadAverageAtStart: os.loadavg().map((v) => round(v, 2)),
    node: process.version,
    nice: NICE,
    packages: {
      'discluster-sdk': workspaceVersion('cluster-sdk'),
      'discluster-protocol': workspaceVersion('protocol'),
      'discord-sim': workspaceVersion('discord-sim'),
      '@discordjs/ws': packageVersion('@discordjs/ws'),
      '@nats-io/transport-node': packageVersion('@nats-io/transport-node'),
      '@nats-io/kv': packageVersion('@nats-io/kv'),
      ws: packageVersion('ws'),
      'zlib-sync': packageVersion('zlib-sync'),
      zod: packageVersion('zod'),
      'nats-server': natsServerVersion(),
    },
    // Which SDK code ran: a hash of every built file (the SDK may be rebuilt by others meanwhile).
    sdkBuild: sdkBuildFingerprint(),
  };
}

/**
 * A fingerprint of the built SDK (cluster-sdk/dist/**\/*.js and protocol/dist/**\/*.js): one combined hash
 * and one per file, with each file's mtime, so a result says which build ran and a rebuild during a
 * run shows.
 */
export function sdkBuildFingerprint() {
  const files = {};
  const walk = (dir) => {
    let entries = [];
    try {
      entries = fs.readdirSync(path.join(root, dir), { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith('.js')) {
        const file = path.join(root, rel);
        files[rel] = {
          sha256: createHash('sha256').update(fs.readFileSync(file)).digest('hex').slice(0, 12),
          mtime: fs.statSync(file).mtime.toISOString(),
        };
      }
    }
  };
  walk(path.join('cluster-sdk', 'dist'));
  walk(path.join('protocol', 'dist'));
  const combined = createHash('sha256');
  for (const rel of Object.keys(files).sort()) combined.update(`${rel}:${files[rel].sha256}\n`);
  return { combined: combined.digest('hex').slice(0, 12), files };
}

/** Files whose hash differs between two fingerprints (added or removed files included). */
export function changedFiles(before, after) {
  if (!before?.files || !after?.files) return [];
  const names = new Set([...Object.keys(before.files), ...Object.keys(after.files)]);
  return [...names].filter((name) => before.files[name]?.sha256 !== after.files[name]?.sha256).sort();
}

/** The benchmarks run the built packages: stop early, with the fix, when a build is missing. */
export function requireBuilt() {
  const needed = [
    'cluster-sdk/dist/index.js',
    'protocol/dist/index.js',
    'testing/dist/index.js',
    'discord-sim/dist/cli.js',
  ];
  const missing = needed.filter((file) => !fs.existsSync(path.join(root, file)));
  if (missing.length > 0)
    throw new Error(`not built: ${missing.join(', ')}. Run \`npm run build\` (tsc -b) first.`);
}

/** Loads discluster-testing's built helpers (CommonJS). */
export async function testingHelpers() {
  const mod = await import(path.join(root, 'testing', 'dist', 'index.js'));
  return mod.default ?? mod;
}

// ---- CPU cap (a cgroup with a CFS quota) --------------------------------------------------------

/**
 * A cgroup of the bench's own with a CPU quota of `fraction` of one core, to make a client's ceiling
 * reachable at rates the simulator sustains easily. cgroup v1 (`/sys/fs/cgroup/cpu`) or v2 (only if
 * the cpu controller is already enabled for children: the bench changes no existing cgroup). Returns
 * null when neither is possible (not root, no cpu controller). `destroy()` removes the cgroup.
 */
export function createCpuCap(fraction, periodUs = 20_000) {
  const name = `discluster-bench-${process.pid}`;
  const quotaUs = Math.max(1000, Math.round(fraction * periodUs));
  const candidates = [];
  if (fs.existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'))
    candidates.push({ kind: 'v1', base: '/sys/fs/cgroup/cpu' });
  try {
    if (fs.readFileSync('/sys/fs/cgroup/cgroup.subtree_control', 'utf8').split(/\s+/).includes('cpu'))
      candidates.push({ kind: 'v2', base: '/sys/fs/cgroup' });
  } catch {
    // no cgroup v2 at the top
  }
  for (const { kind, base } of candidates) {
    const dir = path.join(base, name);
    try {
      fs.mkdirSync(dir);
    } catch {
      continue;
    }
    try {
      if (kind === 'v1') {
        fs.writeFileSync(path.join(dir, 'cpu.cfs_period_us'), String(periodUs));
        fs.writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), String(quotaUs));
      } else {
        fs.writeFileSync(path.join(dir, 'cpu.max'), `${quotaUs} ${periodUs}`);
      }
    } catch {
      try {
        fs.rmdirSync(dir);
      } catch {
        // leave it
      }
      continue;
    }
    const origins = new Map();
    const originOf = (pid) => {
      try {
        for (const line of fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
          const [, controllers, where] = line.split(':');
          if (kind === 'v2' ? controllers === '' : controllers.split(',').includes('cpu'))
            return path.join(base, where);
        }
      } catch {
        // gone
      }
      return base;
    };
    const cap = {
      kind,
      dir,
      fraction: quotaUs / periodUs,
      periodUs,
      quotaUs,
      /** Changes the quota to `newFraction` of one core. */
      setFraction(newFraction) {
        const quota = Math.max(1000, Math.round(newFraction * periodUs));
        if (kind === 'v1') fs.writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), String(quota));
        else fs.writeFileSync(path.join(dir, 'cpu.max'), `${quota} ${periodUs}`);
        cap.quotaUs = quota;
        cap.fraction = quota / periodUs;
      },
      /** Moves a process (every thread) into the capped cgroup. */
      add(pid) {
        if (!origins.has(pid)) origins.set(pid, originOf(pid));
        fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
      },
      /** Moves a process back to the cgroup it was in. */
      remove(pid) {
        const origin = origins.get(pid) ?? base;
        origins.delete(pid);
        try {
          fs.writeFileSync(path.join(origin, 'cgroup.procs'), String(pid));
        } catch {
          // it has exited
        }
      },
      /** Throttling counters of the cgroup (nr_periods, nr_throttled, throttled time). */
      stat() {
        try {
          return Object.fromEntries(
            fs
              .readFileSync(path.join(dir, 'cpu.stat'), 'utf8')
              .trim()
              .split('\n')
              .map((line) => line.split(' '))
              .map(([key, value]) => [key, Number(value)]),
          );
        } catch {
          return null;
        }
      },
      destroy() {
        try {
          const procs = fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').trim();
          for (const pid of procs ? procs.split('\n') : []) cap.remove(Number(pid));
          fs.rmdirSync(dir);
        } catch {
          // already gone
        }
      },
    };
    onCleanup(() => cap.destroy());
    return cap;
  }
  return null;
}
