#!/usr/bin/env node
// Section 9 of `npm run bench`: the same discord.js bot (bench/peers/discordjs-bot.cjs: a discord.js
// 14 Client with Guilds | GuildMessages and its default caches, counting `messageCreate`) on
// Discluster and on discord-hybrid-sharding, in one run against discord-sim (a fresh simulator per
// measured system, same seed and settings, so the same guilds):
//   - discluster: a real fleet (nats-server, MASTER, one CONTROL with its pm2 daemon) running the
//     bot file as its clusters, the Client from `createDiscordJsClient(cluster)` with
//     `guildSnapshots: true`;
//   - hybrid: discord-hybrid-sharding's ClusterManager (tuned as in the other sections: clusters of
//     max_concurrency shards, spawn delay W / max_concurrency per shard) running the same file,
//     `new Client({ shards: getInfo().SHARD_LIST, … })` with a ClusterClient.
// Both have S / C cluster processes of C shards. Per round and system:
//   1. cold start until every shard has a live session at the simulator and every cluster's
//      `client.guilds.cache.size` equals the simulator's guild count of its shards;
//   2. memory: VmRSS of every bot process, summed, sampled once a second (median), divided by S;
//   3. events/s under an equal CPU cap: an unmeasured warm-up, then every bot process of the system
//      moved into one cgroup with a CPU quota (bench/sdk/common.mjs createCpuCap, as the dispatch
//      section caps its process) and more MESSAGE_CREATE traffic offered than that budget handles:
//      the rate its `messageCreate` handlers reach is the system's ceiling on that budget;
//   4. a full restart: everything stopped (Discluster: MASTER, CONTROL and `pm2 kill`, as the
//      restart section; hybrid: manager and clusters) and started again; identifies and resumes
//      counted by the simulator, time until every shard serves and until every cluster's cache is
//      full again.
// Rounds alternate the systems; ratios are Discluster over hybrid within a round, then the median.
//
//   node bench/peers/discordjs.mjs [--quick] [--out DIR] [--reps N] [--shards N]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCpuCap } from '../sdk/common.mjs';
import { cpuSeconds, memoryMiB, waitForQuietMachine } from '../lib/cpu.mjs';
import { median, round } from '../lib/figures.mjs';
import { log, sleep } from '../lib/log.mjs';
import { PEERS } from '../lib/peers.mjs';
import { startProbeServer } from '../lib/probe.mjs';
import { runSection } from '../lib/section.mjs';
import { startSim, stateDelta } from '../lib/sim.mjs';
import { guardedRun, startSystem, waitAllLive } from '../lib/systems.mjs';

const BOT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'discordjs-bot.cjs');
const VARIANTS = ['discluster', 'hybrid'];

/** Guilds per shard as the simulator routes them: (guild_id >> 22) % S, from its guild list. */
async function guildsByShard(sim, shards, guilds) {
  const list = await sim.call('GET', `/channels?limit=${guilds}`);
  if (list.length !== guilds) throw new Error(`the simulator listed ${list.length} of ${guilds} guilds`);
  const counts = new Array(shards).fill(0);
  for (const { guild_id: id } of list) counts[Number((BigInt(id) >> 22n) % BigInt(shards))]++;
  return counts;
}

function startVariant(variant, cfg, sim, probe) {
  if (variant === 'discluster')
    return startSystem(
      {
        system: 'discluster',
        shards: cfg.shards,
        identifyWindowMs: cfg.windowMs,
        hosts: [{ id: 'alpha', cores: 2 }],
        botFile: BOT,
      },
      sim,
      probe,
    );
  return startSystem(
    { system: 'peer', peer: PEERS.hybridTuned(cfg.shards, cfg.maxConcurrency, cfg.windowMs) },
    sim,
    probe,
    { bot: BOT },
  );
}

/** Every live bot's stats (a bot that does not answer in time counts as not there). */
async function botStats(probe) {
  const answers = await Promise.all(
    probe.live().map((bot) => probe.request(bot, 'stats', {}, 10_000).catch(() => null)),
  );
  return answers.filter(Boolean);
}

/**
 * Waits until every shard is held by a bot whose `client.guilds.cache.size` equals the simulator's
 * guild count of its shards. Resolves with the time and what the bots reported.
 */
async function waitFullCaches(probe, system, expected, timeoutMs, label) {
  const deadline = Date.now() + timeoutMs;
  let last = [];
  for (;;) {
    system.check();
    last = await botStats(probe);
    const covered = new Set();
    for (const stats of last) {
      const want = stats.shardIds.reduce((sum, id) => sum + expected[id], 0);
      if (stats.guilds === want) for (const id of stats.shardIds) covered.add(id);
    }
    if (covered.size === expected.length)
      return {
        at: Date.now(),
        clusters: last.length,
        guilds: last.reduce((sum, s) => sum + s.guilds, 0),
      };
    if (Date.now() > deadline)
      throw new Error(
        `${label}: caches not full after ${timeoutMs} ms (${covered.size}/${expected.length} shards; clusters report ${last.map((s) => `${s.guilds}`).join(', ')} guilds)`,
      );
    await sleep(250);
  }
}

async function sampleRss(pids, seconds) {
  const sums = [];
  for (let i = 0; i < seconds; i++) {
    let sum = 0;
    for (const pid of pids) sum += memoryMiB(pid)?.rssMiB ?? 0;
    sums.push(sum);
    await sleep(1000);
  }
  return { rssMiB: round(median(sums), 1), samples: sums.map((v) => round(v, 1)) };
}

/** Traffic at `rate` for `seconds`; the bots' counts summed. With `cap`, the bot processes run in it. */
async function trafficStep(env, pids, rate, seconds, label, cap = null) {
  const otherCpuPctBefore = await waitForQuietMachine(env.quietMs, 15, [...pids, env.sim.pid]);
  if (cap) for (const pid of pids) cap.add(pid);
  try {
    const throttledBefore = cap?.stat() ?? null;
    const cpuBefore = pids.map(cpuSeconds);
    const meter = env.sampler.measure();
    const { id, total } = await env.sim.call('POST', '/traffic', { eventsPerSecond: rate, seconds });
    const started = Date.now();
    let sum = { count: 0, distinct: 0, duplicates: 0, firstAt: 0, lastAt: 0 };
    let lastCount = -1;
    let lastProgress = Date.now();
    for (;;) {
      await sleep(500);
      const runs = (await botStats(env.probe)).map((s) => s.traffic[String(id)]).filter(Boolean);
      sum = {
        count: runs.reduce((n, r) => n + r.count, 0),
        distinct: runs.reduce((n, r) => n + r.distinct, 0),
        duplicates: runs.reduce((n, r) => n + r.duplicates, 0),
        firstAt: Math.min(...runs.map((r) => r.firstAt)),
        lastAt: Math.max(...runs.map((r) => r.lastAt)),
      };
      if (sum.count !== lastCount) {
        lastCount = sum.count;
        lastProgress = Date.now();
      }
      const run = await env.sim.call('GET', `/traffic/${id}`);
      if (run.done && sum.distinct >= total) break;
      if (Date.now() - lastProgress > 10_000 || Date.now() - started > 120_000) break;
    }
    const cpuS = pids.map(cpuSeconds).reduce((a, b) => a + b, 0) - cpuBefore.reduce((a, b) => a + b, 0);
    const throttledAfter = cap?.stat() ?? null;
    const cpu = meter();
    const spanS = (sum.lastAt - sum.firstAt) / 1000;
    const result = {
      offeredPerSec: rate,
      seconds,
      total,
      received: sum.count,
      distinct: sum.distinct,
      duplicates: sum.duplicates,
      complete: sum.distinct === total && sum.duplicates === 0,
      receivedPerSec: spanS > 0 ? round(sum.count / spanS, 0) : null,
      cpuUsPerEvent: sum.count > 0 ? round((cpuS * 1e6) / sum.count, 1) : null,
      botCpuS: round(cpuS, 2),
      capFraction: cap ? cap.fraction : null,
      // The cgroup's periods in which the quota ran out: the cap, not other work, bound the rate.
      throttledPeriods: throttledAfter ? throttledAfter.nr_throttled - throttledBefore.nr_throttled : null,
      periods: throttledAfter ? throttledAfter.nr_periods - throttledBefore.nr_periods : null,
      otherCpuPct: cpu.otherCpuPct,
      otherCpuPctBefore,
    };
    log(
      `    ${label}: ${result.received}/${total} at ${result.receivedPerSec}/s, ${result.cpuUsPerEvent} µs CPU/event, others ${result.otherCpuPct}%`,
    );
    return result;
  } finally {
    if (cap) for (const pid of pids) cap.remove(pid);
  }
}

async function runOnce(variant, cfg, rep, env) {
  const { shards } = cfg;
  const guilds = shards * cfg.guildsPerShard;
  const result = { variant, rep, shards, guilds, clusters: shards / cfg.maxConcurrency };
  const sim = await startSim({
    guilds,
    shards,
    'max-concurrency': cfg.maxConcurrency,
    'identify-window-ms': cfg.windowMs,
  });
  const probe = await startProbeServer();
  const label = `${variant} r${rep}`;
  return guardedRun(result, label, { sim, probe }, async (track) => {
    const expected = await guildsByShard(sim, shards, guilds);
    result.guildsPerShard = { min: Math.min(...expected), max: Math.max(...expected) };
    const coldTimeout = 3 * Math.ceil(shards / cfg.maxConcurrency) * 7000 + 120_000;
    // 1. Cold start.
    const t0 = Date.now();
    let system = track(await startVariant(variant, cfg, sim, probe));
    const live = await waitAllLive(sim, system, shards, coldTimeout, `${label} cold start`);
    const full = await waitFullCaches(probe, system, expected, coldTimeout, `${label} cold start`);
    result.coldStart = {
      allLiveMs: live.at - t0,
      fullCachesMs: full.at - t0,
      identifies: (await sim.call('GET', '/state')).identifies,
    };
    log(
      `  ${label}: cold start, every shard live after ${round(result.coldStart.allLiveMs / 1000, 1)} s, every cache full (${full.guilds} guilds in ${full.clusters} clusters) after ${round(result.coldStart.fullCachesMs / 1000, 1)} s`,
    );
    // 2. Memory, idle, every guild cached.
    const botPids = system.workerPids();
    if (botPids.length !== result.clusters)
      throw new Error(`${botPids.length} bot processes found, ${result.clusters} expected`);
    const systemPids = [...system.pids(), ...(system.fleet?.nats ? [system.fleet.nats.pid] : [])];
    await sleep(cfg.settleMs);
    const rss = await sampleRss(botPids, cfg.rssSeconds);
    const rssSystem = await sampleRss(systemPids, 2);
    const heapUsedMiB = (await botStats(probe)).reduce((sum, stats) => sum + stats.heapUsedMiB, 0);
    result.memory = {
      botProcesses: botPids.length,
      botRssMiB: rss.rssMiB,
      samples: rss.samples,
      rssMiBPerShard: round(rss.rssMiB / shards, 2),
      // V8 heap in use, summed over the bot processes (the rest of RSS: code, native buffers).
      botHeapUsedMiB: round(heapUsedMiB, 1),
      systemProcesses: systemPids.length,
      systemRssMiB: rssSystem.rssMiB,
      systemRssMiBPerShard: round(rssSystem.rssMiB / shards, 2),
    };
    log(
      `  ${label}: ${rss.rssMiB} MiB in ${botPids.length} bot processes = ${result.memory.rssMiBPerShard} MiB per shard (every process of the system: ${rssSystem.rssMiB} MiB in ${systemPids.length})`,
    );
    // 2b. The same after a longer idle (full runs only): V8 grows the young generation during the
    // guild-loading burst and gives it back only once its memory reducer finds the process idle
    // (tens of seconds later): the figure a long-running bot pays.
    if (cfg.steadyAfterMs) {
      await sleep(Math.max(0, full.at + cfg.steadyAfterMs - Date.now()));
      const steady = await sampleRss(botPids, cfg.rssSeconds);
      const steadyHeapMiB = (await botStats(probe)).reduce((sum, stats) => sum + stats.heapUsedMiB, 0);
      result.memory.steady = {
        afterMs: cfg.steadyAfterMs,
        botRssMiB: steady.rssMiB,
        samples: steady.samples,
        rssMiBPerShard: round(steady.rssMiB / shards, 2),
        botHeapUsedMiB: round(steadyHeapMiB, 1),
      };
      log(
        `  ${label}: ${steady.rssMiB} MiB in the bot processes ${round(cfg.steadyAfterMs / 1000)} s after the caches were full = ${result.memory.steady.rssMiBPerShard} MiB per shard`,
      );
    }
    // 3. Events/s under an equal CPU cap.
    const stepEnv = { ...env, sim, probe };
    result.warmup = await trafficStep(
      stepEnv,
      botPids,
      cfg.warmup.rate,
      cfg.warmup.seconds,
      `${label} warm-up`,
    );
    if (env.cap)
      result.capped = await trafficStep(
        stepEnv,
        botPids,
        cfg.cap.rate,
        cfg.cap.seconds,
        `${label} capped at ${cfg.cap.fraction} core`,
        env.cap,
      );
    // 4. Full restart: stop everything, start again.
    await sleep(2000);
    const before = await sim.call('GET', '/state');
    const meter = env.sampler.measure();
    const stopAt = Date.now();
    if (variant === 'discluster') await system.fleet.stopEverything();
    else await system.stop();
    const stoppedAt = Date.now();
    probe.reset();
    if (variant === 'discluster') await system.fleet.startEverything();
    else system = track(await startVariant(variant, cfg, sim, probe));
    const restartTimeout = 3 * Math.ceil(shards / cfg.maxConcurrency) * 7000 + 120_000;
    const liveAgain = await waitAllLive(sim, system, shards, restartTimeout, `${label} restart`);
    const fullAgain = await waitFullCaches(probe, system, expected, restartTimeout, `${label} restart`);
    result.restart = {
      stopMs: stoppedAt - stopAt,
      startToServingMs: liveAgain.at - stoppedAt,
      startToFullCachesMs: fullAgain.at - stoppedAt,
      downtimeMs: fullAgain.at - stopAt,
      guildsCached: fullAgain.guilds,
      ...stateDelta(before, await sim.call('GET', '/state')),
      cpu: meter(),
    };
    log(
      `  ${label}: restart, stop ${round(result.restart.stopMs / 1000, 1)} s, start → serving ${round(result.restart.startToServingMs / 1000, 1)} s, → full caches ${round(result.restart.startToFullCachesMs / 1000, 1)} s; identifies ${result.restart.identifies}, resumes ${result.restart.resumes}, violations ${result.restart.identifyViolations}; others ${result.restart.cpu.otherCpuPct}% CPU`,
    );
  });
}

runSection(
  'discordjs',
  { reps: { type: 'string' }, shards: { type: 'string' } },
  async ({ quick, flags, sampler, record }) => {
    const cfg = {
      shards: Number(flags.shards ?? (quick ? 8 : 16)),
      maxConcurrency: 4,
      guildsPerShard: quick ? 100 : 250,
      // discord.js's own identify throttler waits Discord's 5 s, which the peer cannot shorten.
      windowMs: 5000,
      reps: Number(flags.reps ?? (quick ? 1 : 2)),
      settleMs: quick ? 2000 : 5000,
      rssSeconds: quick ? 3 : 10,
      steadyAfterMs: quick ? null : 60_000,
      warmup: { rate: 1000, seconds: quick ? 1 : 2 },
      // 0.05 core per cluster process of C shards, as the dispatch section's cap per process.
      cap: { fraction: quick ? 0.1 : 0.2, rate: quick ? 5000 : 6000, seconds: quick ? 2 : 3 },
      quietMs: quick ? 1000 : 10_000,
    };
    record.config = cfg;
    record.runs = [];
    const cap = createCpuCap(cfg.cap.fraction);
    // A cgroup competes with the machine's other processes by its own weight, not its tasks' nice:
    // at the default weight (cpu.shares 1024, one nice-0 task) the bot processes, which run at nice
    // −10 outside it, got less than the quota while others used ~190 % of the 2 cores. The largest
    // weight makes the quota, equal for both systems, the limit.
    if (cap) {
      const [file, weight] = cap.kind === 'v1' ? ['cpu.shares', '262144'] : ['cpu.weight', '10000'];
      try {
        fs.writeFileSync(path.join(cap.dir, file), weight);
        cfg.cap.weight = `${file} ${weight}`;
      } catch (error) {
        log(`could not raise the cap's weight: ${error.message}`);
      }
    }
    if (!cap) log('no CPU cap possible here (needs root and a cgroup cpu controller): no capped step');
    record.capped = Boolean(cap);
    const env = { sampler, cap, quietMs: cfg.quietMs };
    for (let rep = 1; rep <= cfg.reps; rep++)
      for (const variant of VARIANTS) {
        log(`discordjs: ${variant}, ${cfg.shards} shards, round ${rep}`);
        record.runs.push(await runOnce(variant, cfg, rep, env));
      }
    record.summary = summarize(record.runs);
  },
);

/** Per system: medians and runs; ratios Discluster / hybrid per round, then their median. */
function summarize(runs) {
  const ok = (variant) => runs.filter((r) => r.variant === variant && r.ok);
  const figure = (variant, get) => {
    const values = ok(variant).map(get);
    return { median: median(values), runs: values };
  };
  const ratio = (get) => {
    const ratios = ok('discluster').map((r) => {
      const peer = runs.find((x) => x.variant === 'hybrid' && x.rep === r.rep && x.ok);
      const a = get(r);
      const b = peer ? get(peer) : null;
      return a !== null && a !== undefined && b ? round(a / b, 3) : null;
    });
    return { median: round(median(ratios), 3), runs: ratios };
  };
  const summary = { systems: {} };
  for (const variant of VARIANTS) {
    summary.systems[variant] = {
      runs: runs.filter((r) => r.variant === variant).length,
      failed: runs.filter((r) => r.variant === variant && !r.ok).map((r) => r.error),
      rssMiBPerShard: figure(variant, (r) => r.memory?.rssMiBPerShard ?? null),
      steadyRssMiBPerShard: figure(variant, (r) => r.memory?.steady?.rssMiBPerShard ?? null),
      steadyHeapUsedMiB: figure(variant, (r) => r.memory?.steady?.botHeapUsedMiB ?? null),
      systemRssMiBPerShard: figure(variant, (r) => r.memory?.systemRssMiBPerShard ?? null),
      botRssMiB: figure(variant, (r) => r.memory?.botRssMiB ?? null),
      botHeapUsedMiB: figure(variant, (r) => r.memory?.botHeapUsedMiB ?? null),
      cappedPerSec: figure(variant, (r) => r.capped?.receivedPerSec ?? null),
      cappedCpuUsPerEvent: figure(variant, (r) => r.capped?.cpuUsPerEvent ?? null),
      cappedComplete: ok(variant).map((r) => r.capped?.complete ?? null),
      coldFullCachesMs: figure(variant, (r) => r.coldStart?.fullCachesMs ?? null),
      restartIdentifies: figure(variant, (r) => r.restart?.identifies ?? null),
      restartResumes: figure(variant, (r) => r.restart?.resumes ?? null),
      restartViolations: figure(variant, (r) => r.restart?.identifyViolations ?? null),
      restartToServingMs: figure(variant, (r) => r.restart?.startToServingMs ?? null),
      restartToFullCachesMs: figure(variant, (r) => r.restart?.startToFullCachesMs ?? null),
      restartDowntimeMs: figure(variant, (r) => r.restart?.downtimeMs ?? null),
      otherCpuPct: figure(variant, (r) => r.capped?.otherCpuPct ?? null),
      restartOtherCpuPct: figure(variant, (r) => r.restart?.cpu?.otherCpuPct ?? null),
    };
  }
  summary.ratios = {
    rssPerShard: ratio((r) => r.memory?.rssMiBPerShard),
    steadyRssPerShard: ratio((r) => r.memory?.steady?.rssMiBPerShard),
    systemRssPerShard: ratio((r) => r.memory?.systemRssMiBPerShard),
    cappedPerSec: ratio((r) => r.capped?.receivedPerSec),
    restartToFullCaches: ratio((r) => r.restart?.startToFullCachesMs),
  };
  return summary;
}
