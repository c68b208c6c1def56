// Child processes for every bench: each is tracked and stopped by pid (also on failure), at the
// bench's priority; and the checks that the packages are built. /proc sampling is bench/lib/cpu.mjs,
// machine facts bench/lib/machineFacts.mjs, statistics bench/lib/figures.mjs.
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { log } from '../lib/log.mjs';
import { killOnExit } from '../lib/killOnExit.mjs';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '..', '..');

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

let stopping = null;

export function stopEverything() {
  // A second call (SIGTERM and the runner's SIGINT together, or a signal during the final stop)
  // waits for the stop under way: run twice, the second found nothing left to clean and exited
  // while the first was still stopping the fleet, leaving its pm2 daemon and clusters behind.
  stopping ??= (async () => {
    await Promise.all([...children].map((handle) => stopChild(handle, 4000)));
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (error) {
        log(`cleanup failed: ${error?.message ?? error}`);
      }
    }
  })().finally(() => {
    stopping = null;
  });
  return stopping;
}

killOnExit(children);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    log(`${signal}: stopping every process this bench started`);
    void stopEverything().finally(() => process.exit(130));
  });
}

/** Runs a bench's `main`: exit 0 when it is done; when it fails, say why, stop every process, exit 1. */
export function runMain(main) {
  main().then(
    () => process.exit(0),
    async (error) => {
      log(`FAILED: ${error?.stack ?? error}`);
      await stopEverything();
      process.exit(1);
    },
  );
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
