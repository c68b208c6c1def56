#!/usr/bin/env node
// Identify compliance under CPU contention (promise 1, docs/architecture.md), small and fast: P processes, each a
// NATS connection + NatsIdentifyThrottler + @discordjs/ws manager for S/P shards (the way a
// cluster process wires them), cold-started at once against a fresh discord-sim and nats-server
// while B burner processes keep the cores busy. Every process runs at the bench priority, the
// simulator included (as in bench/peers/startup.mjs), unless --sim-nice says otherwise.
//
// Per run it reports:
// - simViolations: IDENTIFYs the simulator refused (its own clock, stamped when it handles the
//   frame), i.e. what bench/peers/startup.mjs counts;
// - clientViolations: pairs of IDENTIFYs of one rate-limit key written to their sockets closer
//   than the window (Date.now() right after the write, one machine so one clock): what the
//   throttler itself let through;
// - simLateMs: how long after the write the simulator stamped each IDENTIFY (its read delay);
// - per refused IDENTIFY: the gap between it and the previous accepted one of its key as written
//   and as stamped, and how late the simulator stamped each;
// - restamps: slot re-writes after a grant, how long after their IDENTIFY's write they were issued,
//   and how many came before it (should be none);
// - givebacks: slots given back because taking them took longer than the margin.
// Variants (--sdk name=path/to/discluster-sdk/dist/index.js,…) run interleaved, so a build before a
// change can be compared with the current one in the same conditions.
//
//   node bench/identify/repro.mjs [--runs 3] [--processes 8] [--shards 128] [--max-concurrency 16]
//     [--window-ms 500] [--margin-ms N] [--burners 4] [--sim-nice=-10] [--guilds-per-shard 10]
//     [--sdk current=cluster-sdk/dist/index.js[@marginMs],…] [--out FILE]
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startSim, SIM_TOKEN } from '../lib/sim.mjs';
import {
  forkChild,
  NICE,
  onCleanup,
  root,
  stopChild,
  stopEverything,
  testingHelpers,
} from '../sdk/common.mjs';
import { median, percentileSorted } from '../lib/figures.mjs';
import { log, sleep } from '../lib/log.mjs';
import os from 'node:os';

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    processes: { type: 'string', default: '8' },
    shards: { type: 'string', default: '128' },
    'max-concurrency': { type: 'string', default: '16' },
    'window-ms': { type: 'string', default: '500' },
    'margin-ms': { type: 'string' },
    burners: { type: 'string', default: '4' },
    'sim-nice': { type: 'string', default: String(NICE) },
    'guilds-per-shard': { type: 'string', default: '10' },
    sdk: { type: 'string', default: 'current=cluster-sdk/dist/index.js' },
    out: { type: 'string' },
  },
});
const config = {
  runs: Number(flags.runs),
  processes: Number(flags.processes),
  shards: Number(flags.shards),
  maxConcurrency: Number(flags['max-concurrency']),
  windowMs: Number(flags['window-ms']),
  marginMs: flags['margin-ms'] ? Number(flags['margin-ms']) : null,
  burners: Number(flags.burners),
  simNice: Number(flags['sim-nice']),
  guildsPerShard: Number(flags['guilds-per-shard']),
  // name=path[@marginMs]: the build to load, and optionally a margin of its own.
  variants: flags.sdk.split(',').map((entry) => {
    const [name, spec] = entry.split('=');
    const [file, margin] = spec.split('@');
    return { name, sdkPath: path.resolve(root, file), marginMs: margin ? Number(margin) : null };
  }),
};
const here = path.dirname(new URL(import.meta.url).pathname);

/** Shard ids of process `index` of `count`: contiguous blocks, as CONTROL assigns clusters. */
function shardsOf(index, count, shards) {
  const per = Math.ceil(shards / count);
  return Array.from({ length: per }, (_, offset) => index * per + offset).filter((id) => id < shards);
}

const stats = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  return {
    p50: percentileSorted(sorted, 0.5),
    p99: percentileSorted(sorted, 0.99),
    max: sorted.at(-1),
  };
};

async function runOnce(variant, rep) {
  const { shards: S, maxConcurrency: C, windowMs: W } = config;
  const testing = await testingHelpers();
  const sim = await startSim({
    guilds: S * config.guildsPerShard,
    shards: S,
    'max-concurrency': C,
    'identify-window-ms': W,
  });
  try {
    os.setPriority(sim.pid, config.simNice);
  } catch {
    // not permitted
  }
  const nats = await testing.startNatsServer({ jetstream: true });
  try {
    os.setPriority(nats.pid, NICE);
  } catch {
    // not permitted
  }
  onCleanup(() => nats.stop());
  const gatewayBot = await sim.gatewayBot();
  const burners = Array.from({ length: config.burners }, (_, i) =>
    forkChild(path.join(here, 'burner.mjs'), [], `burner ${i}`),
  );
  await sleep(500);
  const t0 = Date.now();
  const workers = Array.from({ length: config.processes }, (_, i) =>
    forkChild(path.join(here, 'worker.mjs'), [], `worker ${i}`),
  );
  const allReady = Promise.all(
    workers.map((worker) => worker.waitFor((m) => m?.event === 'allReady', 120_000 + 3 * S * W, 'all ready')),
  );
  await Promise.all(
    workers.map(async (worker, index) => {
      await worker.waitFor((m) => m?.event === 'loaded', 60_000, 'loaded');
      const answer = await worker.request(
        {
          cmd: 'start',
          sdkPath: variant.sdkPath,
          natsUrl: nats.url,
          bot: 'identify-bench',
          gatewayBot,
          token: SIM_TOKEN,
          shardIds: shardsOf(index, config.processes, S),
          shardCount: S,
          windowMs: W,
          marginMs: variant.marginMs ?? config.marginMs,
        },
        60_000,
      );
      if (!answer.ok) throw new Error(`worker ${index}: ${answer.error}`);
    }),
  );
  await allReady;
  const allReadyMs = Date.now() - t0;
  await Promise.all(burners.map((burner) => stopChild(burner, 2000)));
  const results = await Promise.all(workers.map((worker) => worker.request({ cmd: 'results' })));
  const records = await sim.call('GET', '/identifies');
  const state = await sim.call('GET', '/state');
  await Promise.all(workers.map((worker) => stopChild(worker, 4000)));
  await nats.stop();
  await sim.stop();

  // Match the simulator's records to the writes: per shard, in order.
  const sendsByShard = new Map();
  for (const result of results)
    for (const send of result.sends) {
      if (!sendsByShard.has(send.shardId)) sendsByShard.set(send.shardId, []);
      sendsByShard.get(send.shardId).push(send.at);
    }
  for (const list of sendsByShard.values()) list.sort((a, b) => a - b);
  const seen = new Map();
  const simLate = [];
  const matched = records.map((record) => {
    const shardId = record.shard[0];
    const index = seen.get(shardId) ?? 0;
    seen.set(shardId, index + 1);
    const sentAt = sendsByShard.get(shardId)?.[index] ?? null;
    if (sentAt !== null) simLate.push(record.at - sentAt);
    return { ...record, sentAt };
  });
  // The throttler's own compliance: writes of one key closer than the window.
  const writesByKey = new Map();
  for (const [shardId, list] of sendsByShard)
    for (const at of list) {
      const key = shardId % C;
      if (!writesByKey.has(key)) writesByKey.set(key, []);
      writesByKey.get(key).push({ shardId, at });
    }
  let clientViolations = 0;
  let minClientGapMs = Infinity;
  for (const list of writesByKey.values()) {
    list.sort((a, b) => a.at - b.at);
    for (let i = 1; i < list.length; i++) {
      const gap = list[i].at - list[i - 1].at;
      minClientGapMs = Math.min(minClientGapMs, gap);
      if (gap < W) clientViolations++;
    }
  }
  const refusals = [];
  const lastAccepted = new Map();
  for (const record of matched) {
    if (record.outcome === 'ready') {
      lastAccepted.set(record.rateLimitKey, record);
      continue;
    }
    const previous = lastAccepted.get(record.rateLimitKey);
    refusals.push({
      key: record.rateLimitKey,
      shard: record.shard[0],
      previousShard: previous?.shard[0] ?? null,
      simGapMs: previous ? record.at - previous.at : null,
      writeGapMs: previous?.sentAt != null && record.sentAt != null ? record.sentAt - previous.sentAt : null,
      previousSimLateMs: previous?.sentAt != null ? previous.at - previous.sentAt : null,
      simLateMs: record.sentAt != null ? record.at - record.sentAt : null,
    });
  }
  // Re-stamps against the IDENTIFY they follow (same process, same shard): how long after the
  // write, and whether any came before it.
  const restampLag = [];
  let restampsBeforeWrite = 0;
  for (const result of results)
    for (const restamp of result.restamps ?? []) {
      const write = result.sends
        .filter((send) => send.shardId === restamp.shardId && send.order < restamp.order)
        .at(-1);
      if (write) restampLag.push(restamp.at - write.at);
      else restampsBeforeWrite++;
    }
  const run = {
    variant: variant.name,
    rep,
    allReadyMs,
    identifies: records.length,
    simViolations: state.violations.identifyRate,
    clientViolations,
    minClientGapMs,
    simLateMs: stats(simLate),
    givebacks: results.reduce((n, r) => n + r.givebacks.length, 0),
    restamps: restampLag.length + restampsBeforeWrite,
    restampsBeforeWrite,
    restampLagMs: stats(restampLag),
    debug: results.flatMap((r) => r.otherDebug).slice(0, 20),
    refusals,
  };
  log(
    `  ${variant.name} #${rep}: ${run.simViolations} sim violations, ${clientViolations} client violations ` +
      `(min write gap ${minClientGapMs} ms), sim late p50/p99/max ${run.simLateMs?.p50}/${run.simLateMs?.p99}/${run.simLateMs?.max} ms, ` +
      `${run.givebacks} slots given back, ${run.restamps} re-stamps (${restampsBeforeWrite} before their IDENTIFY, ` +
      `lag p50/p99/max ${run.restampLagMs?.p50}/${run.restampLagMs?.p99}/${run.restampLagMs?.max} ms), ` +
      `all ready ${(allReadyMs / 1000).toFixed(1)} s`,
  );
  for (const refusal of refusals) log(`    refused: ${JSON.stringify(refusal)}`);
  return run;
}

const record = { config, startedAt: new Date().toISOString(), runs: [] };
let code = 0;
try {
  log(`identify repro: ${JSON.stringify(config)}`);
  for (let rep = 1; rep <= config.runs; rep++)
    for (const variant of config.variants) {
      record.runs.push(await runOnce(variant, rep));
      await sleep(1000);
    }
  record.summary = config.variants.map(({ name }) => {
    const runs = record.runs.filter((run) => run.variant === name);
    return {
      variant: name,
      runs: runs.length,
      simViolations: runs.map((run) => run.simViolations),
      clientViolations: runs.map((run) => run.clientViolations),
      simLateP99Ms: runs.map((run) => run.simLateMs?.p99),
      allReadyMsMedian: median(runs.map((run) => run.allReadyMs)),
    };
  });
  for (const line of record.summary) log(`summary ${JSON.stringify(line)}`);
} catch (error) {
  record.error = error?.stack ?? String(error);
  log(`FAILED: ${record.error}`);
  code = 1;
} finally {
  await stopEverything();
  if (flags.out) fs.writeFileSync(flags.out, `${JSON.stringify(record, null, 1)}\n`);
}
process.exit(code);
