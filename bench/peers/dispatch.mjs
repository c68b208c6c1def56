#!/usr/bin/env node
// Section 5 of `npm run bench`: dispatch throughput of one process holding 4 shards (zlib-stream,
// 2,000 guilds), MESSAGE_CREATE traffic from the simulator with nonces:
//   - bare: a bare `@discordjs/ws` WebSocketManager (bench/sdk/dispatch-client.mjs "bare");
//   - cluster: discluster-sdk's `Cluster` (bench/sdk/dispatch-client.mjs "cluster", standalone:
//     NATS session store and identify throttler, IPC), counting in `cluster.on('dispatch')`;
//   - hybrid: a discord-hybrid-sharding cluster process (discord.js Client, default caches),
//     counting in `client.on('messageCreate')`, which is where its users get events.
// bench/sdk/dispatch.mjs measures cluster against bare in depth (5 rounds, two compressions, CPU
// caps; bench/results/sdk.md); this section repeats a short version of it with the hybrid cluster
// in the same run, so all three ratios share one baseline.
// Per step: events/s at the listener (count / first-to-last), and CPU µs per event of the process
// holding the shards (/proc/<pid>/stat before the POST and after the last event). The saturation
// step moves that process into a cgroup with a CPU quota (bench/sdk/common.mjs createCpuCap) and
// offers more than it can take: events/s then is its ceiling on an equal CPU budget.
//
//   node bench/peers/dispatch.mjs [--quick] [--out DIR] [--reps N]
import { applyNice, createCpuCap, testingHelpers } from '../sdk/common.mjs';
import { cpuSeconds, waitForQuietMachine } from '../lib/cpu.mjs';
import { median, round } from '../lib/figures.mjs';
import { log, sleep } from '../lib/log.mjs';
import { startDispatchClient } from '../lib/clients.mjs';
import { PEERS } from '../lib/peers.mjs';
import { startProbeServer } from '../lib/probe.mjs';
import { runSection } from '../lib/section.mjs';
import { startSim, waitForLiveShards } from '../lib/sim.mjs';
import { startSystem } from '../lib/systems.mjs';

// GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT: full MESSAGE_CREATE payloads, as bench/sdk.
const INTENTS = 1 | (1 << 9) | (1 << 15);
const SHARDS = 4;
const GUILDS = 2000;

/** Starts one client process of `variant`; resolves once every shard is READY with every guild. */
async function startClient(variant, env, rep) {
  const { sim, nats, probe } = env;
  if (variant === 'hybrid') {
    const peer = {
      ...PEERS.hybridTuned(SHARDS, SHARDS, 5000),
      options: { totalShards: SHARDS, shardsPerClusters: SHARDS },
    };
    const system = await startSystem({ system: 'peer', peer }, sim, probe, { intents: INTENTS });
    await waitForLiveShards(sim, SHARDS, { timeoutMs: 120_000, onPoll: () => system.check() });
    const [bot] = await probe.waitUntil(
      (bots) => bots.some((b) => b.events.some((e) => e.t === 'ready')) && bots,
      120_000,
      'hybrid cluster ready',
    );
    return {
      pid: bot.hello.pid,
      traffic: async (id) => (await probe.request(bot, 'stats')).traffic[String(id)],
      stop: async () => {
        await system.stop();
        probe.reset();
      },
    };
  }
  return startDispatchClient(variant, {
    gateway: env.gateway,
    natsUrl: nats.url,
    bot: `disp${process.pid}r${rep}`,
    shards: SHARDS,
    intents: INTENTS,
    identifyWindowMs: 200,
    readyTimeoutMs: 60_000,
  });
}

async function step(env, client, rate, seconds, label, { stallMs = 10_000, maxMs = 90_000 } = {}) {
  const otherCpuPctBefore = await waitForQuietMachine(env.quietMs, 15, [client.pid, env.sim.pid]);
  const cpuBefore = cpuSeconds(client.pid);
  const meter = env.sampler.measure();
  const { id, total } = await env.sim.call('POST', '/traffic', { eventsPerSecond: rate, seconds });
  const started = Date.now();
  let traffic = { count: 0, distinct: 0, duplicates: 0 };
  let lastKey = '';
  let lastProgress = Date.now();
  let run;
  for (;;) {
    await sleep(100);
    traffic = (await client.traffic(id)) ?? traffic;
    run = await env.sim.call('GET', `/traffic/${id}`);
    const key = `${run.sent}/${traffic.count}`;
    if (key !== lastKey) {
      lastKey = key;
      lastProgress = Date.now();
    }
    if (run.done && traffic.distinct >= total) break;
    if (Date.now() - lastProgress > stallMs || Date.now() - started > maxMs) break;
  }
  const cpuAfter = cpuSeconds(client.pid);
  const cpu = meter();
  const spanS = (traffic.lastAt - traffic.firstAt) / 1000;
  const result = {
    targetPerSec: rate,
    seconds,
    total,
    received: traffic.count,
    distinct: traffic.distinct,
    duplicates: traffic.duplicates,
    complete: traffic.distinct === total && traffic.duplicates === 0,
    receivedPerSec: spanS > 0 ? round(traffic.count / spanS, 0) : null,
    lagMs: traffic.lastAt ? round(traffic.lastAt - (run.startedAt + seconds * 1000), 0) : null,
    cpuUsPerEvent: traffic.count > 0 ? round(((cpuAfter - cpuBefore) * 1e6) / traffic.count, 2) : null,
    clientCpuS: round(cpuAfter - cpuBefore, 3),
    otherCpuPct: cpu.otherCpuPct,
    otherCpuPctBefore,
  };
  log(
    `    ${label} ${rate}/s: ${result.received}/${total} at ${result.receivedPerSec}/s, lag ${result.lagMs} ms, ${result.cpuUsPerEvent} µs CPU/event, others ${result.otherCpuPct}%`,
  );
  return result;
}

runSection('dispatch', { reps: { type: 'string' } }, async ({ quick, flags, sampler, record }) => {
  const cfg = {
    shards: SHARDS,
    guilds: GUILDS,
    compression: 'zlib-stream',
    reps: Number(flags.reps ?? (quick ? 1 : 3)),
    rates: quick ? [2500] : [2500, 5000],
    seconds: quick ? 3 : 5,
    warmup: { rate: 2500, seconds: quick ? 1 : 2 },
    // bench/sdk: bare reaches ~6,600 ev/s at 0.07 core; 0.05 core keeps every client below the offered rate.
    cap: { fraction: 0.05, rate: quick ? 5000 : 10_000, seconds: quick ? 1 : 3 },
    variants: ['bare', 'cluster', 'hybrid'],
  };
  record.config = cfg;
  record.runs = [];
  const sim = await startSim({
    guilds: GUILDS,
    shards: SHARDS,
    'max-concurrency': SHARDS,
    'identify-window-ms': 200,
    'session-timeout-ms': 1000,
  });
  const nats = await (await testingHelpers()).startNatsServer({ jetstream: true });
  applyNice(nats.pid);
  const probe = await startProbeServer();
  const cap = createCpuCap(cfg.cap.fraction);
  if (!cap) log('no CPU cap possible here (needs root and a cgroup cpu controller): no saturation step');
  const env = { sim, nats, probe, sampler, gateway: await sim.gatewayBot(), quietMs: quick ? 1000 : 10_000 };
  try {
    for (let rep = 1; rep <= cfg.reps; rep++) {
      for (const variant of cfg.variants) {
        log(`dispatch: ${variant}, round ${rep}`);
        const run = { variant, rep, steps: [] };
        record.runs.push(run);
        let client = null;
        try {
          client = await startClient(variant, env, rep);
          run.pid = client.pid;
          await sleep(1000);
          run.warmup = await step(env, client, cfg.warmup.rate, cfg.warmup.seconds, `${variant} warm-up`);
          for (const rate of cfg.rates) run.steps.push(await step(env, client, rate, cfg.seconds, variant));
          if (cap) {
            cap.add(client.pid);
            try {
              run.capped = await step(
                env,
                client,
                cfg.cap.rate,
                cfg.cap.seconds,
                `${variant} capped at ${cfg.cap.fraction} core`,
                { stallMs: 5000, maxMs: 60_000 },
              );
              run.capped.fraction = cfg.cap.fraction;
            } finally {
              cap.remove(client.pid);
            }
          }
          run.ok = true;
        } catch (error) {
          run.ok = false;
          run.error = error?.message ?? String(error);
          log(`  ${variant} r${rep}: FAILED: ${run.error}`);
        } finally {
          await client?.stop();
          await sleep(1500);
        }
      }
    }
  } finally {
    await probe.close();
    await nats.stop();
    await sim.stop();
  }
  // Medians per variant, ratios to bare per round then their median (bench/sdk's method).
  const ok = (variant) => record.runs.filter((r) => r.variant === variant && r.ok);
  const figure = (variant, get) => {
    const values = ok(variant).map(get);
    const ratios = ok(variant).map((r) => {
      const bare = record.runs.find((x) => x.variant === 'bare' && x.rep === r.rep && x.ok);
      const b = bare ? get(bare) : null;
      const v = get(r);
      return b && v !== null && v !== undefined ? round(v / b, 3) : null;
    });
    return { median: median(values), runs: values, ratioToBare: round(median(ratios), 3), ratioRuns: ratios };
  };
  record.summary = {};
  for (const variant of cfg.variants) {
    record.summary[variant] = {
      steps: cfg.rates.map((rate) => ({
        targetPerSec: rate,
        receivedPerSec: figure(
          variant,
          (r) => r.steps.find((s) => s.targetPerSec === rate)?.receivedPerSec ?? null,
        ),
        cpuUsPerEvent: figure(
          variant,
          (r) => r.steps.find((s) => s.targetPerSec === rate)?.cpuUsPerEvent ?? null,
        ),
        complete: ok(variant).map((r) => r.steps.find((s) => s.targetPerSec === rate)?.complete ?? null),
        lagMs: ok(variant).map((r) => r.steps.find((s) => s.targetPerSec === rate)?.lagMs ?? null),
      })),
      capped: cap
        ? {
            receivedPerSec: figure(variant, (r) => r.capped?.receivedPerSec ?? null),
            cpuUsPerEvent: figure(variant, (r) => r.capped?.cpuUsPerEvent ?? null),
            complete: ok(variant).map((r) => r.capped?.complete ?? null),
          }
        : null,
      failed: record.runs.filter((r) => r.variant === variant && !r.ok).map((r) => r.error),
    };
  }
});
