// Fresh-machine setup shared by `npm test` (scripts/test.mjs) and `npm run demo` (scripts/demo.mjs):
// npm dependencies, a nats-server binary, and a way to run commands in their own process group.
// Only Node built-ins: this runs before dependencies are installed.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const INSTALL_HINT =
  'Install it with `apt-get install -y nats-server` (Debian/Ubuntu, as root) or set NATS_SERVER_BIN to the path of a nats-server binary.';

/** The child `run()` is waiting for, if any. Each child leads its own process group. */
let current;

/** The child currently running under `run()` (undefined between commands). */
export function currentChild() {
  return current;
}

/** Sends `sig` to the process group led by `pid` (a group `run()` created); ignores a gone group. */
export function signalGroup(pid, sig) {
  try {
    process.kill(-pid, sig);
  } catch {
    // Already gone.
  }
}

/** Runs a command with streamed output; resolves with its exit code (never rejects). */
export function run(command, args, options = {}) {
  console.log(`\n$ ${[command, ...args].join(' ')}`);
  return new Promise((resolve) => {
    // detached: its own process group, which a caller's signal handlers can end as a whole.
    // Terminal Ctrl-C then reaches only the caller, which forwards it. No stdin: a background
    // group reading the terminal would be stopped (SIGTTIN), and nothing here needs input.
    const child = spawn(command, args, {
      cwd: root,
      stdio: ['ignore', 'inherit', 'inherit'],
      detached: true,
      ...options,
    });
    current = child;
    child.on('error', (error) => {
      console.error(`Could not run ${command}: ${error.message}`);
      current = undefined;
      resolve(127);
    });
    child.on('close', (code, signal) => {
      current = undefined;
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

/** A project binary from node_modules/.bin: never let npx fetch a same-named package instead. */
export function bin(name) {
  return path.join(root, 'node_modules', '.bin', name);
}

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Same search order as testing/src/natsServer.ts: NATS_SERVER_BIN, PATH, Debian locations. */
export function findNatsServer() {
  const fromEnv = process.env.NATS_SERVER_BIN;
  if (fromEnv) return isExecutable(fromEnv) ? fromEnv : undefined;
  const candidates = (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter(Boolean)
    .map((dir) => path.join(dir, 'nats-server'));
  candidates.push('/usr/sbin/nats-server', '/usr/bin/nats-server');
  return candidates.find(isExecutable);
}

const hiddenLock = path.join(root, 'node_modules', '.package-lock.json');

/**
 * True when node_modules does not match package-lock.json: a package the lock wants (other than an
 * optional one, e.g. another platform's binary) is missing or has another version, or a workspace
 * link is missing. npm writes node_modules/.package-lock.json on every install, so comparing the
 * two needs no network and no npm.
 */
export function dependenciesStale() {
  if (!fs.existsSync(hiddenLock)) return true;
  let wanted;
  let installed;
  try {
    wanted = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')).packages ?? {};
    installed = JSON.parse(fs.readFileSync(hiddenLock, 'utf8')).packages ?? {};
  } catch {
    return true;
  }
  for (const [key, entry] of Object.entries(wanted)) {
    if (!key.startsWith('node_modules/')) continue;
    const have = installed[key];
    if (!have) {
      if (entry.optional) continue;
      return true;
    }
    if (entry.link ? !have.link : entry.version !== have.version) return true;
  }
  return false;
}

/**
 * npm dependencies: `npm ci` (or `npm install` without a lock). package-lock.json lists every
 * platform's optional binaries, so `npm ci` accepts it anywhere, and `allowScripts` in package.json
 * covers every dependency's install script (CONTRIBUTING.md, "Dependencies"). Runs when
 * node_modules is missing, or also when it is stale if `{ whenStale: true }`. Resolves with
 * `{ ran, code }`; `code` is 0 on success (or when nothing had to run).
 */
export async function installDependencies({ whenStale = false } = {}) {
  const missing = !fs.existsSync(hiddenLock);
  if (!missing && !(whenStale && dependenciesStale())) return { ran: false, code: 0 };
  if (!missing) console.log('\nnode_modules does not match package-lock.json; reinstalling.');
  const hasLock = fs.existsSync(path.join(root, 'package-lock.json'));
  const code = await run('npm', [hasLock ? 'ci' : 'install']);
  return { ran: true, code };
}

/** The bins of our workspaces, built by `tsc -b` (package name → bin names). */
export const WORKSPACE_BINS = ['discluster', 'discluster-master', 'discluster-control', 'discord-sim'];

/**
 * Links the workspace bins into node_modules/.bin once they are built. npm links a bin at install
 * time only if its target exists, and on a fresh clone `dist/` does not exist before `tsc -b`: so
 * after the build, `npm rebuild --ignore-scripts` links them (and makes their targets executable)
 * without running any install script again. Does nothing when every bin is linked already.
 * Resolves with an exit code.
 */
export async function linkWorkspaceBins() {
  if (WORKSPACE_BINS.every((name) => isExecutable(bin(name)))) return 0;
  return run('npm', ['rebuild', '--ignore-scripts']);
}

/**
 * A nats-server binary: found (see findNatsServer), or installed with apt-get when running as
 * root. Resolves with `{ path }`, or `{ error, message }` where `error` is `'not executable'`
 * (NATS_SERVER_BIN names no executable file) or `'not found'`.
 */
export async function ensureNatsServer() {
  let natsServer = findNatsServer();
  if (!natsServer && process.env.NATS_SERVER_BIN) {
    return {
      error: 'not executable',
      message: `NATS_SERVER_BIN is set to ${process.env.NATS_SERVER_BIN}, which is not an executable file. ${INSTALL_HINT}`,
    };
  }
  if (!natsServer) {
    if (await aptInstall('nats-server')) natsServer = findNatsServer();
    if (!natsServer) return { error: 'not found', message: `nats-server was not found. ${INSTALL_HINT}` };
  }
  return { path: natsServer };
}

/**
 * Installs a Debian package with apt-get when running as root (waiting for a dpkg lock held by
 * another apt run instead of failing at once). Resolves true if it was installed.
 */
async function aptInstall(pkg) {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return false;
  console.log(`${pkg} not found; installing it with apt-get.`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const lockWait = ['-o', 'DPkg::Lock::Timeout=600'];
  const updated = await run('apt-get', [...lockWait, 'update'], { env });
  return updated === 0 && (await run('apt-get', [...lockWait, 'install', '-y', pkg], { env })) === 0;
}

/** Where the status page browser test expects Chromium (Debian's `chromium` package). */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Chromium for the browser tests: found at CHROMIUM_PATH, or installed with apt-get as root. */
export async function ensureChromium() {
  if (fs.existsSync(CHROMIUM_PATH)) return { path: CHROMIUM_PATH };
  if ((await aptInstall('chromium')) && fs.existsSync(CHROMIUM_PATH)) return { path: CHROMIUM_PATH };
  return {
    error: 'not found',
    message: `Chromium was not found at ${CHROMIUM_PATH}. Install it with \`apt-get install -y chromium\` (as root).`,
  };
}

/** Where the Prometheus tests expect promtool (Debian's `prometheus` package). */
export const PROMTOOL_PATH = '/usr/bin/promtool';

/** promtool for `promtool check metrics` on MASTER's /metrics: found, or installed with apt-get as root. */
export async function ensurePromtool() {
  if (fs.existsSync(PROMTOOL_PATH)) return { path: PROMTOOL_PATH };
  if ((await aptInstall('prometheus')) && fs.existsSync(PROMTOOL_PATH)) return { path: PROMTOOL_PATH };
  return {
    error: 'not found',
    message: `promtool was not found at ${PROMTOOL_PATH}. Install it with \`apt-get install -y prometheus\` (as root).`,
  };
}
