#!/usr/bin/env node
// Section 1 of `npm run bench`: cold start. S shards, max_concurrency C, identify window W: time
// from launching a system to the simulator having answered READY to every shard, as a ratio to
// the limit ceil(S/C)·W, and the IDENTIFYs the simulator refused (violations.identifyRate).
//
// Every run gets a fresh discord-sim (and, for Discluster, a fresh nats-server), so windows,
// counters and sessions start empty. The clock is the simulator's own IDENTIFY log (GET
// /_sim/identifies: epoch ms of each IDENTIFY and whether it was accepted), read against the
// moment the bench launched the system's first process (same machine, same clock).
//
// The peers' identify throttler (@discordjs/ws's SimpleIdentifyThrottler, used by discord.js and
// so by both peers) waits a fixed 5,000 ms per rate-limit key plus 0-1,500 ms of jitter: a
// shortened simulator window would only hand them a smaller denominator. The comparison therefore
// runs at Discord's real window (W = 5,000 ms) for every system; a Discluster-only row at
// W = 500 ms shows how its fixed start-up cost weighs against a short window.
//
//   node bench/peers/startup.mjs [--quick] [--out DIR] [--reps N]
import { waitForQuietMachine } from '../lib/cpu.mjs';
import { median, round } from '../lib/figures.mjs';
import { log, sleep } from '../lib/log.mjs';
import { readyShardCount } from '../lib/fleet.mjs';
import { PEERS } from '../lib/peers.mjs';
import { startProbeServer } from '../lib/probe.mjs';
import { runSection } from '../lib/section.mjs';
import { identifyLog, startSim } from '../lib/sim.mjs';
import { guardedRun, processMemory, startSystem, waitAllLive } from '../lib/systems.mjs';

const C = 16;
const W = 5000;
const GUILDS_PER_SHARD = 10;

const discluster = (shards, hostCount, windowMs = W) => ({
  system: 'discluster',
  key: `discluster-${hostCount}h`,
  label: `Discluster (${hostCount} hosts)`,
  shards,
  identifyWindowMs: windowMs,
  hosts: ['alpha', 'beta', 'gamma', 'delta'].slice(0, hostCount).map((id) => ({ id, cores: 2 })),
});
const peer = (key, shards, make) => ({
  system: 'peer',
  key,
  shards,
  identifyWindowMs: W,
  peer: make(shards),
  label: make(shards).label,
});

function plan(quick, reps) {
  if (quick)
    return [
      {
        title: 'S=32',
        reps: 1,
        variants: [discluster(32, 2), peer('hybrid-tuned', 32, (s) => PEERS.hybridTuned(s, C, W))],
      },
      {
        title: 'peers at their defaults (small S: their spawn delays set the time)',
        reps: 1,
        variants: [
          peer('sharding-manager', 2, PEERS.shardingManager),
          peer('hybrid-default', 2, PEERS.hybridDefault),
        ],
      },
    ];
  return [
    {
      title: 'S=256',
      reps,
      variants: [discluster(256, 3), peer('hybrid-tuned', 256, (s) => PEERS.hybridTuned(s, C, W))],
    },
    {
      title: 'S=64',
      reps: 1,
      variants: [
        discluster(64, 3),
        peer('hybrid-default', 64, PEERS.hybridDefault),
        peer('sharding-manager', 64, PEERS.shardingManager),
      ],
    },
    {
      title: 'Discluster at W=500 ms',
      reps,
      variants: [{ ...discluster(256, 3, 500), key: 'discluster-3h-w500' }],
    },
  ];
}

/** The limit's floor from the simulator's point of view: the last bucket may start (n-1)·W after the first. */
const limitMs = (shards, windowMs) => Math.ceil(shards / C) * windowMs;

async function runOnce(variant, rep, sampler) {
  const S = variant.shards;
  const windowMs = variant.identifyWindowMs;
  const result = {
    key: variant.key,
    label: variant.label,
    system: variant.system,
    rep,
    shards: S,
    maxConcurrency: C,
    windowMs,
  };
  const sim = await startSim({
    guilds: S * GUILDS_PER_SHARD,
    shards: S,
    'max-concurrency': C,
    'identify-window-ms': windowMs,
  });
  const probe = await startProbeServer();
  return guardedRun(result, `${variant.label} S=${S}`, { sim, probe }, async (track) => {
    result.otherCpuPctBefore = await waitForQuietMachine(sampler.quietMs, 25, [sim.pid]);
    const meter = sampler.measure();
    const t0 = Date.now();
    const system = track(await startSystem(variant, sim, probe));
    // Generous liveness bound (not a target): a few times the slowest documented pace, plus a minute.
    const boundMs = (variant.system === 'discluster' ? 3 * limitMs(S, windowMs) : 3 * S * 7000) + 60_000;
    await waitAllLive(sim, system, S, boundMs, `${variant.label} S=${S}`, 250);
    result.cpu = meter();
    result.memoryAtReady = processMemory(system.pids());
    const identifies = await identifyLog(sim, t0);
    const state = await sim.call('GET', '/state');
    result.firstIdentifyMs = identifies.times[0] - t0;
    result.allReadyMs = identifies.times.at(-1) - t0;
    result.ratio = round(result.allReadyMs / limitMs(S, windowMs), 3);
    result.limitMs = limitMs(S, windowMs);
    // Pacing alone: first to last accepted IDENTIFY against the (n-1) windows between them.
    const gaps = Math.ceil(S / C) - 1;
    result.pacingMs = identifies.times.at(-1) - identifies.times[0];
    result.pacingRatio = gaps > 0 ? round(result.pacingMs / (gaps * windowMs), 3) : null;
    result.identifies = state.identifies;
    result.identifyViolations = state.violations.identifyRate;
    // Inside the window only as the simulator read them, late on a busy CPU (discord-sim README).
    result.identifiesUnjudged = state.identifiesUnjudged ?? null;
    result.refusedIdentifies = identifies.refusals;
    result.invalidSessions = state.invalidSessions;
    result.duplicateLiveSessions = state.violations.duplicateLiveSessions;
    // The system's own view: every shard ready in `discluster status`, or every peer bot's clientReady.
    if (variant.system === 'discluster') {
      const ready = await system.fleet.waitAllReady(120_000, 500);
      result.clientReadyMs = ready.ok ? ready.at - t0 : null;
      result.statusReadyShards = ready.status ? readyShardCount(ready.status) : null;
      result.note =
        'clientReadyMs: first `discluster status` poll (every 0.5 s, after the simulator saw every shard) showing all ready';
    } else {
      const shardsOf = (bots) =>
        bots.reduce(
          (n, bot) => n + (bot.events.some((e) => e.t === 'ready') ? (bot.hello.shardIds?.length ?? 0) : 0),
          0,
        );
      const bots = await probe.waitUntil(
        (list) => shardsOf(list) >= S && list,
        120_000,
        'clientReady from every bot',
      );
      result.clientReadyMs = Math.max(...bots.map((bot) => bot.events.find((e) => e.t === 'ready').at)) - t0;
      result.processes = bots.length;
      result.spawnErrors = system.peer.spawnErrors;
    }
    log(
      `  ${variant.label} S=${S} W=${windowMs}: all READY at ${round(result.allReadyMs / 1000, 1)} s = ${result.ratio}× ceil(S/C)·W ` +
        `(first IDENTIFY at ${round(result.firstIdentifyMs / 1000, 1)} s, pacing ${result.pacingRatio}×), ` +
        `${result.identifyViolations} violations, others ${result.cpu.otherCpuPct}% CPU`,
    );
  });
}

function summarize(runs) {
  const byKey = new Map();
  for (const run of runs) {
    const id = `${run.key}@${run.shards}@${run.windowMs}`;
    if (!byKey.has(id)) byKey.set(id, []);
    byKey.get(id).push(run);
  }
  return [...byKey.values()].map((list) => {
    const ok = list.filter((run) => run.ok);
    const pick = (key) => ok.map((run) => run[key]);
    return {
      key: list[0].key,
      label: list[0].label,
      system: list[0].system,
      shards: list[0].shards,
      maxConcurrency: C,
      windowMs: list[0].windowMs,
      limitMs: limitMs(list[0].shards, list[0].windowMs),
      runs: list.length,
      failed: list.length - ok.length,
      allReadyMs: { median: median(pick('allReadyMs')), runs: pick('allReadyMs') },
      ratio: { median: median(pick('ratio')), runs: pick('ratio') },
      firstIdentifyMs: { median: median(pick('firstIdentifyMs')), runs: pick('firstIdentifyMs') },
      pacingRatio: { median: median(pick('pacingRatio')), runs: pick('pacingRatio') },
      clientReadyMs: { median: median(pick('clientReadyMs')), runs: pick('clientReadyMs') },
      identifyViolations: { median: median(pick('identifyViolations')), runs: pick('identifyViolations') },
      identifies: { median: median(pick('identifies')), runs: pick('identifies') },
      otherCpuPct: {
        median: median(ok.map((run) => run.cpu?.otherCpuPct)),
        runs: ok.map((run) => run.cpu?.otherCpuPct),
      },
      rssMiBAtReady: median(ok.map((run) => run.memoryAtReady?.rssMiB)),
      processesAtReady: median(ok.map((run) => run.memoryAtReady?.processes)),
      errors: list.filter((run) => !run.ok).map((run) => run.error),
    };
  });
}

runSection(
  'startup',
  { reps: { type: 'string' }, groups: { type: 'string' } },
  async ({ quick, flags, sampler, record }) => {
    const reps = Number(flags.reps ?? (quick ? 1 : 3));
    sampler.quietMs = quick ? 2000 : 15_000;
    record.config = { maxConcurrency: C, windowMs: W, guildsPerShard: GUILDS_PER_SHARD, reps, groups: [] };
    record.runs = [];
    // --groups: only the groups whose title contains one of these words (diagnostics).
    const only = flags.groups ? flags.groups.split(',') : null;
    for (const group of plan(quick, reps).filter(
      (g) => !only || only.some((word) => g.title.includes(word)),
    )) {
      record.config.groups.push({
        title: group.title,
        reps: group.reps,
        variants: group.variants.map((v) => `${v.label} S=${v.shards} W=${v.identifyWindowMs}`),
      });
      log(
        `startup, ${group.title}: ${group.variants.map((v) => v.label).join(' / ')}, ${group.reps} round(s)`,
      );
      for (let rep = 1; rep <= group.reps; rep++) {
        for (const variant of group.variants) {
          record.runs.push(await runOnce(variant, rep, sampler));
          record.summary = summarize(record.runs);
          await sleep(1000);
        }
      }
    }
  },
);
