#!/usr/bin/env node
// Where a cluster process's fixed memory goes, next to a bare @discordjs/ws process serving the
// same shards (bench section 4's "bare" and "sdk-standalone" variants, without pm2): once every
// guild arrived and the process idled IDLE_MS, each process reports V8's heap spaces (committed),
// external and ArrayBuffer memory, and the bench reads RSS and the anonymous/file-backed split of
// /proc/<pid>/smaps_rollup. CLUSTER_NODE_OPTIONS is the cluster process's NODE_OPTIONS (for example
// `--max-semi-space-size=8`, to see what a smaller young generation saves); VARIANTS picks the
// processes (default bare,cluster).
//
//   SHARDS=16 IDLE_MS=60000 node bench/heap/spaces.mjs
import fs from 'node:fs';
import { startDispatchClient } from '../lib/clients.mjs';
import { DEFAULT_INTENTS } from '../lib/peers.mjs';
import { log, sleep } from '../lib/log.mjs';
import { startSim } from '../lib/sim.mjs';
import { testingHelpers } from '../sdk/common.mjs';

const shards = Number(process.env.SHARDS ?? 16);
const idleMs = Number(process.env.IDLE_MS ?? 60_000);
const variants = (process.env.VARIANTS ?? 'bare,cluster').split(',');
const clusterNodeOptions = process.env.CLUSTER_NODE_OPTIONS ?? '';

function smapsRollup(pid) {
  const figures = {};
  for (const line of fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').split('\n')) {
    const match = /^(Rss|Anonymous|Private_Clean|Private_Dirty|Shared_Clean):\s+(\d+) kB/.exec(line);
    if (match) figures[match[1]] = Math.round(Number(match[2]) / 102.4) / 10;
  }
  return figures;
}

const rows = [];
for (const variant of variants) {
  const sim = await startSim({
    guilds: shards * 2000,
    shards,
    'max-concurrency': shards,
    'identify-window-ms': 500,
  });
  const nats =
    variant === 'cluster' ? await (await testingHelpers()).startNatsServer({ jetstream: true }) : null;
  // The child inherits this environment: only the cluster process gets the extra options.
  if (variant === 'cluster' && clusterNodeOptions) process.env.NODE_OPTIONS = clusterNodeOptions;
  const client = await startDispatchClient(variant, {
    gateway: await sim.gatewayBot(),
    natsUrl: nats?.url,
    bot: `spaces${process.pid}`,
    shards,
    intents: DEFAULT_INTENTS,
    identifyWindowMs: 500,
  });
  delete process.env.NODE_OPTIONS;
  try {
    log(`${variant}: every guild in; idling ${idleMs} ms`);
    await sleep(idleMs);
    const stats = await client.stats();
    rows.push({
      variant,
      nodeOptions: variant === 'cluster' ? clusterNodeOptions : '',
      smaps: smapsRollup(client.pid),
      memory: stats.memory,
    });
  } finally {
    await client.stop();
    await nats?.stop();
    await sim.stop();
  }
}
for (const row of rows) console.log(JSON.stringify(row));
if (rows.length < 2) process.exit(0);
const [bare, cluster] = rows;
const diff = (a, b) => Math.round((b - a) * 10) / 10;
console.log('\nMiB            bare   cluster   difference');
for (const key of Object.keys(cluster.smaps))
  console.log(
    `${key.padEnd(14)} ${bare.smaps[key]}  ${cluster.smaps[key]}  ${diff(bare.smaps[key], cluster.smaps[key])}`,
  );
for (const key of Object.keys(cluster.memory))
  console.log(
    `${key.padEnd(14)} ${bare.memory[key]}  ${cluster.memory[key]}  ${diff(bare.memory[key], cluster.memory[key])}`,
  );
process.exit(0);
