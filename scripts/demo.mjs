#!/usr/bin/env node
// `npm run demo`: a whole Discluster fleet on this machine, against discord-sim, in private pm2
// homes inside the project (never ~/.pm2). It sets up what it needs (npm dependencies, a
// nats-server, the build), starts the fleet (see scripts/demo/fleet.mjs for the process tree),
// prints progress until every shard is ready, then the `discluster status` table, the status page
// URL and the commands to watch it. Ctrl-C (SIGINT/SIGTERM) or a closed terminal (SIGHUP) stops
// everything it started, also when its stdout is gone (`npm run demo | tee demo.log`, Ctrl-C).
//
//   npm run demo                       interactive: runs until Ctrl-C
//   npm run demo -- --headless         plain progress lines and, once ready, one line
//                                      `[demo] ready {json}`; still runs until SIGINT/SIGTERM/SIGHUP
//   npm run demo -- --exit-when-ready  as --headless, then stops everything and exits 0
//   npm run demo -- --stop             stops a demo left running (e.g. its launcher was killed)
//
// Environment: DISCLUSTER_DEMO_HEADLESS=1 (= --headless), DISCLUSTER_DEMO_DIR (default .demo),
// DISCLUSTER_DEMO_READY_TIMEOUT_MS (how long to wait for every shard, default 300000),
// DISCLUSTER_DEMO_INSTALL=never (only install npm dependencies when node_modules is missing, never
// reinstall a stale one: test/demo.test.ts, where `npm ci` would pull node_modules from under the
// test files running beside it).
// Exit codes: 0 stopped by a signal or --exit-when-ready; 1 setup failed or the fleet did not
// come up (headless); 129/130/143 interrupted (SIGHUP/SIGINT/SIGTERM) during setup.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  BOT,
  BOT_SCRIPT,
  BUILT_BINS,
  CLI_BIN,
  HOSTS,
  SHARDS,
  TRAFFIC_PER_SECOND,
  SIM_TOKEN,
  daemonPid,
  demoApps,
  demoDir,
  endByPid,
  freePort,
  homes,
  longestSocket,
  paths,
  pm2,
  shown,
  stopFleet,
} from './demo/fleet.mjs';
import { DemoQuestions } from './demo/questions.mjs';
import { crashingAppsOf, logTail, readyCount, summary } from './demo/progress.mjs';
import {
  bin,
  currentChild,
  ensureNatsServer,
  installDependencies,
  linkWorkspaceBins,
  root,
  run,
  signalGroup,
} from './setup.mjs';

const USAGE = `Usage: npm run demo [-- --headless | --exit-when-ready | --stop | --help]
  (no flag)          start the demo fleet and run until Ctrl-C
  --headless         plain output for scripts; prints "[demo] ready {json}" once every shard is ready
  --exit-when-ready  like --headless, then stop everything and exit 0
  --stop             stop a demo fleet left running (its launcher was killed)`;

// ---------------------------------------------------------------------------------------------
// Output. Run as `npm run demo | tee demo.log` and stopped with Ctrl-C, tee is gone before the
// cleanup says its first word; a closed terminal fails writes too. A stream 'error' nobody listens
// to throws and would end the demo in the middle of its cleanup, so a failed write is never fatal:
// once stdout is gone the demo's lines go to stderr (the terminal, with `| tee`), and once that is
// gone too they are dropped.

let stdoutOpen = true;
process.stdout.on('error', () => (stdoutOpen = false));
process.stderr.on('error', () => undefined);

/** One line (or block) to stderr; never throws. */
function err(text) {
  process.stderr.write(`${text}\n`, () => undefined);
}

/** One line (or block) to stdout, or to stderr once stdout is closed; never throws. */
function out(text) {
  if (!stdoutOpen) return err(text);
  process.stdout.write(`${text}\n`, (error) => {
    // The write that found stdout closed: its line still goes out.
    if (error) {
      stdoutOpen = false;
      err(text);
    }
  });
}

const flags = new Set(process.argv.slice(2));
for (const flag of flags) {
  if (!['--headless', '--exit-when-ready', '--stop', '--help', '-h'].includes(flag)) {
    err(`Unknown option ${flag}\n${USAGE}`);
    process.exit(2);
  }
}
if (flags.has('--help') || flags.has('-h')) {
  out(USAGE);
  process.exit(0);
}
const exitWhenReady = flags.has('--exit-when-ready');
const headless = exitWhenReady || flags.has('--headless') || process.env.DISCLUSTER_DEMO_HEADLESS === '1';
const readyTimeoutMs = Number(process.env.DISCLUSTER_DEMO_READY_TIMEOUT_MS ?? 300_000);

const say = (message) => out(`[demo] ${message}`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** discord-sim's nice value (as the tests' simulator: discluster-testing's startDiscordSimProcess). */
const SIM_PRIORITY = -10;

const p = paths(demoDir());
const crashingApps = () => crashingAppsOf(p.demoHome);

// ---------------------------------------------------------------------------------------------
// Signals. During setup a signal ends the setup command's process group (as `npm test` does);
// once the fleet is starting, it stops the fleet. `npm run` forwards a terminal Ctrl-C that the
// terminal also delivered itself, so repeated signals are expected and only acknowledged. SIGHUP
// (the terminal went away) counts as Ctrl-C: its default would end the demo and leave the fleet.

/** 'setup' → 'fleet' → 'stopping'. */
let phase = 'setup';
let stopRequested;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  const exitCode = 128 + os.constants.signals[sig];
  process.on(sig, () => {
    if (phase === 'setup') {
      const child = currentChild();
      if (!child?.pid) process.exit(exitCode);
      signalGroup(child.pid, sig);
      child.once('close', () => process.exit(exitCode));
      return;
    }
    if (phase === 'fleet') {
      phase = 'stopping';
      stopRequested?.(sig);
      return;
    }
    if (phase === 'stopping') say('still stopping; every process of the demo is being ended');
  });
}

/** Resolves with the signal's name once SIGINT/SIGTERM/SIGHUP arrives in the 'fleet' phase. */
const stopSignal = new Promise((resolve) => (stopRequested = resolve));

let trafficTimer;
let questionTimer;
let answersTimer;
/** The pm2 CLI call of the progress loop in flight: a pm2 call after a daemon ended would spawn a new one. */
let pm2Busy = Promise.resolve();

let stopping;

/** Stops the fleet once (a signal may arrive while a failed start already stops it), then exits. */
function shutdown(code, reason) {
  stopping ??= (async () => {
    phase = 'stopping';
    clearInterval(trafficTimer);
    clearInterval(questionTimer);
    clearInterval(answersTimer);
    say(`${reason}: stopping everything the demo started`);
    await pm2Busy;
    let left;
    try {
      left = await stopFleet(p, (line) => say(line));
    } catch (error) {
      // Whatever went wrong, the processes are still ended by pid.
      say(`stopping the fleet failed (${error.message}); ending its processes by pid`);
      left = await endByPid(p, (line) => say(line));
    }
    fs.rmSync(p.lockFile, { force: true });
    if (left.length > 0) {
      say(`processes still running: ${left.join(', ')} (inspect them with ps; they mention ${p.dir})`);
      process.exit(1);
    }
    say('stopped; nothing of the demo is left running');
    process.exit(code);
  })().catch((error) => {
    err(`[demo] stopping failed: ${error.stack ?? error}`);
    process.exit(1);
  });
  return stopping;
}

// A bug of the demo itself must not leave the fleet running either.
process.on('uncaughtException', (error) => {
  err(`[demo] unexpected error: ${error.stack ?? error}`);
  if (phase === 'setup') process.exit(1);
  void shutdown(1, 'unexpected error');
});

// ---------------------------------------------------------------------------------------------
// --stop: the cleanup alone.

if (flags.has('--stop')) {
  phase = 'stopping';
  const left = await stopFleet(p, (line) => say(line));
  fs.rmSync(p.lockFile, { force: true });
  say(left.length > 0 ? `processes still running: ${left.join(', ')}` : 'nothing of the demo is running');
  process.exit(left.length > 0 ? 1 : 0);
}

// ---------------------------------------------------------------------------------------------
// 1. Setup: npm dependencies (missing or not matching package-lock.json), nats-server, build.

function fail(message) {
  err(`[demo] ${message}`);
  process.exit(1);
}

const dependencies = await installDependencies({
  whenStale: process.env.DISCLUSTER_DEMO_INSTALL !== 'never',
});
if (dependencies.code !== 0)
  fail(`npm dependencies could not be installed (exit code ${dependencies.code}); see the output above.`);
const nats = await ensureNatsServer();
if (nats.error) fail(nats.message);
say(`using nats-server at ${nats.path}`);
if ((await run(bin('tsc'), ['-b'])) !== 0) fail('the build (tsc -b) failed; see the errors above.');
// `npx discluster status`, which the demo prints, needs the workspace bins linked.
if ((await linkWorkspaceBins()) !== 0)
  fail('linking the workspace bins (npm rebuild) failed; see the output above.');
// npm links package bins before a fresh clone has built them, so they may lack the x bit.
for (const file of BUILT_BINS) if (fs.existsSync(file)) fs.chmodSync(file, 0o755);

// ---------------------------------------------------------------------------------------------
// 2. A fresh demo directory: no earlier demo running, none of its state kept.

if (longestSocket(p.dir).length > 100)
  fail(
    `the demo directory ${p.dir} is too long for pm2's unix sockets; set DISCLUSTER_DEMO_DIR to a shorter one.`,
  );
const running = readLock();
if (running)
  fail(`a demo is already running (pid ${running}); stop it with Ctrl-C or \`npm run demo -- --stop\`.`);
if (homes(p).some((home) => daemonPid(home))) {
  say('a previous demo was left running; stopping it first');
  const left = await stopFleet(p, (line) => say(line));
  if (left.length > 0) fail(`processes of a previous demo are still running: ${left.join(', ')}`);
}
for (const file of p.created) fs.rmSync(file, { recursive: true, force: true });
for (const dir of [...homes(p), p.natsStore, path.dirname(p.tokenFile)])
  fs.mkdirSync(dir, { recursive: true });
fs.writeFileSync(p.lockFile, String(process.pid));

function readLock() {
  let pid;
  try {
    pid = Number(fs.readFileSync(p.lockFile, 'utf8'));
  } catch {
    return undefined;
  }
  try {
    return pid !== process.pid && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('demo.mjs')
      ? pid
      : undefined;
  } catch {
    return undefined;
  }
}

// MASTER reads the token from a file only it may read: never in an environment or command line.
fs.writeFileSync(p.tokenFile, `${SIM_TOKEN}\n`, { mode: 0o600 });
const ports = { nats: await freePort(), sim: await freePort(), http: await freePort() };
const natsUrl = `nats://127.0.0.1:${ports.nats}`;
const admin = `http://127.0.0.1:${ports.sim}/_sim`;
const statusPage = `http://127.0.0.1:${ports.http}/`;
fs.writeFileSync(
  p.appsFile,
  `${JSON.stringify({ apps: demoApps({ p, natsServer: nats.path, ports }) }, null, 2)}\n`,
);

// ---------------------------------------------------------------------------------------------
// 3. Start: one pm2 daemon per stand-in machine, then the demo home's apps.

phase = 'fleet';
say(
  `starting the fleet in ${shown(p.dir)} (pm2 homes: ${shown(p.demoHome)}, ${shown(path.join(p.dir, 'hosts'))}/*)`,
);
try {
  for (const host of HOSTS) {
    const started = await pm2(p.hostHome(host.id), ['ping']);
    if (started.code !== 0) throw new Error(`pm2 daemon of ${host.id}: ${started.stderr || started.stdout}`);
  }
  const started = await pm2(p.demoHome, ['start', p.appsFile]);
  if (started.code !== 0) throw new Error(`pm2 start: ${started.stderr || started.stdout}`);
  await raiseSimulatorPriority();
} catch (error) {
  err(`[demo] could not start the fleet: ${error.message}`);
  await shutdown(1, 'start failed');
}
say(
  `started nats-server, discord-sim (20,000 guilds, ${SHARDS} shards, max_concurrency 4), MASTER and ` +
    `${HOSTS.length} CONTROLs (${HOSTS.map((host) => `${host.id} ${host.role}`).join(', ')})`,
);
say(`each CONTROL runs the demo bot (${shown(BOT_SCRIPT)}) under its own machine's pm2 daemon`);

/**
 * discord-sim referees identify timing: it stamps an IDENTIFY when its event loop reads it. Sharing
 * 2 cores with a dozen booting processes, it read some of them 700 ms late and counted violations
 * the fleet never sent (every IDENTIFY left its cluster a full window after the last of its key).
 * Discord's servers never share the bot's CPU; a higher priority keeps the referee's clock honest.
 * Without root this is skipped, and the demo says so.
 */
async function raiseSimulatorPriority() {
  const listed = await pm2(p.demoHome, ['jlist'], { timeoutMs: 20_000 });
  let pid;
  try {
    pid = JSON.parse(listed.stdout.slice(listed.stdout.indexOf('['))).find(
      (app) => app.name === 'discord-sim',
    )?.pid;
  } catch {
    pid = undefined;
  }
  if (!pid) {
    say(
      `could not find discord-sim's pid in pm2's list: it runs at normal priority, and on a busy machine it may read IDENTIFYs late`,
    );
    return;
  }
  try {
    os.setPriority(pid, SIM_PRIORITY);
  } catch {
    say(
      `discord-sim runs at normal priority (raising it needs root): on a busy machine it may read IDENTIFYs late and report identify violations the fleet did not send`,
    );
  }
}

// Steady MESSAGE_CREATE traffic: one run of the simulator's generator at a time, renewed when done.
let traffic;
async function keepTraffic() {
  try {
    if (traffic) {
      const run = await (await fetch(`${admin}/traffic/${traffic}`)).json();
      if (!run.done) return;
    }
    const response = await fetch(`${admin}/traffic`, {
      method: 'POST',
      body: JSON.stringify({ eventsPerSecond: TRAFFIC_PER_SECOND, seconds: 600 }),
    });
    if (response.ok) traffic = (await response.json()).id;
  } catch {
    // The simulator is not up yet (or restarting): try again on the next tick.
    traffic = undefined;
  }
}
trafficTimer = setInterval(() => void keepTraffic(), 5_000);
void keepTraffic();

// ---------------------------------------------------------------------------------------------
// 4. Progress until every shard is ready.

/** Runs the `discluster` CLI against the demo fleet. */
function cli(args) {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI_BIN, ...args, '--nats-url', natsUrl, '--bot', BOT],
      { cwd: root, env: { PATH: process.env.PATH ?? '' }, timeout: 20_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

async function fleetStatus() {
  const result = await cli(['status', '--json', '--timeout-ms', '2000']);
  if (result.code !== 0) return undefined;
  try {
    return JSON.parse(result.stdout);
  } catch {
    return undefined;
  }
}

/** What the simulator saw of the fleet's promises (identify rate, one session per shard), or undefined. */
async function simulatorCounts() {
  try {
    const state = await (await fetch(`${admin}/state`)).json();
    return {
      identifies: state.identifies,
      resumes: state.resumes,
      violations: state.violations,
      unjudged: state.identifiesUnjudged,
    };
  } catch {
    return undefined;
  }
}

const startedAt = Date.now();
let last = '';
let lastPrinted = 0;
let status;
const reported = new Set();
let polls = 0;
const stopped = stopSignal.then((sig) => shutdown(0, `${sig} received`));
while (readyCount(status) < SHARDS) {
  if (phase !== 'fleet') await stopped;
  status = await fleetStatus();
  if (phase !== 'fleet') await stopped;
  const line = summary(status);
  // Every change, and at least every 5 s so a long wait is visibly alive.
  if (line !== last || Date.now() - lastPrinted >= 5_000) {
    say(line);
    last = line;
    lastPrinted = Date.now();
  }
  if (++polls % 5 === 0 && phase === 'fleet') {
    const crashing = crashingApps();
    pm2Busy = crashing.then(() => undefined);
    for (const app of await crashing) {
      if (reported.has(app.name)) continue;
      reported.add(app.name);
      say(`${app.name} keeps failing (${app.pm2_env.status}, ${app.pm2_env.restart_time} restarts):`);
      out(logTail(p.demoHome, app.name));
    }
  }
  if (Date.now() - startedAt > readyTimeoutMs) {
    say(`not every shard is ready after ${Math.round(readyTimeoutMs / 1000)} s. The last lines of the logs:`);
    for (const name of ['discluster-master', ...HOSTS.map((host) => `control-${host.id}`)])
      out(logTail(p.demoHome, name));
    if (headless) await shutdown(1, 'the fleet did not come up');
    say('still running: watch it with the commands below, or Ctrl-C to stop');
    break;
  }
  if (readyCount(status) < SHARDS) await Promise.race([sleep(1_000), stopSignal]);
}

// ---------------------------------------------------------------------------------------------
// 5. The fleet is up: status table, status page, how to watch it.

if (readyCount(status) >= SHARDS)
  say(`all ${SHARDS} shards ready after ${Math.round((Date.now() - startedAt) / 1000)} s\n`);
const table = await cli(['status']);
out(table.stdout.trimEnd() || table.stderr.trimEnd());
const hostA = shown(p.hostHome('host-a'));
const demoHome = shown(p.demoHome);
const cliFlags = `--nats-url ${natsUrl} --bot ${BOT}`;
out(`
[demo] Status page: ${statusPage}   (Prometheus metrics: ${statusPage}metrics)
[demo] Watch it (from ${root}):
  PM2_HOME=${demoHome} npx pm2 monit
      nats-server, discord-sim, MASTER and the three CONTROLs (host summary metrics)
  PM2_HOME=${hostA} npx pm2 monit
      one machine's clusters, with per-shard metrics (also host-b, host-c)
  PM2_HOME=${hostA} npx pm2 logs
      the demo bot's output on that machine
  npx discluster status ${cliFlags}
[demo] Try:
  npx discluster restart --rolling ${cliFlags}
      restart every cluster, one at a time: each one's shards RESUME
  PM2_HOME=${demoHome} npx pm2 stop control-host-a && PM2_HOME=${hostA} npx pm2 kill
      a machine dies: once its leases expire (10 s) its shards RESUME on host-c, the standby
  PM2_HOME=${demoHome} npx pm2 start control-host-a && npx discluster rebalance ${cliFlags}
      it comes back, idle; rebalance gives it shards again
[demo] ${TRAFFIC_PER_SECOND} MESSAGE_CREATE events/s flow through discord-sim (${admin}/state). Every 5 s the demo
       asks the bot !ping and /stats in a random guild; every 15 s it prints how many were answered.
       Ctrl-C stops everything.`);
const referee = await simulatorCounts();
if (referee)
  say(
    `discord-sim counted ${referee.identifies} IDENTIFYs, ${referee.violations.identifyRate} inside their rate-limit window, ` +
      `${referee.violations.duplicateLiveSessions} duplicate live sessions, ${referee.violations.resumeWhileLive} RESUMEs of a live session` +
      (referee.unjudged ? ` (${referee.unjudged} IDENTIFYs it read too late to judge, let through)` : ''),
  );
if (headless) {
  say(
    `ready ${JSON.stringify({ ready: readyCount(status), shards: SHARDS, natsUrl, bot: BOT, dir: p.dir, statusPage, admin, referee })}`,
  );
}
if (exitWhenReady) await shutdown(0, 'ready (--exit-when-ready)');

// ---------------------------------------------------------------------------------------------
// 6. Questions for the bot: a `!ping` and a `/stats` every 5 s; every 15 s, how many it answered
// as discord-sim counted them.

const questions = new DemoQuestions(admin);
let asking = false;
questionTimer = setInterval(() => {
  if (asking || phase !== 'fleet') return;
  asking = true;
  questions
    .ask()
    .catch((error) => say(`could not ask the bot (${error.message}); trying again in 5 s`))
    .finally(() => (asking = false));
}, 5_000);
answersTimer = setInterval(() => {
  if (phase !== 'fleet') return;
  questions.answers().then(
    (answers) => {
      if (answers.ping.asked === 0) return;
      say(
        `the bot answered ${answers.ping.answered} of ${answers.ping.asked} !ping (message.reply) and ` +
          `${answers.stats.answered} of ${answers.stats.asked} /stats (interaction.reply), counted by discord-sim`,
      );
      if (headless) say(`answers ${JSON.stringify(answers)}`);
    },
    (error) => say(`could not count the bot's answers (${error.message})`),
  );
}, 15_000);

// ---------------------------------------------------------------------------------------------
// 7. Run until a signal (keepTraffic's interval keeps the process alive).
await stopped;
