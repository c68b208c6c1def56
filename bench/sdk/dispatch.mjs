#!/usr/bin/env node
// Dispatch throughput and CPU per event of one discluster-sdk cluster process against a bare
// `@discordjs/ws` WebSocketManager, measured in the same run against the same simulator.
//
// One discord-sim process (raised priority, via discluster-testing's startDiscordSimProcess) and one
// nats-server run for the whole bench. Then, per compression mode, rounds alternate A B A B …:
//   A "bare":    a child process with a bare WebSocketManager (in-memory sessions, a local throttler)
//   B "cluster": a child process with a standalone `Cluster` (NATS session store, NATS identify
//                throttler, IPC, liveness probe) for the same shards.
// Each child is a fresh process with fresh sessions (the cluster gets a fresh bot namespace, so
// nothing is resumed): every round IDENTIFYs. After READY and every GUILD_CREATE, the bench posts
// `POST /_sim/traffic` at increasing rates and measures, per rate:
//   - events/s received by the dispatch listener (count / time from first to last event), and
//     whether every nonce arrived exactly once;
//   - client CPU time per event, from /proc/<pid>/stat before the traffic and after the last event
//     (and, finer, process.cpuUsage() inside the child from first to last event).
// The ratios cluster/bare are computed per round (adjacent A and B) and as ratios of medians.
//
//   node bench/sdk/dispatch.mjs            full run, writes bench/results/sdk.json + sdk.md
//   node bench/sdk/dispatch.mjs --quick    1 round per mode, short steps, writes to a temp dir
// Flags: --rounds N, --modes zlib-stream,none, --zlib-rates 2500,5000, --plain-rates 5000,10000,
// --seconds S, --guilds N, --out DIR.
import path from 'node:path';
import { applyNice, createCpuCap, forkChild, here, onCleanup, stopChild, testingHelpers } from './common.mjs';
import { cpuMeter, cpuSeconds, memoryMiB, waitForQuietMachine } from '../lib/cpu.mjs';
import { median, round } from '../lib/figures.mjs';
import { numberList, stringFlags } from '../lib/flags.mjs';
import { log, sleep } from '../lib/log.mjs';
import { machineSummary, sdkBuildFingerprint } from '../lib/machineFacts.mjs';
import { admin } from '../lib/sim.mjs';
import { parseSectionFlags, runSdkSection } from './section.mjs';

const CLIENT = path.join(here, 'dispatch-client.mjs');
const TOKEN = 'bench-sdk-token';
// GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT: full MESSAGE_CREATE payloads, as bench:sim's client.
const INTENTS = 1 | (1 << 9) | (1 << 15);

const { flags, quick, outDir } = parseSectionFlags({
  ...stringFlags('rounds', 'modes', 'zlib-rates', 'plain-rates', 'seconds', 'guilds'),
  ...stringFlags('cap-zlib-fraction', 'cap-plain-fraction', 'cap-zlib-rate', 'cap-plain-rate'),
  'no-cap': { type: 'boolean', default: false },
});
const config = {
  guilds: Number(flags.guilds ?? 2000),
  shards: 4,
  maxConcurrency: 4,
  // Short identify window (sim and SDK), so consecutive rounds never wait on the rate limit.
  identifyWindowMs: 200,
  // A closed session stops being sequenced and buffered by the simulator soon after its round.
  sessionTimeoutMs: 1000,
  sessionStartTotal: 1_000_000,
  rounds: Number(flags.rounds ?? (quick ? 1 : 5)),
  modes: (flags.modes ?? 'zlib-stream,none').split(','),
  // bench/results/discord-sim.md: one simulator sustains 15,000 ev/s with zlib-stream and 50,000 ev/s
  // plain (1,024 shards, 3 of 3 runs). The steps stay at or below two thirds of those.
  rates: {
    'zlib-stream': numberList(flags['zlib-rates'] ?? (quick ? '2500,10000' : '2500,5000,10000')),
    none: numberList(flags['plain-rates'] ?? (quick ? '5000,30000' : '5000,10000,20000,30000')),
  },
  trafficSeconds: Number(flags.seconds ?? (quick ? 3 : 5)),
  // Unmeasured traffic first, so both clients are JIT-warm before the measured steps.
  warmup: { rate: 5000, seconds: 2 },
  // The saturation step: the client process runs under a CPU quota (a cgroup of the bench's own) of
  // this fraction of one core, so its ceiling (measured on a quiet machine: ~9-10k ev/s zlib-stream and
  // ~14-16k plain at 0.1 core) falls well below the offered rate, which the simulator sustains easily;
  // received events/s is then the client's ceiling under equal CPU, A against B.
  cap: {
    fractions: {
      'zlib-stream': Number(flags['cap-zlib-fraction'] ?? 0.07),
      none: Number(flags['cap-plain-fraction'] ?? 0.1),
    },
    rates: {
      'zlib-stream': Number(flags['cap-zlib-rate'] ?? 10_000),
      none: Number(flags['cap-plain-rate'] ?? 25_000),
    },
  },
  settleMs: 1500,
  idleSampleMs: quick ? 2000 : 4000,
  pauseBetweenRatesMs: 1500,
  quietWaitMs: quick ? 3000 : 30_000,
  quietStepWaitMs: quick ? 2000 : 15_000,
  stallMs: 20_000,
  variants: ['bare', 'cluster'],
};

// ---- one client process: start, READY, idle sample, traffic steps, stop -------------------------------

let botCounter = 0;

async function runClient(env, mode, variant, roundNo) {
  const { sim, nats, gateway } = env;
  const result = { mode, variant, round: roundNo, ok: true, errors: [], steps: [] };
  result.otherCpuPctBefore = await waitForQuietMachine(config.quietWaitMs, 15, [sim.process.pid, nats.pid]);
  const bot = `bench${process.pid}r${++botCounter}`;
  const shardIds = Array.from({ length: config.shards }, (_, i) => i);
  // The SDK build this child loads (it is being rebuilt by others at times).
  result.sdkBuild = sdkBuildFingerprint().combined;
  const child = forkChild(CLIENT, [variant], `${variant} client`);
  result.pid = child.pid;
  result.priority = child.priority;
  try {
    await child.waitFor((m) => m?.hello, 30_000, 'hello');
    const startedAt = performance.now();
    await child.send({
      cmd: 'start',
      config: {
        token: TOKEN,
        intents: INTENTS,
        compression: mode === 'none' ? null : mode,
        shardIds,
        shardCount: config.shards,
        identifyWindowMs: config.identifyWindowMs,
        gateway,
        natsUrl: nats.url,
        assignment: {
          clusterId: 0,
          shardIds,
          shardCount: config.shards,
          clusterIds: [0],
          bot,
          token: TOKEN,
          gateway,
        },
      },
    });
    await child
      .waitFor((m) => m?.started || m?.startError, 60_000, 'start')
      .then((m) => {
        if (m.startError) throw new Error(`start failed: ${m.startError}`);
      });
    let stats;
    for (const deadline = Date.now() + 60_000; ;) {
      stats = (await child.request({ cmd: 'stats' })).stats;
      if (stats.readyShards === config.shards && stats.guildsReceived >= stats.guildsExpected) break;
      if (Date.now() > deadline)
        throw new Error(`not READY within 60 s: ${JSON.stringify({ ...stats, traffic: undefined })}`);
      await sleep(100);
    }
    result.msToReadyAndGuilds = round(performance.now() - startedAt, 0);
    result.guilds = stats.guildsReceived;
    await sleep(config.settleMs);

    // Idle: heartbeats, and for the cluster its NATS liveness probe and session flushes.
    const idle = cpuMeter([child.pid]);
    await sleep(config.idleSampleMs);
    const idleCpu = idle();
    result.idle = { cpuPct: idleCpu.pct[0], sampleS: idleCpu.wallS, otherPct: idleCpu.otherPct };

    const label = `${mode} ${variant} r${roundNo}`;
    result.warmup = await runStep(env, child, config.warmup.rate, `${label} warm-up`, config.warmup.seconds);
    await sleep(config.pauseBetweenRatesMs);
    for (const rate of config.rates[mode]) {
      result.steps.push(await runStep(env, child, rate, label));
      await sleep(config.pauseBetweenRatesMs);
    }
    if (env.cap) {
      const rate = config.cap.rates[mode];
      env.cap.setFraction(config.cap.fractions[mode]);
      env.cap.add(child.pid);
      const throttledBefore = env.cap.stat();
      try {
        result.capped = await runStep(env, child, rate, `${label} capped at ${env.cap.fraction} core`);
        result.capped.capFraction = env.cap.fraction;
        result.capped.capQuotaUs = env.cap.quotaUs;
      } finally {
        const throttledAfter = env.cap.stat();
        env.cap.remove(child.pid);
        if (throttledBefore && throttledAfter && result.capped) {
          result.capped.throttledPeriods = throttledAfter.nr_throttled - throttledBefore.nr_throttled;
          result.capped.periods = throttledAfter.nr_periods - throttledBefore.nr_periods;
        }
      }
      // Under the cap the client cannot keep up by design: "complete" (every nonce once) still must hold.
      await sleep(config.pauseBetweenRatesMs);
    }
    const end = (await child.request({ cmd: 'stats' })).stats;
    result.memory = memoryMiB(child.pid);
    result.heapUsedMiB = end.heapUsedMiB;
    result.clientErrors = end.errors;
    result.closes = end.closes;
    result.nonCountedMessages = end.nonCountedMessages;
    if (end.errors.length > 0 || end.closes.length > 0) {
      result.ok = false;
      result.errors.push(
        `client saw errors/closes: ${JSON.stringify({ errors: end.errors, closes: end.closes })}`,
      );
    }
    if ([...result.steps, result.capped].some((step) => step && !step.complete)) {
      result.ok = false;
      result.errors.push('some traffic step did not deliver every nonce exactly once');
    }
  } catch (error) {
    result.ok = false;
    result.errors.push(error instanceof Error ? error.message : String(error));
    log(`  ${mode} ${variant} round ${roundNo}: FAILED: ${result.errors.at(-1)}`);
  } finally {
    const status = await stopChild(child);
    result.exit = status;
  }
  // The simulator drops the closed sessions after sessionTimeoutMs; start the next round after that.
  await sleep(config.sessionTimeoutMs + 500);
  return result;
}

async function runStep(env, child, rate, label, seconds = config.trafficSeconds) {
  const { sim, nats } = env;
  const simPid = sim.process.pid;
  const otherCpuPctBefore = await waitForQuietMachine(config.quietStepWaitMs, 15, [
    child.pid,
    simPid,
    nats.pid,
  ]);
  const meter = cpuMeter([child.pid, simPid, nats.pid]);
  const cpuBefore = cpuSeconds(child.pid);
  const { id, total } = await admin(sim, 'POST', '/traffic', { eventsPerSecond: rate, seconds });
  await child.send({ cmd: 'expect', runId: id, total });
  let run;
  let traffic;
  let lastProgressKey = '';
  let lastProgress = Date.now();
  let lastLog = Date.now();
  for (;;) {
    await sleep(100);
    const stats = (await child.request({ cmd: 'stats' })).stats;
    traffic = stats.traffic[id] ?? { count: 0, distinct: 0, duplicates: 0 };
    run = await admin(sim, 'GET', `/traffic/${id}`);
    const key = `${run.sent}/${traffic.count}`;
    if (key !== lastProgressKey) {
      lastProgressKey = key;
      lastProgress = Date.now();
    }
    if (Date.now() - lastLog >= 2000) {
      lastLog = Date.now();
      log(`    ${label} ${rate}/s: sent ${run.sent}/${total}, received ${traffic.count}`);
    }
    if (run.done && traffic.distinct >= total) break;
    if (Date.now() - lastProgress > config.stallMs) break;
  }
  // Right after the last event: /proc before/after includes the (equal) stats polling of both variants.
  const cpuAfter = cpuSeconds(child.pid);
  const cpu = meter();
  const spanS = (traffic.lastAt - traffic.firstAt) / 1000;
  const innerCpuUs =
    traffic.cpuAtExpectedUs !== null && traffic.cpuAtFirstUs !== null
      ? traffic.cpuAtExpectedUs - traffic.cpuAtFirstUs
      : null;
  const step = {
    targetPerSec: rate,
    seconds,
    total,
    sent: run.sent,
    emittedPerSec: run.finishedAt ? round(run.sent / ((run.finishedAt - run.startedAt) / 1000), 0) : null,
    received: traffic.count,
    distinct: traffic.distinct,
    duplicates: traffic.duplicates,
    complete: traffic.distinct === total && traffic.count === total && traffic.duplicates === 0,
    // Events/s at the dispatch listener: count / time from the first to the last event.
    receivedPerSec: spanS > 0 ? round(traffic.count / spanS, 0) : null,
    spanMs: round(spanS * 1000, 1),
    // How much later than the simulator's schedule the last event reached the listener.
    lagMs: traffic.lastAt ? round(traffic.lastAt - (run.startedAt + seconds * 1000), 0) : null,
    clientCpuS: round(cpuAfter - cpuBefore, 3),
    // /proc/<pid>/stat (10 ms ticks) from before POST /traffic to after the last event.
    cpuUsPerEvent: traffic.count > 0 ? round(((cpuAfter - cpuBefore) * 1e6) / traffic.count, 2) : null,
    // process.cpuUsage() in the child (µs resolution) from the first to the last expected event.
    innerCpuUsPerEvent: innerCpuUs !== null && total > 1 ? round(innerCpuUs / (total - 1), 2) : null,
    clientCpuPct: cpu.pct[0],
    simCpuPct: cpu.pct[1],
    natsCpuPct: cpu.pct[2],
    benchCpuPct: cpu.benchPct,
    otherCpuPct: cpu.otherPct,
    otherCpuPctBefore,
  };
  // Kept up: every event once, and the last one within half a second of the schedule.
  step.keptUp = step.complete && step.lagMs !== null && step.lagMs < 500;
  log(
    `  ${label} ${rate}/s: ${step.received}/${total} at ${step.receivedPerSec}/s, lag ${step.lagMs} ms, ` +
      `${step.cpuUsPerEvent} µs CPU/event (inner ${step.innerCpuUsPerEvent}), client ${step.clientCpuPct}% ` +
      `sim ${step.simCpuPct}% nats ${step.natsCpuPct}% other ${step.otherCpuPct}%${step.keptUp ? '' : '  (behind)'}`,
  );
  return step;
}

// ---- summary ----------------------------------------------------------------------------------------

/** One figure of both variants: medians, every round's value, cluster/bare per round and of the medians. */
function compare(b, c, rounds) {
  const perRound = [];
  for (let i = 0; i < rounds; i++)
    perRound.push(b[i] && c[i] !== null && c[i] !== undefined ? round(c[i] / b[i], 3) : null);
  return {
    bare: { median: median(b), runs: b },
    cluster: { median: median(c), runs: c },
    ratioOfMedians: median(b) ? round(median(c) / median(b), 3) : null,
    ratioPerRound: perRound,
    medianRatio: round(median(perRound), 3),
  };
}

function summarize(results) {
  const summary = {};
  for (const mode of config.modes) {
    const byVariant = (variant) => results.filter((r) => r.mode === mode && r.variant === variant);
    const bare = byVariant('bare');
    const cluster = byVariant('cluster');
    const rounds = Math.max(bare.length, cluster.length);
    const steps = config.rates[mode].map((rate) => {
      const pick = (runs, key) =>
        runs.map((r) => r.steps.find((s) => s.targetPerSec === rate)?.[key] ?? null);
      const figure = (key) => compare(pick(bare, key), pick(cluster, key), rounds);
      const keptUp = (runs) => pick(runs, 'keptUp');
      const complete = (runs) => pick(runs, 'complete');
      return {
        targetPerSec: rate,
        receivedPerSec: figure('receivedPerSec'),
        cpuUsPerEvent: figure('cpuUsPerEvent'),
        innerCpuUsPerEvent: figure('innerCpuUsPerEvent'),
        lagMs: figure('lagMs'),
        clientCpuPct: figure('clientCpuPct'),
        simCpuPct: { bare: median(pick(bare, 'simCpuPct')), cluster: median(pick(cluster, 'simCpuPct')) },
        natsCpuPct: { bare: median(pick(bare, 'natsCpuPct')), cluster: median(pick(cluster, 'natsCpuPct')) },
        otherCpuPct: {
          bare: median(pick(bare, 'otherCpuPct')),
          cluster: median(pick(cluster, 'otherCpuPct')),
        },
        keptUp: { bare: keptUp(bare), cluster: keptUp(cluster) },
        complete: { bare: complete(bare), cluster: complete(cluster) },
      };
    });
    const cappedFigure = (key) =>
      compare(
        bare.map((r) => r.capped?.[key] ?? null),
        cluster.map((r) => r.capped?.[key] ?? null),
        rounds,
      );
    const capped = bare.some((r) => r.capped)
      ? {
          fraction: config.cap.fractions[mode],
          targetPerSec: config.cap.rates[mode],
          receivedPerSec: cappedFigure('receivedPerSec'),
          cpuUsPerEvent: cappedFigure('cpuUsPerEvent'),
          clientCpuPct: cappedFigure('clientCpuPct'),
          lagMs: cappedFigure('lagMs'),
          complete: {
            bare: bare.map((r) => r.capped?.complete ?? null),
            cluster: cluster.map((r) => r.capped?.complete ?? null),
          },
          simCpuPct: {
            bare: median(bare.map((r) => r.capped?.simCpuPct)),
            cluster: median(cluster.map((r) => r.capped?.simCpuPct)),
          },
        }
      : null;
    const idle = (runs) => runs.map((r) => r.idle?.cpuPct ?? null);
    summary[mode] = {
      rounds,
      steps,
      capped,
      idleCpuPct: {
        bare: { median: median(idle(bare)), runs: idle(bare) },
        cluster: { median: median(idle(cluster)), runs: idle(cluster) },
      },
      msToReadyAndGuilds: {
        bare: median(bare.map((r) => r.msToReadyAndGuilds)),
        cluster: median(cluster.map((r) => r.msToReadyAndGuilds)),
      },
      rssMiB: {
        bare: median(bare.map((r) => r.memory?.rssMiB)),
        cluster: median(cluster.map((r) => r.memory?.rssMiB)),
      },
      failedRuns: results
        .filter((r) => r.mode === mode && !r.ok)
        .map((r) => `${r.variant} round ${r.round}: ${r.errors.join('; ')}`),
    };
  }
  return summary;
}

// ---- main -------------------------------------------------------------------------------------------

runSdkSection('dispatch', { config, quick, outDir }, async (machine) => {
  log(
    `dispatch bench: ${machineSummary(machine)}; modes ${config.modes.join(', ')}, ${config.rounds} round(s)`,
  );
  const { startNatsServer, startDiscordSimProcess } = await testingHelpers();
  const nats = await startNatsServer();
  onCleanup(() => nats.stop());
  applyNice(nats.pid);
  const sim = await startDiscordSimProcess({
    token: TOKEN,
    guilds: config.guilds,
    shards: config.shards,
    'max-concurrency': config.maxConcurrency,
    'identify-window-ms': config.identifyWindowMs,
    'session-start-total': config.sessionStartTotal,
    'session-timeout-ms': config.sessionTimeoutMs,
  });
  onCleanup(() => sim.stop());
  const gatewayResponse = await fetch(`${sim.rest}/gateway/bot`, {
    headers: { authorization: `Bot ${TOKEN}` },
  });
  const gateway = await gatewayResponse.json();
  const cap = flags['no-cap'] ? null : createCpuCap(config.cap.fractions[config.modes[0]] ?? 0.1);
  if (!flags['no-cap'] && !cap)
    log('no CPU cap possible here (needs root and a cgroup cpu controller): skipping the capped step');
  const env = { sim, nats, gateway, cap };
  config.capInfo = cap ? { kind: cap.kind, fractions: config.cap.fractions, periodUs: cap.periodUs } : null;
  log(`discord-sim pid ${sim.process.pid}, nats-server pid ${nats.pid} (${nats.url})`);

  const results = [];
  const startedAt = new Date().toISOString();
  for (const mode of config.modes) {
    for (let roundNo = 1; roundNo <= config.rounds; roundNo++) {
      for (const variant of config.variants) {
        log(`${mode}: round ${roundNo}, ${variant}`);
        results.push(await runClient(env, mode, variant, roundNo));
      }
    }
  }
  const state = await admin(sim, 'GET', '/state');
  const simEnd = {
    identifies: state.identifies,
    resumes: state.resumes,
    violations: state.violations,
    liveSessions: state.liveSessions.length,
    dispatched: state.dispatched,
    memory: memoryMiB(sim.process.pid),
  };
  return { startedAt, summary: summarize(results), runs: results, extra: { simEnd } };
});
