#!/usr/bin/env node
// Section 2 of `npm run bench`: full-fleet restart, a deploy that stops every process and starts
// them again, within the simulator's session timeout (180 s). Measured: time until every shard
// serves again (a live session for every shard at the simulator), identifies and resumes spent,
// identify violations, duplicate sessions, and MESSAGE_CREATEs lost while traffic runs through the
// restart (nonces counted from the bot logs).
//
// Discluster: MASTER and one CONTROL per stand-in host (own PM2_HOME) are stopped with SIGTERM and
// every pm2 daemon with `pm2 kill` (clusters get SIGINT: shards close for resume, sessions are
// saved in NATS KV); then MASTER and the CONTROLs are started again. The fleet's first (cold) start
// uses a shortened identify window (W = 500 ms, simulator and bot alike) to save minutes; the
// restart itself spends no identify when it works, so W does not enter it.
// Peer: discord-hybrid-sharding tuned as in the startup section (its fastest safe-looking setting),
// at Discord's 5 s window: its manager and every cluster are stopped and started again. It keeps no
// session state across processes, so every shard IDENTIFYs again.
//
//   node bench/peers/restart.mjs [--quick] [--out DIR] [--shards N] [--reps N]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onCleanup } from '../sdk/common.mjs';
import { median, round } from '../lib/figures.mjs';
import { log, sleep } from '../lib/log.mjs';
import { PEERS, readNonceLogs } from '../lib/peers.mjs';
import { startProbeServer } from '../lib/probe.mjs';
import { runSection } from '../lib/section.mjs';
import { identifyLog, liveShards, lostNonces, startSim, stateDelta, waitTrafficDone } from '../lib/sim.mjs';
import { processMemory, startSystem, waitAllLive } from '../lib/systems.mjs';

const C = 16;
const TRAFFIC_PER_SECOND = 100;
let quickRun = false;
/** Traffic long enough to span the stop and the start of `shards` shards. */
const cfgSeconds = (shards) => (quickRun ? 10 : Math.max(20, Math.round((shards / 1024) * 60)));

/** The simulator both systems restart against: 10 guilds a shard, max_concurrency C. */
function startRestartSim(shards, windowMs) {
  return startSim({ guilds: shards * 10, shards, 'max-concurrency': C, 'identify-window-ms': windowMs });
}

async function discluster({ shards, hosts, reps, windowMs, sampler, record }) {
  const sim = await startRestartSim(shards, windowMs);
  const probe = await startProbeServer();
  const variant = {
    system: 'discluster',
    shards,
    identifyWindowMs: windowMs,
    hosts: hosts.map((id) => ({ id, cores: 2 })),
  };
  const out = {
    label: `Discluster (${hosts.length} hosts)`,
    shards,
    maxConcurrency: C,
    windowMs,
    hosts: hosts.length,
    restarts: [],
  };
  record.discluster = out;
  const t0 = Date.now();
  const meter = sampler.measure();
  const system = await startSystem(variant, sim, probe);
  try {
    await waitAllLive(sim, system, shards, 3 * Math.ceil(shards / C) * windowMs + 300_000, 'cold start');
    const cold = await identifyLog(sim, t0);
    out.coldStart = {
      allReadyMs: cold.times.at(-1) - t0,
      firstIdentifyMs: cold.times[0] - t0,
      limitMs: Math.ceil(shards / C) * windowMs,
      ratio: round((cold.times.at(-1) - t0) / (Math.ceil(shards / C) * windowMs), 3),
      ...(await (async () => {
        const state = await sim.call('GET', '/state');
        return {
          identifyViolations: state.violations.identifyRate,
          identifiesUnjudged: state.identifiesUnjudged ?? null,
        };
      })()),
      cpu: meter(),
    };
    const ready = await system.fleet.waitAllReady(300_000, 1000);
    if (!ready.ok) throw new Error('`discluster status` never showed every shard ready after the cold start');
    out.coldStart.memory = processMemory(system.pids());
    log(
      `  cold start of ${shards} shards: all READY at ${round(out.coldStart.allReadyMs / 1000, 1)} s (${out.coldStart.ratio}× the limit at W=${windowMs}), ${out.coldStart.memory.processes} processes, ${out.coldStart.memory.rssMiB} MiB`,
    );
    for (let rep = 1; rep <= reps; rep++) {
      await sleep(quickRun ? 1000 : 3000);
      const restart = { rep };
      const before = await sim.call('GET', '/state');
      // Traffic through the whole restart: it starts before the stop and ends after the restart.
      const seconds = cfgSeconds(shards);
      const traffic = await sim.call('POST', '/traffic', { eventsPerSecond: TRAFFIC_PER_SECOND, seconds });
      await sleep(1000);
      const m = sampler.measure();
      const stopAt = Date.now();
      await system.fleet.stopEverything();
      const stoppedAt = Date.now();
      restart.stopMs = stoppedAt - stopAt;
      restart.liveAfterStop = liveShards(await sim.call('GET', '/state'), shards).live;
      await system.fleet.startEverything();
      const live = await waitAllLive(sim, system, shards, 170_000, `restart ${rep}`);
      restart.startToServingMs = live.at - stoppedAt;
      restart.downtimeMs = live.at - stopAt;
      restart.cpu = m();
      Object.assign(restart, stateDelta(before, await sim.call('GET', '/state')));
      const status = await system.fleet.waitAllReady(120_000, 1000);
      restart.statusAllReadyMs = status.ok ? status.at - stoppedAt : null;
      // Every MESSAGE_CREATE of the traffic run at a bot handler?
      await waitTrafficDone(sim, traffic.id, 120_000);
      await sleep(3000);
      const { unique, deliveries } = system.fleet.receivedNonces();
      const lost = lostNonces(unique, traffic);
      restart.traffic = {
        id: traffic.id,
        total: traffic.total,
        perSecond: TRAFFIC_PER_SECOND,
        seconds,
        lost,
      };
      restart.deliveriesSoFar = deliveries;
      out.restarts.push(restart);
      log(
        `  restart ${rep}: stop ${round(restart.stopMs / 1000, 1)} s, start → all serving ${round(restart.startToServingMs / 1000, 1)} s ` +
          `(downtime ${round(restart.downtimeMs / 1000, 1)} s); identifies ${restart.identifies}, resumes ${restart.resumes}, ` +
          `violations ${restart.identifyViolations}, duplicates ${restart.duplicateLiveSessions}; ${lost}/${traffic.total} events lost; others ${restart.cpu.otherCpuPct}% CPU`,
      );
    }
  } finally {
    await system.stop();
    await probe.close();
    await sim.stop();
  }
  const pick = (key) => out.restarts.map((r) => r[key]);
  out.summary = {
    downtimeMs: { median: median(pick('downtimeMs')), runs: pick('downtimeMs') },
    startToServingMs: { median: median(pick('startToServingMs')), runs: pick('startToServingMs') },
    stopMs: { median: median(pick('stopMs')), runs: pick('stopMs') },
    identifies: { max: Math.max(...pick('identifies')), runs: pick('identifies') },
    resumes: { runs: pick('resumes') },
    eventsLost: {
      max: Math.max(...out.restarts.map((r) => r.traffic.lost)),
      runs: out.restarts.map((r) => r.traffic.lost),
    },
    identifyViolations: { runs: pick('identifyViolations') },
    duplicateLiveSessions: { runs: pick('duplicateLiveSessions') },
    otherCpuPct: {
      median: median(out.restarts.map((r) => r.cpu.otherCpuPct)),
      runs: out.restarts.map((r) => r.cpu.otherCpuPct),
    },
  };
}

async function peer({ shards, windowMs, sampler, record }) {
  const make = PEERS.hybridTuned(shards, C, windowMs);
  const out = { label: make.label, shards, maxConcurrency: C, windowMs };
  record.peer = out;
  const sim = await startRestartSim(shards, windowMs);
  const probe = await startProbeServer();
  const nonceDir = fs.mkdtempSync(path.join(os.tmpdir(), 'discluster-bench-nonces-'));
  onCleanup(() => fs.rmSync(nonceDir, { recursive: true, force: true }));
  let system = await startSystem({ system: 'peer', peer: make }, sim, probe, { nonceLogDir: nonceDir });
  try {
    const t0 = Date.now();
    await waitAllLive(sim, system, shards, 3 * shards * 7000 + 60_000, 'peer cold start');
    out.coldStartMs = (await identifyLog(sim, t0)).times.at(-1) - t0;
    // A deploy comes later than one window after the start: the last buckets' windows are over.
    await sleep(windowMs + 1000);
    const before = await sim.call('GET', '/state');
    // Traffic through the whole restart: it pays the identify limit again, ceil(S/C) windows.
    const seconds = Math.ceil(shards / C) * (windowMs / 1000) + (quickRun ? 5 : 20);
    const traffic = await sim.call('POST', '/traffic', { eventsPerSecond: TRAFFIC_PER_SECOND, seconds });
    await sleep(1000);
    const m = sampler.measure();
    const stopAt = Date.now();
    await system.stop();
    const stoppedAt = Date.now();
    probe.reset();
    system = await startSystem({ system: 'peer', peer: make }, sim, probe, { nonceLogDir: nonceDir });
    const live = await waitAllLive(sim, system, shards, 3 * shards * 7000 + 60_000, 'peer restart');
    const restart = {
      stopMs: stoppedAt - stopAt,
      startToServingMs: live.at - stoppedAt,
      downtimeMs: live.at - stopAt,
      cpu: m(),
    };
    Object.assign(restart, stateDelta(before, await sim.call('GET', '/state')));
    // Events: appended to a file per process as they arrive (bench/peers/djs-bot.cjs), old and new
    // processes alike; what was sent while a shard had no session is never replayed to a new one.
    await waitTrafficDone(sim, traffic.id, 60_000);
    await sleep(2000);
    const lost = lostNonces(readNonceLogs(nonceDir, traffic.id).unique, traffic);
    restart.traffic = { id: traffic.id, total: traffic.total, perSecond: TRAFFIC_PER_SECOND, seconds, lost };
    out.restart = restart;
    log(
      `  peer restart: start → all serving ${round(restart.startToServingMs / 1000, 1)} s (downtime ${round(restart.downtimeMs / 1000, 1)} s); ` +
        `identifies ${restart.identifies}, resumes ${restart.resumes}, violations ${restart.identifyViolations}; ${lost}/${traffic.total} events lost`,
    );
  } finally {
    await system.stop();
    await probe.close();
    await sim.stop();
  }
}

runSection(
  'restart',
  { shards: { type: 'string' }, reps: { type: 'string' }, 'peer-shards': { type: 'string' } },
  async ({ quick, flags, sampler, record }) => {
    quickRun = quick;
    const shards = Number(flags.shards ?? (quick ? 64 : 1024));
    const reps = Number(flags.reps ?? (quick ? 1 : 3));
    const peerShards = Number(flags['peer-shards'] ?? (quick ? 16 : 256));
    record.config = {
      shards,
      reps,
      maxConcurrency: C,
      disclusterColdStartWindowMs: 500,
      peerShards,
      peerWindowMs: 5000,
      trafficPerSecond: TRAFFIC_PER_SECOND,
    };
    log(`restart: Discluster ${shards} shards on ${quick ? 2 : 3} hosts, ${reps} restart(s)`);
    await discluster({
      shards,
      hosts: quick ? ['alpha', 'beta'] : ['alpha', 'beta', 'gamma'],
      reps,
      windowMs: 500,
      sampler,
      record,
    });
    log(`restart: peer at ${peerShards} shards`);
    await peer({ shards: peerShards, windowMs: 5000, sampler, record });
  },
);
