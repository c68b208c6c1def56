#!/usr/bin/env node
// `npm test`: sets up a fresh machine (npm dependencies, nats-server), then builds, lints and
// runs every vitest suite. Extra arguments go to vitest (`npm test -- discord-sim` filters).
// The last line printed is always `N passed, N failed`; build and lint count as one test each.
// Only Node built-ins: this runs before dependencies are installed.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const resultsFile = path.join(root, '.vitest-results.json');
const vitestArgs = process.argv.slice(2);
const INSTALL_HINT =
  'Install it with `apt-get install -y nats-server` (Debian/Ubuntu, as root) or set NATS_SERVER_BIN to the path of a nats-server binary.';

/** @type {{ name: string, ok: boolean, detail: string }[]} */
const checks = [];
let passed = 0;
let failed = 0;

/** The child currently running. Each child leads its own process group (see run()). */
let current;
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    const child = current;
    // A second Ctrl-C means "now": SIGKILL the group.
    if (interrupted) return child?.pid && signalGroup(child.pid, 'SIGKILL');
    interrupted = true;
    if (!child?.pid) finish(`interrupted by ${sig}`);
    // Signal the child's whole group: vitest's workers and the servers the tests started
    // would otherwise outlive a vitest main process that died mid-run. It is a group we
    // created, so only our own descendants are in it.
    signalGroup(child.pid, sig);
    const escalate = setTimeout(() => signalGroup(child.pid, 'SIGKILL'), 10_000);
    child.once('close', () => {
      clearTimeout(escalate);
      finish(`interrupted by ${sig}`);
    });
  });
}

function signalGroup(pid, sig) {
  try {
    process.kill(-pid, sig);
  } catch {
    // Already gone.
  }
}

/** Runs a command with streamed output; resolves with its exit code (never rejects). */
function run(command, args, options = {}) {
  console.log(`\n$ ${[command, ...args].join(' ')}`);
  return new Promise((resolve) => {
    // detached: its own process group, which the signal handlers above can end as a whole.
    // Terminal Ctrl-C then reaches only us, and we forward it. No stdin: a background group
    // reading the terminal would be stopped (SIGTTIN), and nothing here needs input.
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
function bin(name) {
  return path.join(root, 'node_modules', '.bin', name);
}

function record(name, ok, detail = ok ? 'ok' : 'FAILED') {
  checks.push({ name, ok, detail });
  if (ok) passed++;
  else failed++;
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
function findNatsServer() {
  const fromEnv = process.env.NATS_SERVER_BIN;
  if (fromEnv) return isExecutable(fromEnv) ? fromEnv : undefined;
  const candidates = (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter(Boolean)
    .map((dir) => path.join(dir, 'nats-server'));
  candidates.push('/usr/sbin/nats-server', '/usr/bin/nats-server');
  return candidates.find(isExecutable);
}

function finish(reason) {
  console.log('\nSummary:');
  for (const check of checks) console.log(`  ${check.ok ? 'ok  ' : 'FAIL'}  ${check.name}: ${check.detail}`);
  if (reason) console.log(`  stopped early: ${reason}`);
  // Contract: this is the very last line of output.
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && !reason ? 0 : 1);
}

// a. npm dependencies on a fresh clone.
if (!fs.existsSync(path.join(root, 'node_modules', '.package-lock.json'))) {
  const hasLock = fs.existsSync(path.join(root, 'package-lock.json'));
  let code = await run('npm', [hasLock ? 'ci' : 'install']);
  if (code !== 0 && hasLock) {
    // `npm ci` refuses a lock that lacks entries the registry cannot serve (e.g. other
    // platforms' optional binaries on a filtered mirror); `npm install` tolerates that.
    console.log('\nnpm ci failed; retrying with npm install.');
    code = await run('npm', ['install']);
  }
  if (code !== 0) {
    record('setup (npm dependencies)', false, `exit code ${code}`);
    finish('npm dependencies could not be installed');
  }
}

// b. nats-server, which the package and integration tests start for real.
let natsServer = findNatsServer();
if (!natsServer && process.env.NATS_SERVER_BIN) {
  record('setup (nats-server)', false, `NATS_SERVER_BIN=${process.env.NATS_SERVER_BIN} is not executable`);
  console.error(
    `NATS_SERVER_BIN is set to ${process.env.NATS_SERVER_BIN}, which is not an executable file. ${INSTALL_HINT}`,
  );
  finish('nats-server missing');
}
if (!natsServer) {
  if (typeof process.getuid === 'function' && process.getuid() === 0) {
    console.log('nats-server not found; installing it with apt-get.');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    // Wait for a dpkg lock held by another apt run instead of failing at once.
    const lockWait = ['-o', 'DPkg::Lock::Timeout=600'];
    const updated = await run('apt-get', [...lockWait, 'update'], { env });
    const installed =
      updated === 0 && (await run('apt-get', [...lockWait, 'install', '-y', 'nats-server'], { env })) === 0;
    natsServer = installed ? findNatsServer() : undefined;
  }
  if (!natsServer) {
    record('setup (nats-server)', false, 'not found');
    console.error(`nats-server is required by the tests and was not found. ${INSTALL_HINT}`);
    finish('nats-server missing');
  }
}
console.log(`Using nats-server at ${natsServer}`);

// c. Build every workspace (project references).
record('build (tsc -b)', (await run(bin('tsc'), ['-b'])) === 0);
// The cross-package integration tests are not part of any build: type-check them on their own.
record('typecheck (tsc -p test)', (await run(bin('tsc'), ['-p', 'test'])) === 0);

// d. Lint and formatting.
record('lint (eslint .)', (await run(bin('eslint'), ['.'])) === 0);
record('format (prettier --check .)', (await run(bin('prettier'), ['--check', '.'])) === 0);

// e. Tests, with a JSON report we can count from.
fs.rmSync(resultsFile, { force: true });
const vitestCode = await run(
  bin('vitest'),
  [
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile=${path.basename(resultsFile)}`,
    ...vitestArgs,
  ],
  // Tests find the very binary checked above.
  { env: { ...process.env, NATS_SERVER_BIN: natsServer } },
);
let report;
try {
  report = JSON.parse(fs.readFileSync(resultsFile, 'utf8'));
} catch {
  report = undefined;
}
if (!report) {
  record('tests (vitest)', false, `no JSON report (vitest exit code ${vitestCode})`);
} else {
  const testPassed = report.numPassedTests ?? 0;
  const testFailed = report.numFailedTests ?? 0;
  // A suite can fail with no failing test: it did not load, or a hook failed. Count each once.
  const brokenSuites = (report.testResults ?? []).filter(
    (suite) =>
      suite.status === 'failed' && !(suite.assertionResults ?? []).some((test) => test.status === 'failed'),
  );
  const testsFailed = testFailed + brokenSuites.length;
  passed += testPassed;
  failed += testsFailed;
  let detail = `${testPassed} passed, ${testFailed} failed`;
  if (brokenSuites.length > 0) {
    const names = brokenSuites.map((suite) => path.relative(root, suite.name)).join(', ');
    detail += `, ${brokenSuites.length} suite(s) failed outside tests: ${names}`;
  }
  let ok = testsFailed === 0;
  if (testPassed + testFailed === 0) {
    failed++;
    ok = false;
    detail += ' (no tests ran: counted as a failure)';
  } else if (vitestCode !== 0 && testsFailed === 0) {
    // e.g. unhandled errors between tests: vitest failed the run although every test passed.
    failed++;
    ok = false;
    detail += `, but vitest exited with code ${vitestCode} (counted as a failure)`;
  }
  checks.push({ name: 'tests (vitest)', ok, detail });
}

// f. Summary; the last line is the count.
finish();
