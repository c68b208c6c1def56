#!/usr/bin/env node
// Reshard benchmark (issue 7): a Discluster fleet on two stand-in hosts, MESSAGE_CREATE traffic
// with nonces flowing, `discluster reshard --shards TO`. Measured per run:
//   - duration: from the command until MASTER reports the fleet on TO shards (handover done),
//     as a ratio to Discord's identify limit for the new shard count, ceil(TO / C) · W (target
//     ≤ 1.1×: the new generation can be no faster than the limit);
//   - downtime: the simulator is sampled every 100 ms; a sample where neither generation has a live
//     session for every one of its shards is a moment some guilds had no serving session (target 0);
//   - events: every nonce delivered exactly once to the bot handlers (fleet-wide, counted from the
//     pm2 logs), identify violations and duplicate live sessions within one shard count.
// Peers have no zero-downtime reshard across machines: discord-hybrid-sharding's and Discordeno's
// resharders restart or run on one machine only, so this compares against the limit itself.
//
//   npm run bench:reshard -- [--quick] [--reps N] [--out DIR]
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startFleet } from '../lib/fleet.mjs';
import { admin, identifyLog, liveShards, startSim, stateDelta, waitTrafficDone } from '../lib/sim.mjs';
import { NICE, onCleanup, requireBuilt, root, stopEverything } from '../sdk/common.mjs';
import { median, round } from '../lib/figures.mjs';
import { log, sleep } from '../lib/log.mjs';
import { machineFacts, machineSummary } from '../lib/machineFacts.mjs';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    reps: { type: 'string' },
    out: { type: 'string', default: path.join(root, 'bench', 'results') },
  },
});

const CONFIG = values.quick
  ? { from: 16, to: 32, maxConcurrency: 4, windowMs: 1000, rate: 40, reps: 1 }
  : { from: 64, to: 128, maxConcurrency: 16, windowMs: 5000, rate: 100, reps: 3 };
const reps = values.reps ? Number(values.reps) : CONFIG.reps;

async function runOnce(rep) {
  const { from, to, maxConcurrency: c, windowMs, rate } = CONFIG;
  const limitMs = Math.ceil(to / c) * windowMs;
  const sim = await startSim({
    guilds: to * 20,
    shards: from,
    'max-concurrency': c,
    'identify-window-ms': windowMs,
  });
  const fleet = await startFleet(sim, {
    bot: `reshard-${rep}`,
    shards: from,
    identifyWindowMs: windowMs,
    hosts: [
      { id: 'alpha', cores: 2 },
      { id: 'beta', cores: 2 },
    ],
  });
  try {
    await fleet.waitAllReady(300_000);
    log(`run ${rep + 1}: ${from} shards ready; traffic on, resharding to ${to}`);
    const before = await admin(sim, 'GET', '/state');
    // Traffic from before the command until well after the handover.
    const seconds = Math.ceil((limitMs * 1.6 + 20_000) / 1000);
    const traffic = await admin(sim, 'POST', '/traffic', { eventsPerSecond: rate, seconds });
    let sampling = true;
    let samples = 0;
    const gaps = [];
    let oldClosedAt = null;
    const sampler = (async () => {
      while (sampling) {
        const state = await admin(sim, 'GET', '/state');
        samples++;
        const old = liveShards(state, from).live;
        const fresh = liveShards(state, to).live;
        if (old < from && fresh < to) gaps.push({ at: Date.now(), old, new: fresh });
        if (old === 0 && oldClosedAt === null && fresh === to) oldClosedAt = Date.now();
        await sleep(100);
      }
    })();
    await sleep(3000);
    const startedAt = Date.now();
    const command = await fleet.cli('reshard', '--shards', String(to), '--json');
    if (command.code !== 0) throw new Error(`discluster reshard failed: ${command.stderr}`);
    let newLiveAt = null;
    let finishedAt = null;
    for (const deadline = Date.now() + limitMs * 4 + 120_000; Date.now() < deadline;) {
      const state = await admin(sim, 'GET', '/state');
      if (newLiveAt === null && liveShards(state, to).live === to) newLiveAt = Date.now();
      const status = await fleet.status().catch(() => null);
      if (status && status.shardCount === to && !status.reshard) {
        finishedAt = Date.now();
        break;
      }
      fleet.check();
      await sleep(500);
    }
    if (finishedAt === null) throw new Error(`the reshard did not finish\n${fleet.diagnostics()}`);
    await waitTrafficDone(sim, traffic.id, 300_000);
    await sleep(3000);
    sampling = false;
    await sampler;
    const after = await admin(sim, 'GET', '/state');
    // When the new generation identified: the first and last accepted IDENTIFY after the command.
    const identifies = await identifyLog(sim, startedAt);
    const firstIdentifyMs = identifies.times.length > 0 ? identifies.times[0] - startedAt : null;
    const lastIdentifyMs = identifies.times.length > 0 ? identifies.times.at(-1) - startedAt : null;
    const lines = fleet.botLines('"msg"').filter((line) => line.t === 'msg');
    const counts = new Map();
    for (const line of lines) counts.set(line.nonce, (counts.get(line.nonce) ?? 0) + 1);
    let lost = 0;
    for (let n = 0; n < traffic.total; n++) if (!counts.has(`${traffic.id}:${n}`)) lost++;
    const twice = [...counts.values()].filter((count) => count > 1).length;
    const delta = stateDelta(before, after);
    const result = {
      rep,
      from,
      to,
      maxConcurrency: c,
      windowMs,
      limitMs,
      durationMs: finishedAt - startedAt,
      ratio: round((finishedAt - startedAt) / limitMs, 3),
      firstIdentifyMs,
      lastIdentifyMs,
      newGenerationLiveMs: newLiveAt === null ? null : newLiveAt - startedAt,
      oldGenerationClosedMs: oldClosedAt === null ? null : oldClosedAt - startedAt,
      samples,
      downtimeSamples: gaps.length,
      gaps: gaps.slice(0, 10),
      traffic: { total: traffic.total, eventsPerSecond: rate },
      lost,
      deliveredTwice: twice,
      ...delta,
    };
    log(
      `run ${rep + 1}: ${round(result.durationMs / 1000, 1)} s = ${result.ratio}× the limit (${limitMs / 1000} s); ` +
        `downtime samples ${gaps.length}/${samples}; lost ${lost}, twice ${twice}; identifies ${delta.identifies}, ` +
        `violations ${delta.identifyViolations}, duplicate sessions ${delta.duplicateLiveSessions}`,
    );
    return result;
  } finally {
    await fleet.teardown();
    await sim.stop();
  }
}

function report(machine, runs) {
  const ratio = median(runs.map((run) => run.ratio));
  const all = (field) => runs.map((run) => run[field]).join(' / ');
  const met = (ok) => (ok ? '**met**' : '**not met**');
  const downtime = runs.reduce((sum, run) => sum + run.downtimeSamples, 0);
  const exact = runs.every((run) => run.lost === 0 && run.deliveredTwice === 0);
  const { from, to, maxConcurrency: c, windowMs } = CONFIG;
  return `# Reshard benchmark

\`node bench/reshard/run.mjs${values.quick ? ' --quick' : ''}\` on ${machine.date.slice(0, 10)}. Machine: ${machineSummary(machine)}.

A Discluster fleet on two stand-in hosts (each its own CONTROL and pm2 daemon) reshards from ${from} to ${to} shards (max_concurrency ${c}, identify window W = ${windowMs} ms in the simulator and the bot) with \`discluster reshard --shards ${to}\` while MESSAGE_CREATE traffic with nonces flows (${CONFIG.rate} ev/s). The reference is Discord's identify limit for the new shard count, ceil(${to} / ${c}) · W = ${(Math.ceil(to / c) * windowMs) / 1000} s: the new generation cannot identify faster. Downtime is sampled from the simulator every 100 ms: a sample where neither generation has a live session on every one of its shards. ${runs.length} run(s); medians in bold.

| target | result | runs | |
| --- | --- | --- | --- |
| Reshard duration ≤ 1.1× the identify limit for the new count | **${ratio}×** (${round(median(runs.map((run) => run.durationMs)) / 1000, 1)} s) | ${all('ratio')} | ${met(ratio <= 1.1)} |
| Downtime 0 (samples without a whole generation) | **${downtime}** of ${runs.reduce((sum, run) => sum + run.samples, 0)} samples | ${all('downtimeSamples')} | ${met(downtime === 0)} |
| Every MESSAGE_CREATE to bot code exactly once | lost ${all('lost')}; twice ${all('deliveredTwice')} | of ${runs.map((run) => run.traffic.total).join(' / ')} sent | ${met(exact)} |
| 0 identify violations, 0 duplicate live sessions | violations ${all('identifyViolations')}; duplicates ${all('duplicateLiveSessions')} | | ${met(runs.every((run) => run.identifyViolations === 0 && run.duplicateLiveSessions === 0))} |
| Identifies spent = new shards | ${all('identifies')} | expected ${to} each | ${met(runs.every((run) => run.identifies === to))} |

Timeline per run (from the command): first new IDENTIFY at ${all('firstIdentifyMs')} ms, last at ${all('lastIdentifyMs')} ms; every new shard live at ${all('newGenerationLiveMs')} ms; reshard finished (handover done, plan switched) at ${all('durationMs')} ms; old generation closed at ${all('oldGenerationClosedMs')} ms.

No peer is measured beside it, as none reshards across machines without downtime (\`../shared/reference/peers.md\`): discord.js's ShardingManager \`updateShardCount\` destroys and respawns every shard, and turns 4011 into an error; discord-hybrid-sharding's ReCluster and AutoResharder run a new set beside the old one on one machine only (not with cross-hosting); Discordeno's automatic resharder is single-deployment and is not triggered by 4011. A respawn-based reshard is down for at least the identify limit of the new count (${(Math.ceil(to / c) * windowMs) / 1000} s here).

Raw figures: \`bench/results/reshard${values.quick ? '-quick' : ''}.json\`.
`;
}

async function main() {
  requireBuilt();
  const machine = machineFacts(NICE);
  const runs = [];
  for (let rep = 0; rep < reps; rep++) runs.push(await runOnce(rep));
  const name = values.quick ? 'reshard-quick' : 'reshard';
  fs.mkdirSync(values.out, { recursive: true });
  fs.writeFileSync(
    path.join(values.out, `${name}.json`),
    `${JSON.stringify({ machine, config: CONFIG, runs }, null, 2)}\n`,
  );
  fs.writeFileSync(path.join(values.out, `${name}.md`), report(machine, runs));
  log(`wrote ${path.join(values.out, `${name}.md`)}`);
}

onCleanup(() => undefined);
main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => stopEverything());
