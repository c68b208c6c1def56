#!/usr/bin/env node
// `npm run bench:sim`: how much load one discord-sim holds on this machine, so later benchmarks
// can show the simulator is not their bottleneck.
//
// For each transport mode (plain JSON, zlib-stream) and each repetition it starts the simulator
// CLI (250,000 guilds, 1,024 shards, max_concurrency 1,024) and load-client child processes
// (raw `ws`, see load-client.mjs) that open all 1,024 shards, then measures:
//   a. connection + identify throughput: connections/s until all 1,024 READY, guilds/s until all
//      250,000 GUILD_CREATEs arrived (and that each arrived exactly once, on the right shard);
//   b. dispatch throughput: POST /_sim/traffic at increasing rates; events/s the simulator emitted
//      and the clients received (counted by nonce), lag of the last event, latency;
//   c. simulator RSS and CPU (/proc/<pid>/status, /proc/<pid>/stat) while holding 1,024 sockets;
//   d. GET /_sim/state at the end: live sessions and violations.
// Writes bench/results/discord-sim.json (every raw figure) and discord-sim.md (tables).
//
//   node bench/discord-sim/run.mjs            full run (3 repetitions), writes bench/results/
//   node bench/discord-sim/run.mjs --quick    1 repetition, smaller rates, writes to a temp dir
// Other flags: --reps N, --modes none,zlib-stream, --rates 10000,25000 (plain),
// --zlib-rates 5000,10000, --seconds S, --clients N, --guilds N, --shards N, --out DIR,
// --sim-cli PATH (another build of discord-sim's dist/cli.js, for before/after comparisons).
import { fork, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuMeter, memoryMiB as memory, waitForQuietMachine as waitForQuietMachineFor } from '../lib/cpu.mjs';
import { histogramPercentile as percentile, median, round } from '../lib/figures.mjs';
import { numberList, parseBenchFlags, stringFlags } from '../lib/flags.mjs';
import { log, sleep } from '../lib/log.mjs';
import { machineFacts, machineSummary } from '../lib/machineFacts.mjs';
import { killOnExit } from '../lib/killOnExit.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
let SIM_CLI = path.join(root, 'discord-sim', 'dist', 'cli.js');
const CLIENT = path.join(here, 'load-client.mjs');
const TOKEN = 'bench-token';

// --sim-cli PATH: another build of the simulator CLI, to compare before/after a change.
const flags = parseBenchFlags({
  ...stringFlags('reps', 'modes', 'rates', 'zlib-rates', 'seconds'),
  ...stringFlags('clients', 'guilds', 'shards', 'sim-cli', 'nice'),
});
if (flags['sim-cli']) SIM_CLI = path.resolve(flags['sim-cli']);
const quick = flags.quick;
const config = {
  guilds: Number(flags.guilds ?? 250_000),
  shards: Number(flags.shards ?? 1024),
  maxConcurrency: Math.min(1024, Number(flags.shards ?? 1024)),
  identifyWindowMs: 100,
  heartbeatIntervalMs: 41_250,
  sessionStartTotal: 1_000_000,
  reps: Number(flags.reps ?? (quick ? 1 : 3)),
  modes: (flags.modes ?? 'none,zlib-stream').split(','),
  rates: {
    none: numberList(flags.rates ?? (quick ? '10000,50000' : '10000,25000,50000,75000,100000')),
    'zlib-stream': numberList(flags['zlib-rates'] ?? (quick ? '5000,10000' : '5000,10000,15000,25000')),
  },
  trafficSeconds: Number(flags.seconds ?? (quick ? 2 : 5)),
  // One client process: the simulator and the client each get one of the two cores. (Two clients
  // and the simulator would share two cores three ways and starve the simulator.)
  clients: Number(flags.clients ?? 1),
  connectConcurrencyPerClient: 128,
  idleSampleMs: quick ? 2000 : 5000,
  // Liveness bounds only: a phase that makes no progress this long is recorded as failed.
  stallMs: 30_000,
  // Before each session, wait up to quietWaitMs for other processes to use ≤ quietOtherPct of a core.
  quietOtherPct: 15,
  quietWaitMs: quick ? 5_000 : 30_000,
  quietWaitBeforeRateMs: quick ? 3_000 : 10_000,
  // Scheduling priority for the bench, the simulator and the clients (needs root; ignored
  // otherwise): on a shared machine it keeps other busy processes from setting the figures.
  nice: Number(flags.nice ?? -10),
};
const outDir = flags.out
  ? path.resolve(flags.out)
  : quick
    ? fs.mkdtempSync(path.join(os.tmpdir(), 'discord-sim-bench-'))
    : path.join(root, 'bench', 'results');

const benchStart = Date.now();

// ---- child processes: every one is tracked and stopped by pid, also on failure ----------------

const children = new Set();

/**
 * Applies config.nice to a process; returns the priority it has afterwards. Children run in their
 * own session (detached), so with Linux autogroup scheduling they form their own group, and the
 * group's nice (/proc/<pid>/autogroup) is what weighs against other sessions' processes.
 */
function applyNice(pid, ownSession = false) {
  try {
    os.setPriority(pid, config.nice);
  } catch {
    // Not permitted (not root): run at the normal priority.
  }
  if (ownSession) {
    try {
      fs.writeFileSync(`/proc/${pid}/autogroup`, String(config.nice));
    } catch {
      // No autogroup scheduling here, or not permitted.
    }
  }
  try {
    return os.getPriority(pid);
  } catch {
    return null;
  }
}

function track(child, name) {
  if (child.pid) applyNice(child.pid, true);
  const handle = { child, name, pid: child.pid, exited: false, stderr: '' };
  handle.exit = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      handle.exited = true;
      children.delete(handle);
      resolve({ code, signal });
    });
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk) => {
    handle.stderr = (handle.stderr + chunk).slice(-8000);
  });
  children.add(handle);
  return handle;
}

async function stopChild(handle, graceMs = 5000) {
  if (handle.exited) return;
  try {
    process.kill(handle.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(handle.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, graceMs);
  await handle.exit;
  clearTimeout(timer);
}

killOnExit(children);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    log(`${signal}: stopping children`);
    void Promise.all([...children].map((handle) => stopChild(handle, 2000))).then(() => process.exit(130));
  });
}

// ---- /proc sampling ---------------------------------------------------------------------------

/** Waits (up to a bound) until processes outside this bench use little CPU, so runs compare. */
const waitForQuietMachine = (waitMs = config.quietWaitMs) =>
  waitForQuietMachineFor(waitMs, config.quietOtherPct);

// ---- simulator and clients --------------------------------------------------------------------

async function startSim() {
  const args = [
    SIM_CLI,
    '--port',
    '0',
    '--token',
    TOKEN,
    '--guilds',
    String(config.guilds),
    '--shards',
    String(config.shards),
    '--max-concurrency',
    String(config.maxConcurrency),
    '--identify-window-ms',
    String(config.identifyWindowMs),
    '--heartbeat-interval-ms',
    String(config.heartbeatIntervalMs),
    '--session-start-total',
    String(config.sessionStartTotal),
  ];
  const startedAt = performance.now();
  // detached: a session of its own (see applyNice); it is still stopped by pid like every child.
  const child = spawn(process.execPath, args, {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const handle = track(child, 'discord-sim');
  const urls = await new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout.setEncoding('utf8');
    const onData = (chunk) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      child.stdout.off('data', onData);
      child.stdout.resume();
      try {
        resolve(JSON.parse(buffered.slice(0, newline)));
      } catch (error) {
        reject(error);
      }
    };
    child.stdout.on('data', onData);
    void handle.exit.then(({ code, signal }) =>
      reject(new Error(`discord-sim exited (${code ?? signal}) before listening: ${handle.stderr}`)),
    );
  });
  handle.urls = urls;
  handle.startupMs = round(performance.now() - startedAt, 0);
  return handle;
}

async function startClient(index, count, gateway, compress) {
  const perClient = Math.ceil(config.shards / count);
  const first = index * perClient;
  const last = Math.min(config.shards - 1, first + perClient - 1);
  const child = fork(
    CLIENT,
    [
      '--gateway',
      gateway,
      '--token',
      TOKEN,
      '--shard-count',
      String(config.shards),
      '--first',
      String(first),
      '--last',
      String(last),
      '--compress',
      compress,
      '--connect-concurrency',
      String(config.connectConcurrencyPerClient),
    ],
    { cwd: root, stdio: ['ignore', 'inherit', 'pipe', 'ipc'], detached: true },
  );
  const handle = track(child, `load-client ${first}-${last}`);
  handle.pending = new Map();
  handle.nextId = 1;
  await new Promise((resolve, reject) => {
    child.on('message', (message) => {
      if (message?.ready) resolve();
      else if (message?.id && handle.pending.has(message.id)) {
        handle.pending.get(message.id)(message.stats);
        handle.pending.delete(message.id);
      }
    });
    void handle.exit.then(({ code, signal }) =>
      reject(new Error(`load client exited (${code ?? signal}): ${handle.stderr}`)),
    );
  });
  handle.stats = (perShard = false) =>
    new Promise((resolve, reject) => {
      const id = handle.nextId++;
      handle.pending.set(id, resolve);
      child.send({ cmd: 'stats', id, perShard }, (error) => error && reject(error));
    });
  return handle;
}

async function admin(sim, method, route, body) {
  const response = await fetch(`${sim.urls.admin}${route}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!response.ok) throw new Error(`${method} ${route}: HTTP ${response.status} ${await response.text()}`);
  return response.json();
}

async function allStats(clients, perShard = false) {
  return Promise.all(clients.map((client) => client.stats(perShard)));
}

// ---- one session: a fresh simulator, all shards, then traffic ---------------------------------

async function runSession(mode, rep) {
  const result = { mode, rep, ok: true, errors: [] };
  result.otherCpuPctBefore = await waitForQuietMachine();
  const sim = await startSim();
  const clients = [];
  try {
    result.simStartupMs = sim.startupMs;
    result.simBaseline = memory(sim.pid);
    for (let i = 0; i < config.clients; i++)
      clients.push(await startClient(i, config.clients, sim.urls.gateway, mode));
    const clientPids = clients.map((client) => client.pid);

    // a. connect + identify + GUILD_CREATE streaming.
    log(`  ${mode} rep ${rep}: opening ${config.shards} shards from ${clients.length} client process(es)`);
    const connectMeter = cpuMeter([sim.pid, ...clientPids]);
    for (const client of clients) client.child.send({ cmd: 'start' });
    let stats = await allStats(clients);
    let lastProgress = Date.now();
    let lastCount = -1;
    let lastLog = 0;
    for (;;) {
      await sleep(100);
      stats = await allStats(clients);
      const ready = sum(stats, (s) => s.readyShards);
      const received = sum(stats, (s) => s.guilds.received);
      const done = stats.every((s) => s.allGuildsAt > 0);
      if (ready + received !== lastCount) {
        lastCount = ready + received;
        lastProgress = Date.now();
      }
      if (Date.now() - lastLog >= 1000 || done) {
        lastLog = Date.now();
        log(`    READY ${ready}/${config.shards}, GUILD_CREATE ${received}/${config.guilds}`);
      }
      if (done) break;
      if (Date.now() - lastProgress > config.stallMs) {
        result.ok = false;
        result.errors.push(`connect phase stalled at READY ${ready}, GUILD_CREATE ${received}`);
        break;
      }
    }
    const connectCpu = connectMeter();
    const startedAt = Math.min(...stats.map((s) => s.startedAt));
    const allReadyAt = Math.max(...stats.map((s) => s.allReadyAt || Infinity));
    const allGuildsAt = Math.max(...stats.map((s) => s.allGuildsAt || Infinity));
    const guildStats = {
      expected: sum(stats, (s) => s.guilds.expected),
      received: sum(stats, (s) => s.guilds.received),
      duplicates: sum(stats, (s) => s.guilds.duplicates),
      unexpected: sum(stats, (s) => s.guilds.unexpected),
      misrouted: sum(stats, (s) => s.guilds.misrouted),
    };
    result.connect = {
      shards: config.shards,
      guilds: config.guilds,
      msToAllReady: allReadyAt - startedAt,
      msToAllGuilds: allGuildsAt - startedAt,
      connectionsPerSec: round(config.shards / ((allReadyAt - startedAt) / 1000), 0),
      guildsPerSec: round(config.guilds / ((allGuildsAt - startedAt) / 1000), 0),
      // Work per simulator CPU-second: less sensitive to other load on the machine than rates.
      guildsPerSimCpuSecond: round(config.guilds / connectCpu.cpuS[0], 0),
      simCpuPct: connectCpu.pct[0],
      simCpuS: connectCpu.cpuS[0],
      clientsCpuPct: round(
        connectCpu.pct.slice(1).reduce((a, b) => a + b, 0),
        1,
      ),
      otherCpuPct: connectCpu.otherPct,
      invalidSessions: sum(stats, (s) => s.invalidSessions),
      closes: mergeCounts(stats.map((s) => s.closes)),
      seqGaps: sum(stats, (s) => s.seqGaps),
      decodeErrors: sum(stats, (s) => s.decodeErrors),
      ...guildStats,
    };
    if (
      guildStats.received !== config.guilds ||
      guildStats.duplicates + guildStats.unexpected + guildStats.misrouted > 0
    ) {
      result.ok = false;
      result.errors.push(`guild delivery wrong: ${JSON.stringify(guildStats)}`);
    }
    log(
      `  ${mode} rep ${rep}: all READY in ${result.connect.msToAllReady} ms (${result.connect.connectionsPerSec} conn/s), ` +
        `all GUILD_CREATE in ${result.connect.msToAllGuilds} ms (${result.connect.guildsPerSec} guilds/s), sim CPU ${result.connect.simCpuPct}%`,
    );

    // c. holding 1,024 sockets with heartbeats only.
    await sleep(1000);
    const idleMeter = cpuMeter([sim.pid]);
    await sleep(config.idleSampleMs);
    const idleCpu = idleMeter();
    result.idle = {
      ...memory(sim.pid),
      simCpuPct: idleCpu.pct[0],
      sampleMs: config.idleSampleMs,
      otherCpuPct: idleCpu.otherPct,
    };
    log(
      `  ${mode} rep ${rep}: holding ${config.shards} sockets: RSS ${result.idle.rssMiB} MiB, idle CPU ${result.idle.simCpuPct}%`,
    );

    // b. dispatch throughput at increasing rates.
    result.traffic = [];
    for (const rate of config.rates[mode]) {
      result.traffic.push(await runTraffic(sim, clients, rate, mode, rep));
      await sleep(1000);
    }
    result.afterTraffic = memory(sim.pid);

    // d. the simulator's own view at the end.
    const state = await admin(sim, 'GET', '/state');
    const liveShards = new Set(state.liveSessions.map((session) => session.shard[0]));
    result.state = {
      liveSessions: state.liveSessions.length,
      distinctLiveShards: liveShards.size,
      violations: state.violations,
      identifies: state.identifies,
      resumes: state.resumes,
      dispatched: state.dispatched,
      framesSent: state.framesSent,
      invalidSessions: state.invalidSessions,
      heartbeatsMissed: state.heartbeatsMissed,
      serverCloses: state.serverCloses,
    };
    const violations = Object.values(state.violations).reduce((a, b) => a + b, 0);
    if (
      state.liveSessions.length !== config.shards ||
      liveShards.size !== config.shards ||
      violations !== 0
    ) {
      result.ok = false;
      result.errors.push(
        `end state: ${state.liveSessions.length} live sessions, violations ${JSON.stringify(state.violations)}`,
      );
    }
    log(
      `  ${mode} rep ${rep}: end state: ${state.liveSessions.length} live sessions, violations ${JSON.stringify(state.violations)}`,
    );
  } catch (error) {
    result.ok = false;
    result.errors.push(error instanceof Error ? error.message : String(error));
    log(`  ${mode} rep ${rep}: FAILED: ${result.errors.at(-1)}`);
  } finally {
    for (const client of clients) if (!client.exited) client.child.send({ cmd: 'close' }, () => {});
    await Promise.all(clients.map((client) => stopChild(client)));
    await stopChild(sim);
  }
  return result;
}

async function runTraffic(sim, clients, rate, mode, rep) {
  const seconds = config.trafficSeconds;
  const otherCpuPctBefore = await waitForQuietMachine(config.quietWaitBeforeRateMs);
  const meter = cpuMeter([sim.pid, ...clients.map((client) => client.pid)]);
  const { id, total } = await admin(sim, 'POST', '/traffic', { eventsPerSecond: rate, seconds });
  let run;
  let delivered = 0;
  let lastDelivered = -1;
  let lastSent = -1;
  let lastProgress = Date.now();
  let lastLog = Date.now();
  let stats;
  for (;;) {
    await sleep(100);
    run = await admin(sim, 'GET', `/traffic/${id}`);
    stats = await allStats(clients);
    delivered = sum(stats, (s) => s.traffic[id]?.count ?? 0);
    if (delivered !== lastDelivered || run.sent !== lastSent) {
      lastDelivered = delivered;
      lastSent = run.sent;
      lastProgress = Date.now();
    }
    if (Date.now() - lastLog >= 1000) {
      lastLog = Date.now();
      log(`    ${rate} ev/s: sent ${run.sent}/${total}, delivered ${delivered}`);
    }
    if (run.done && delivered >= total) break;
    if (Date.now() - lastProgress > config.stallMs) break;
  }
  const cpu = meter();
  const runs = stats.map((s) => s.traffic[id]).filter(Boolean);
  const lastAt = Math.max(...runs.map((r) => r.lastAt));
  const histogram = mergeHistograms(runs.map((r) => r.latencyHistogram));
  const figures = {
    targetPerSec: rate,
    seconds,
    total,
    sent: run.sent,
    delivered,
    distinct: sum(runs, (r) => r.distinct),
    duplicates: sum(runs, (r) => r.duplicates),
    emitMs: run.finishedAt - run.startedAt,
    emittedPerSec: round(run.sent / ((run.finishedAt - run.startedAt) / 1000), 0),
    deliveredPerSec: runs.length ? round(delivered / ((lastAt - run.startedAt) / 1000), 0) : 0,
    // How much later than the schedule (start + seconds) the last event reached a client.
    lagMs: runs.length ? lastAt - (run.startedAt + seconds * 1000) : null,
    latencyMs: {
      p50: percentile(histogram, 0.5),
      p99: percentile(histogram, 0.99),
      max: percentile(histogram, 1),
    },
    simCpuPct: cpu.pct[0],
    eventsPerSimCpuSecond: round(run.sent / cpu.cpuS[0], 0),
    clientsCpuPct: round(
      cpu.pct.slice(1).reduce((a, b) => a + b, 0),
      1,
    ),
    otherCpuPct: cpu.otherPct,
    otherCpuPctBefore,
    seqGaps: sum(stats, (s) => s.seqGaps),
    simRssMiB: memory(sim.pid)?.rssMiB,
  };
  figures.keptUp =
    figures.sent === total &&
    figures.delivered === total &&
    figures.distinct === total &&
    figures.duplicates === 0 &&
    figures.emittedPerSec >= 0.95 * rate &&
    figures.lagMs !== null &&
    figures.lagMs < 1000;
  log(
    `  ${mode} rep ${rep}: ${rate} ev/s → emitted ${figures.emittedPerSec}/s, delivered ${figures.delivered}/${total} ` +
      `at ${figures.deliveredPerSec}/s, lag ${figures.lagMs} ms, p99 ${figures.latencyMs.p99} ms, sim CPU ${figures.simCpuPct}%` +
      `${figures.keptUp ? '' : '  (did not keep up)'}`,
  );
  return figures;
}

// ---- figures ----------------------------------------------------------------------------------

function sum(items, pick) {
  return items.reduce((total, item) => total + (pick(item) ?? 0), 0);
}

function mergeCounts(objects) {
  const merged = {};
  for (const object of objects)
    for (const [key, value] of Object.entries(object)) merged[key] = (merged[key] ?? 0) + value;
  return merged;
}

function mergeHistograms(histograms) {
  const merged = new Map();
  for (const histogram of histograms)
    for (const [ms, count] of histogram ?? []) merged.set(ms, (merged.get(ms) ?? 0) + count);
  return [...merged].sort((a, b) => a[0] - b[0]);
}

function summarize(sessions) {
  const summary = {};
  for (const mode of config.modes) {
    const runs = sessions.filter((s) => s.mode === mode);
    const connects = runs.map((r) => r.connect).filter(Boolean);
    const pick = (list, key) => ({
      median: median(list.map((x) => x[key])),
      runs: list.map((x) => x[key] ?? null),
    });
    const traffic = config.rates[mode].map((rate) => {
      const figures = runs.map((r) => r.traffic?.find((t) => t.targetPerSec === rate)).filter(Boolean);
      return {
        targetPerSec: rate,
        emittedPerSec: pick(figures, 'emittedPerSec'),
        deliveredPerSec: pick(figures, 'deliveredPerSec'),
        delivered: figures.map((f) => `${f.delivered}/${f.total}`),
        lagMs: pick(figures, 'lagMs'),
        latencyP99Ms: {
          median: median(figures.map((f) => f.latencyMs.p99)),
          runs: figures.map((f) => f.latencyMs.p99),
        },
        simCpuPct: pick(figures, 'simCpuPct'),
        eventsPerSimCpuSecond: pick(figures, 'eventsPerSimCpuSecond'),
        clientsCpuPct: pick(figures, 'clientsCpuPct'),
        otherCpuPct: pick(figures, 'otherCpuPct'),
        keptUp: `${figures.filter((f) => f.keptUp).length}/${figures.length}`,
        // Most runs kept up: on a shared machine one run can be disturbed by other processes.
        keptUpMajority: figures.length > 0 && figures.filter((f) => f.keptUp).length * 2 > figures.length,
      };
    });
    // The highest rate such that it and every lower rate kept up (in most runs).
    const firstMiss = traffic.findIndex((t) => !t.keptUpMajority);
    const sustained = (firstMiss < 0 ? traffic : traffic.slice(0, firstMiss)).map((t) => t.targetPerSec);
    summary[mode] = {
      connect: {
        connectionsPerSec: pick(connects, 'connectionsPerSec'),
        msToAllReady: pick(connects, 'msToAllReady'),
        guildsPerSec: pick(connects, 'guildsPerSec'),
        guildsPerSimCpuSecond: pick(connects, 'guildsPerSimCpuSecond'),
        msToAllGuilds: pick(connects, 'msToAllGuilds'),
        simCpuPct: pick(connects, 'simCpuPct'),
        clientsCpuPct: pick(connects, 'clientsCpuPct'),
        otherCpuPct: pick(connects, 'otherCpuPct'),
      },
      idle: {
        rssMiB: pick(runs.map((r) => r.idle).filter(Boolean), 'rssMiB'),
        simCpuPct: pick(runs.map((r) => r.idle).filter(Boolean), 'simCpuPct'),
      },
      peakRssMiB: pick(runs.map((r) => r.afterTraffic).filter(Boolean), 'hwmMiB'),
      traffic,
      sustainedEventsPerSec: sustained.length ? Math.max(...sustained) : null,
      maxDeliveredPerSec: Math.max(0, ...traffic.map((t) => t.deliveredPerSec.median ?? 0)),
      endState: runs.map(
        (r) => r.state && { liveSessions: r.state.liveSessions, violations: r.state.violations },
      ),
      allOk: runs.every((r) => r.ok),
    };
  }
  return summary;
}

function fmt(n) {
  return n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US');
}

function runsText(values) {
  return values.map(fmt).join(' / ');
}

function markdown(report) {
  const { summary } = report;
  const modeName = (mode) => (mode === 'none' ? 'plain JSON' : mode);
  const lines = [];
  lines.push('# discord-sim capacity');
  lines.push('');
  lines.push(
    `One simulator process, ${fmt(report.config.guilds)} guilds, ${fmt(report.config.shards)} shards (max_concurrency ${report.config.maxConcurrency}), ` +
      `${report.config.clients} load-client process(es) (raw \`ws\`, bench/discord-sim/load-client.mjs) on the same machine. ` +
      `${report.config.reps} repetition(s); medians first, then each run in parentheses. Produced by \`npm run bench:sim\` on ${report.date.slice(0, 10)}; every raw figure is in discord-sim.json.`,
  );
  lines.push('');
  lines.push(
    'CPU % is of one core, from /proc/<pid>/stat over the phase. "other CPU %" is what processes outside this bench used meanwhile ' +
      '(the machine is shared; high values mean the wall-clock rates understate the simulator). "per sim CPU-s" divides the work by the ' +
      "simulator's own CPU time: a ceiling estimate for one core that other load disturbs less. " +
      `The bench, simulator and client ran at scheduling priority ${report.config.appliedNice ?? 0} (nice), so other processes on the machine disturb them less.`,
  );
  lines.push('');
  const m = report.machine;
  lines.push(
    `Machine: ${machineSummary(m)}; ws ${m.packages.ws}, pako ${m.packages.pako}, zlib-sync ${m.packages['zlib-sync']}.`,
  );
  lines.push('');
  lines.push('## Connect and identify (all shards at once)');
  lines.push('');
  lines.push(
    '| transport | connections/s to all READY | time to all READY (ms) | guilds/s | time to all GUILD_CREATE (ms) | guilds per sim CPU-s | sim CPU % | clients CPU % | other CPU % |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const [mode, s] of Object.entries(summary)) {
    const c = s.connect;
    lines.push(
      `| ${modeName(mode)} | **${fmt(c.connectionsPerSec.median)}** (${runsText(c.connectionsPerSec.runs)}) | ${fmt(c.msToAllReady.median)} (${runsText(c.msToAllReady.runs)}) ` +
        `| **${fmt(c.guildsPerSec.median)}** (${runsText(c.guildsPerSec.runs)}) | ${fmt(c.msToAllGuilds.median)} (${runsText(c.msToAllGuilds.runs)}) | ${fmt(c.guildsPerSimCpuSecond.median)} | ${fmt(c.simCpuPct.median)} | ${fmt(c.clientsCpuPct.median)} | ${fmt(c.otherCpuPct.median)} |`,
    );
  }
  lines.push('');
  lines.push('## Dispatch throughput (`POST /_sim/traffic`, MESSAGE_CREATE)');
  lines.push('');
  lines.push(
    `Each rate runs for ${report.config.trafficSeconds} s. Delivered = counted by nonce at the clients; lag = how late the last event arrived after the schedule ended; "kept up" = every event sent and delivered once, emitted at ≥ 95 % of the target, lag < 1 s; "sustained" below is the highest rate that it and every lower rate kept up in most runs.`,
  );
  lines.push('');
  lines.push(
    '| transport | target ev/s | emitted ev/s | delivered ev/s | delivered/total | lag (ms) | latency p99 (ms) | events per sim CPU-s | sim CPU % | clients CPU % | other CPU % | kept up |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const [mode, s] of Object.entries(summary)) {
    for (const t of s.traffic) {
      lines.push(
        `| ${modeName(mode)} | ${fmt(t.targetPerSec)} | ${fmt(t.emittedPerSec.median)} (${runsText(t.emittedPerSec.runs)}) | **${fmt(t.deliveredPerSec.median)}** (${runsText(t.deliveredPerSec.runs)}) ` +
          `| ${t.delivered.join(', ')} | ${fmt(t.lagMs.median)} (${runsText(t.lagMs.runs)}) | ${fmt(t.latencyP99Ms.median)} | ${fmt(t.eventsPerSimCpuSecond.median)} | ${fmt(t.simCpuPct.median)} | ${fmt(t.clientsCpuPct.median)} | ${fmt(t.otherCpuPct.median)} | ${t.keptUp} |`,
      );
    }
  }
  lines.push('');
  lines.push('## Simulator resources and end state at 1,024 connections');
  lines.push('');
  lines.push(
    '| transport | RSS holding all shards (MiB) | idle CPU % (heartbeats only) | peak RSS after traffic (MiB) | live sessions at end | violations at end |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- |');
  for (const [mode, s] of Object.entries(summary)) {
    const live = s.endState.map((e) => e?.liveSessions ?? '—').join(' / ');
    const violations = s.endState
      .map((e) => (e ? Object.values(e.violations).reduce((a, b) => a + b, 0) : '—'))
      .join(' / ');
    lines.push(
      `| ${modeName(mode)} | ${fmt(s.idle.rssMiB.median)} (${runsText(s.idle.rssMiB.runs)}) | ${fmt(s.idle.simCpuPct.median)} | ${fmt(s.peakRssMiB.median)} (${runsText(s.peakRssMiB.runs)}) | ${live} | ${violations} |`,
    );
  }
  lines.push('');
  lines.push('## What it means');
  lines.push('');
  lines.push(interpretation(report));
  lines.push('');
  return lines.join('\n');
}

function interpretation(report) {
  const parts = [];
  for (const [mode, s] of Object.entries(report.summary)) {
    const name = mode === 'none' ? 'Plain JSON' : 'With zlib-stream';
    const c = s.connect;
    const sustained =
      s.sustainedEventsPerSec === null
        ? 'none of the tested rates'
        : `${fmt(s.sustainedEventsPerSec)} events/s`;
    const over = s.traffic.find((t) => !t.keptUpMajority);
    const perCpu = Math.max(0, ...s.traffic.map((t) => t.eventsPerSimCpuSecond.median ?? 0));
    parts.push(
      `${name}, the simulator brought all ${fmt(report.config.shards)} shards to READY at a median ${fmt(c.connectionsPerSec.median)} connections/s ` +
        `and streamed all ${fmt(report.config.guilds)} GUILD_CREATEs at ${fmt(c.guildsPerSec.median)} guilds/s ` +
        `(${fmt(c.guildsPerSimCpuSecond.median)} guilds per simulator CPU-second); ` +
        `it kept up with every tested dispatch rate up to ${sustained}` +
        (over
          ? `; at ${fmt(over.targetPerSec)} events/s it emitted ${fmt(over.emittedPerSec.median)}/s and the clients received ${fmt(over.deliveredPerSec.median)}/s ` +
            `(sim CPU ${fmt(over.simCpuPct.median)} %, clients ${fmt(over.clientsCpuPct.median)} %, other processes ${fmt(over.otherCpuPct.median)} %)`
          : '') +
        `. One simulator core handles about ${fmt(perCpu)} events/s (events per simulator CPU-second).`,
    );
  }
  parts.push(
    'The load client and any other work share the same 2 cores, so these are lower bounds for the simulator alone. ' +
      'A later benchmark is not limited by discord-sim while its connect rate, guild count and dispatch rate stay below the sustained figures here ' +
      '(with margin: about half of them), and the simulator process stays well under 100 % of one core (read /proc/<pid>/stat as this bench does).',
  );
  return parts.join(' ');
}

// ---- main -------------------------------------------------------------------------------------

async function main() {
  if (!fs.existsSync(SIM_CLI))
    throw new Error(`${path.relative(root, SIM_CLI)} is missing: run \`npx tsc -b\` first`);
  config.appliedNice = applyNice(process.pid);
  log(
    `discord-sim bench${quick ? ' (quick)' : ''}: ${config.guilds} guilds, ${config.shards} shards, ${config.clients} client(s), ` +
      `${config.reps} rep(s), modes ${config.modes.join(', ')}, priority ${config.appliedNice}`,
  );
  const sessions = [];
  for (let rep = 1; rep <= config.reps; rep++) {
    for (const mode of config.modes) {
      log(`${mode} rep ${rep}/${config.reps}`);
      sessions.push(await runSession(mode, rep));
    }
  }
  const report = {
    benchmark: 'discord-sim',
    date: new Date().toISOString(),
    quick,
    durationS: Math.round((Date.now() - benchStart) / 1000),
    machine: machineFacts(config.nice),
    config: { ...config, simCli: path.relative(root, SIM_CLI) },
    summary: null,
    sessions,
  };
  report.summary = summarize(sessions);
  fs.mkdirSync(outDir, { recursive: true });
  const jsonFile = path.join(outDir, 'discord-sim.json');
  const mdFile = path.join(outDir, 'discord-sim.md');
  fs.writeFileSync(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  fs.writeFileSync(mdFile, markdown(report));
  console.log(`\n${markdown(report)}`);
  log(
    `wrote ${path.relative(process.cwd(), jsonFile) || jsonFile} and ${path.relative(process.cwd(), mdFile) || mdFile}`,
  );
  const failed = sessions.filter((s) => !s.ok);
  if (failed.length > 0) {
    for (const s of failed) log(`FAILED ${s.mode} rep ${s.rep}: ${s.errors.join('; ')}`);
    process.exitCode = 1;
  }
}

main().catch(async (error) => {
  log(`bench failed: ${error instanceof Error ? error.stack : String(error)}`);
  await Promise.all([...children].map((handle) => stopChild(handle, 2000)));
  process.exit(1);
});
