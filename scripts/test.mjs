#!/usr/bin/env node
// `npm test`: sets up a fresh machine (npm dependencies, nats-server, Chromium, promtool), then
// builds, lints and runs every vitest suite. Extra arguments go to vitest (`npm test -- discord-sim`
// filters).
// The last line printed is always `N passed, N failed`; build and lint count as one test each.
// Only Node built-ins: this runs before dependencies are installed.
import fs from 'node:fs';
import path from 'node:path';
import {
  INSTALL_HINT,
  bin,
  currentChild,
  ensureNatsServer,
  installDependencies,
  linkWorkspaceBins,
  root,
  run,
  signalGroup,
  ensureChromium,
  ensurePromtool,
} from './setup.mjs';

const resultsFile = path.join(root, '.vitest-results.json');
const vitestArgs = process.argv.slice(2);

/** @type {{ name: string, ok: boolean, detail: string }[]} */
const checks = [];
let passed = 0;
let failed = 0;

// The child currently running (setup.mjs's run()) leads its own process group.
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    const child = currentChild();
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

function record(name, ok, detail = ok ? 'ok' : 'FAILED') {
  checks.push({ name, ok, detail });
  if (ok) passed++;
  else failed++;
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
const dependencies = await installDependencies();
if (dependencies.code !== 0) {
  record('setup (npm dependencies)', false, `exit code ${dependencies.code}`);
  finish('npm dependencies could not be installed');
}

// b. nats-server, which the package and integration tests start for real.
const nats = await ensureNatsServer();
if (nats.error === 'not executable') {
  record('setup (nats-server)', false, `NATS_SERVER_BIN=${process.env.NATS_SERVER_BIN} is not executable`);
  console.error(
    `NATS_SERVER_BIN is set to ${process.env.NATS_SERVER_BIN}, which is not an executable file. ${INSTALL_HINT}`,
  );
  finish('nats-server missing');
}
if (nats.error) {
  record('setup (nats-server)', false, 'not found');
  console.error(`nats-server is required by the tests and was not found. ${INSTALL_HINT}`);
  finish('nats-server missing');
}
const natsServer = nats.path;
console.log(`Using nats-server at ${natsServer}`);

// b2. Chromium for the status page browser test (its test fails with the same hint without it).
const chromium = await ensureChromium();
if (chromium.error) console.error(chromium.message);
else console.log(`Using Chromium at ${chromium.path}`);

// b3. promtool for the Prometheus tests (pm2-module-master/test/prometheus.test.ts fails with the
// same hint without it).
const promtool = await ensurePromtool();
if (promtool.error) console.error(promtool.message);
else console.log(`Using promtool at ${promtool.path}`);

// c. Build every workspace (project references).
record('build (tsc -b)', (await run(bin('tsc'), ['-b'])) === 0);
// npm links the workspace bins (`discluster`, …) only once built: link them now (test/bins.test.ts).
const linked = await linkWorkspaceBins();
if (linked !== 0) record('link workspace bins (npm rebuild --ignore-scripts)', false, `exit code ${linked}`);
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
