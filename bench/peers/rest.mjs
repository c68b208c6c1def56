#!/usr/bin/env node
// Section 8 of `npm run bench` (`npm run bench:rest`): REST with the bot's limits shared by 16 bot
// processes (issue 15), three systems side by side on one discord-sim (global limit 50/s), each
// process posting to channels of its own:
//   - Discluster: cluster.rest's client in every process (fleet-wide limits in NATS KV);
//   - uncoordinated: @discordjs/rest in every process, each keeping its own limits (what discord.js,
//     discord-hybrid-sharding and eris-fleet bots do);
//   - @discordjs/proxy: one proxy process every bot process points its `api` at.
// Saturation: every process posts to 12 channels as fast as its client lets it (192 channels, far
// above the global 50/s); the fleet's rate is what the simulator accepted per second between 5 s
// and 25 s, divided by the global limit; 429s are the simulator's count over the whole phase.
// Latency: every process posts to 2 channels, one call per channel per 1.1 s (32/s, no limit
// binds); per-call time in the calling process. The processes run on this one machine: "2 hosts"
// are two groups of 8 that share nothing but NATS, as hosts do.
//
//   node bench/peers/rest.mjs [--quick] [--out DIR]
import path from 'node:path';
import { waitForQuietMachine } from '../lib/cpu.mjs';
import { percentileSorted, round } from '../lib/figures.mjs';
import { log, sleep } from '../lib/log.mjs';
import { runSection } from '../lib/section.mjs';
import { SIM_TOKEN, startSim } from '../lib/sim.mjs';
import { applyNice, forkChild, onCleanup, root, stopChild, testingHelpers } from '../sdk/common.mjs';

const PROCESSES = 16;
const GLOBAL_PER_SECOND = 50;
const SYSTEMS = ['discluster', 'uncoordinated', 'proxy'];

function percentiles(latencies) {
  const sorted = Float64Array.from(latencies).sort();
  const at = (p) => round(percentileSorted(sorted, p), 2);
  return { n: sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: round(sorted.at(-1) ?? 0, 2) };
}

async function channelIds(sim, count) {
  const listed = await sim.call('GET', `/channels?limit=${count}`);
  return listed.map((channel) => channel.id);
}

async function measure(system, { sim, nats, channels, saturateS, latencyS }) {
  let proxy = null;
  let proxyApi = null;
  if (system === 'proxy') {
    proxy = forkChild(
      path.join(root, 'bench', 'rest', 'proxy.mjs'),
      [JSON.stringify({ api: sim.api })],
      'proxy',
    );
    proxyApi = (await proxy.waitFor((m) => m?.t === 'listening', 30_000, 'the proxy listening')).api;
  }
  // One bot: every process of the fleet shares its limits.
  const bot = `restbench${Date.now() % 100_000}`;
  const workers = Array.from({ length: PROCESSES }, (_, index) =>
    forkChild(
      path.join(root, 'bench', 'rest', 'worker.mjs'),
      [
        JSON.stringify({
          mode: system,
          index,
          natsUrl: nats.url,
          bot,
          token: SIM_TOKEN,
          api: sim.api,
          proxyApi,
          processes: PROCESSES,
          globalPerSecond: GLOBAL_PER_SECOND,
        }),
      ],
      `${system}-${index}`,
    ),
  );
  try {
    for (const answer of await Promise.all(workers.map((w) => w.request({ cmd: 'init' }, 60_000))))
      if (answer.error) throw new Error(answer.error);
    const perProcess = channels.length / PROCESSES;
    const own = (index) => channels.slice(index * perProcess, (index + 1) * perProcess);

    // Saturation.
    const before = (await sim.state()).rest;
    const t0 = Date.now();
    const untilMs = t0 + saturateS * 1000;
    const running = workers.map((w, index) =>
      w.request({ cmd: 'saturate', channels: own(index), untilMs }, (saturateS + 120) * 1000),
    );
    const warmS = Math.min(5, saturateS / 5);
    await sleep(t0 + warmS * 1000 - Date.now());
    const from = (await sim.state()).rest;
    const fromAt = Date.now();
    await sleep(untilMs - 2000 - Date.now());
    const to = (await sim.state()).rest;
    const toAt = Date.now();
    const outcomes = await Promise.all(running);
    const after = (await sim.state()).rest;
    const perSecond = (to.ok - from.ok) / ((toAt - fromAt) / 1000);
    const saturation = {
      acceptedPerSecond: round(perSecond, 1),
      ratioToGlobal: round(perSecond / GLOBAL_PER_SECOND, 3),
      rateLimited: after.rateLimited - before.rateLimited,
      globalRateLimited: after.globalRateLimited - before.globalRateLimited,
      invalid: after.invalid - before.invalid,
      banned: after.banned - before.banned,
      clientFailures: outcomes.reduce((sum, o) => sum + (o.outcome?.failed ?? 0), 0),
      measuredS: round((toAt - fromAt) / 1000, 1),
    };
    log(
      `  ${system}: ${saturation.acceptedPerSecond}/s (${saturation.ratioToGlobal} × global), ${saturation.rateLimited} × 429 (${saturation.globalRateLimited} global)`,
    );

    // Let every bucket refill, then latency at a rate no limit binds.
    await sleep(6000);
    const latUntil = Date.now() + latencyS * 1000;
    const answers = await Promise.all(
      workers.map((w, index) =>
        w.request(
          { cmd: 'latency', channels: own(index).slice(0, 2), untilMs: latUntil, spacingMs: 1100 },
          (latencyS + 120) * 1000,
        ),
      ),
    );
    const latency = percentiles(answers.flatMap((a) => a.latencies ?? []));
    log(`  ${system}: latency p50 ${latency.p50} ms, p99 ${latency.p99} ms (${latency.n} calls)`);
    return { saturation, latency };
  } finally {
    await Promise.all(workers.map((w) => stopChild(w, 4000)));
    if (proxy) await stopChild(proxy, 4000);
  }
}

await runSection('rest', {}, async ({ quick, record }) => {
  const { startNatsServer } = await testingHelpers();
  const nats = await startNatsServer({ jetstream: true });
  onCleanup(() => nats.stop());
  // The fleet's NATS is part of the system measured: at the bench's priority, like the bot processes
  // (its autogroup too: each bot process has its own at that priority, and would starve it).
  applyNice(nats.pid, true);
  const saturateS = quick ? 12 : 30;
  const latencyS = quick ? 8 : 20;
  record.settings = {
    processes: PROCESSES,
    hosts: 2,
    globalPerSecond: GLOBAL_PER_SECOND,
    saturateS,
    latencyS,
    channelsPerProcess: 12,
  };
  record.systems = {};
  for (const system of SYSTEMS) {
    await waitForQuietMachine(quick ? 3000 : 10_000);
    // A fresh simulator per system: its own global window, buckets and counters.
    const sim = await startSim({ guilds: 16 * 12, shards: 1, 'rest-global-per-second': GLOBAL_PER_SECOND });
    try {
      const channels = await channelIds(sim, PROCESSES * 12);
      log(`${system}: ${PROCESSES} processes`);
      record.systems[system] = await measure(system, { sim, nats, channels, saturateS, latencyS });
    } finally {
      await sim.stop();
    }
  }
  const direct = record.systems.uncoordinated.latency;
  for (const system of ['discluster', 'proxy']) {
    const own = record.systems[system].latency;
    record.systems[system].addedLatency = {
      p50: round(own.p50 - direct.p50, 2),
      p99: round(own.p99 - direct.p99, 2),
    };
  }
});
