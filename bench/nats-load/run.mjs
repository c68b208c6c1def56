#!/usr/bin/env node
// `npm run bench:nats-load` (issue 18 §6): the NATS load of a large fleet, measured with real KV
// writes. Writer processes (writer.mjs) write exactly what CONTROL's lease renewals and the SDK's
// session flushes write, at their default rates (lease_ms 20 s → a renewal every 2.5 s per lease;
// a session flush every second per busy shard), for S shards, against one nats-server (R1) and a
// 3-node JetStream cluster (R3, kv_replicas 3). Reported per row: KV writes/s asked and done, per
// 1,000 shards, the CPU the nats-server(s) spent (cores, and µs per write), write latency p50/p99,
// and renewal rounds that could not start on time. Two cuts are measured beside today's writes:
// one lease record per cluster of 16 shards instead of per shard, and session flushes every 5 s.
// Results: bench/results/nats-load.{json,md}.
//
//   node bench/nats-load/run.mjs [--quick] [--shards 1000,2500,5000] [--seconds 15] [--out DIR]
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cpuSeconds } from '../lib/cpu.mjs';
import { fmt, percentileSorted, round } from '../lib/figures.mjs';
import { log, sleep } from '../lib/log.mjs';
import { machineFacts, machineSummary } from '../lib/machineFacts.mjs';
import {
  NICE,
  forkChild,
  requireBuilt,
  root,
  stopChild,
  stopEverything,
  testingHelpers,
} from '../sdk/common.mjs';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    shards: { type: 'string' },
    seconds: { type: 'string' },
    writers: { type: 'string' },
    out: { type: 'string' },
  },
});
const quick = values.quick;
const shardCounts = (values.shards ?? (quick ? '500' : '1000,2500,5000')).split(',').map(Number);
const seconds = Number(values.seconds ?? (quick ? 5 : 15));
const writers = Number(values.writers ?? 4);
const out =
  values.out ?? (quick ? fs.mkdtempSync('/tmp/discluster-nats-load-') : path.join(root, 'bench', 'results'));
const LEASE_MS = 20_000;
const VARIANTS = [
  { name: 'today', leaseGroup: 1, flushMs: 1000, what: 'a lease per shard, sessions flushed every 1 s' },
  { name: 'cluster-leases', leaseGroup: 16, flushMs: 1000, what: 'a lease per cluster of 16 shards' },
  { name: 'slow-flush', leaseGroup: 1, flushMs: 5000, what: 'sessions flushed every 5 s' },
];

async function startServers(replicas) {
  const helpers = await testingHelpers();
  if (replicas === 1) {
    const server = await helpers.startNatsServer({ jetstream: true });
    return { urls: [server.url], pids: () => [server.pid], stop: () => server.stop() };
  }
  const cluster = await helpers.startNatsCluster({ nodes: replicas });
  await cluster.waitForMetaLeader();
  return {
    urls: cluster.urls,
    pids: () => cluster.nodes.map((node) => node.pid),
    stop: () => cluster.stop(),
  };
}

async function createBuckets(urls, bot, replicas) {
  const { createRequire } = await import('node:module');
  const require = createRequire(path.join(root, 'cluster-sdk', 'package.json'));
  const { connect } = require('@nats-io/transport-node');
  const { Kvm } = require('@nats-io/kv');
  const nc = await connect({ servers: urls });
  const kvm = new Kvm(nc);
  await kvm.create(`discluster_${bot}_leases`, { ttl: LEASE_MS, history: 1, replicas });
  await kvm.create(`discluster_${bot}_sessions`, { history: 1, replicas });
  await nc.close();
}

async function runRow(servers, replicas, shards, variant, index) {
  const bot = `load${index}`;
  await createBuckets(servers.urls, bot, replicas);
  const children = [];
  for (let w = 0; w < writers; w++) {
    const child = forkChild(path.join(root, 'bench', 'nats-load', 'writer.mjs'), [], `writer-${w}`);
    children.push(child);
  }
  try {
    await Promise.all(
      children.map((child, w) =>
        child.request(
          {
            cmd: 'start',
            writer: w,
            servers: servers.urls,
            bot,
            shardIds: Array.from({ length: shards }, (_, id) => id).filter(
              (id) => Math.floor(id / 16) % writers === w,
            ),
            shardCount: shards,
            leaseMs: LEASE_MS,
            flushMs: variant.flushMs,
            leaseGroup: variant.leaseGroup,
          },
          300_000,
        ),
      ),
    );
    await sleep(3000); // warm-up: every timer running
    await Promise.all(children.map((child) => child.request({ cmd: 'stats' })));
    const serverCpu0 = servers.pids().reduce((sum, pid) => sum + cpuSeconds(pid), 0);
    const writerCpu0 = children.reduce((sum, child) => sum + cpuSeconds(child.pid), 0);
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const replies = await Promise.all(children.map((child) => child.request({ cmd: 'stats' })));
    const wall = (performance.now() - t0) / 1000;
    const serverCpu = servers.pids().reduce((sum, pid) => sum + cpuSeconds(pid), 0) - serverCpu0;
    const writerCpu = children.reduce((sum, child) => sum + cpuSeconds(child.pid), 0) - writerCpu0;
    const stats = replies.map((reply) => reply.stats);
    const sum = (field) => stats.reduce((total, s) => total + s[field], 0);
    const latencies = stats.flatMap((s) => s.latencies).sort((a, b) => a - b);
    const leaseKeys = Math.ceil(shards / variant.leaseGroup);
    const asked = leaseKeys / (LEASE_MS / 8 / 1000) + shards / (variant.flushMs / 1000);
    const done = (sum('lease') + sum('session')) / wall;
    return {
      replicas,
      shards,
      variant: variant.name,
      seconds: round(wall, 1),
      askedPerSecond: round(asked),
      writesPerSecond: round(done),
      leaseWritesPerSecond: round(sum('lease') / wall),
      sessionWritesPerSecond: round(sum('session') / wall),
      writesPerSecondPer1000Shards: round((done / shards) * 1000),
      failed: sum('failed'),
      rounds: sum('rounds'),
      lateRounds: sum('lateRounds'),
      serverCores: round(serverCpu / wall, 3),
      serverMicrosPerWrite: done > 0 ? round((serverCpu / (done * wall)) * 1e6, 1) : null,
      writerCores: round(writerCpu / wall, 3),
      latencyMs: {
        p50: round(percentileSorted(latencies, 0.5) ?? NaN, 2),
        p99: round(percentileSorted(latencies, 0.99) ?? NaN, 2),
      },
    };
  } finally {
    for (const child of children) await stopChild(child, 5000);
  }
}

function render(result) {
  const rows = result.rows.map((row) => [
    `R${row.replicas}`,
    fmt(row.shards),
    row.variant,
    fmt(row.askedPerSecond),
    fmt(row.writesPerSecond),
    fmt(row.writesPerSecondPer1000Shards),
    fmt(row.serverCores, 2),
    fmt(row.serverMicrosPerWrite, 1),
    `${fmt(row.latencyMs.p50, 1)} / ${fmt(row.latencyMs.p99, 1)}`,
    `${fmt(row.lateRounds)} of ${fmt(row.rounds)}`,
    fmt(row.failed),
  ]);
  const sizing = result.sizing
    .map(
      (s) =>
        `| R${s.replicas} | ${s.variant} | ${fmt(s.shards)} | ${fmt(s.writesPerSecond)} | ${fmt(s.serverCores, 2)} |`,
    )
    .join('\n');
  return `# NATS load of a large fleet

Produced by \`npm run bench:nats-load\` (bench/nats-load/run.mjs) from ${result.startedAt} to ${result.finishedAt}; every figure is in [nats-load.json](nats-load.json).

${machineSummary(result.machine)}

${writers} writer processes write what CONTROL and the SDK write to NATS KV for S shards (one host per writer): each shard's lease updated on its revision every lease_ms / 8 = 2.5 s (the default lease_ms 20 s), every key of a renewal round at once, and each shard's session updated on its revision every flush interval, as a shard under steady traffic does (its sequence always moves). Records have the real records' size. R1: one nats-server; R3: a 3-node JetStream cluster on this machine with every bucket at 3 replicas. Each row runs ${fmt(result.seconds)} s after a 3 s warm-up. **server cores**: CPU the nats-server process(es) spent per second of the row (all nodes together); **µs/write**: that CPU per KV write done. **late rounds**: renewal or flush rounds still running when the next was due (the writes cannot keep up). Everything shares 2 cores, so where the writes asked exceed what the machine does, the CPU per write is what tells the cost.

| NATS | shards | variant | writes/s asked | writes/s done | per 1,000 shards | server cores | µs/write | latency p50 / p99 ms | late rounds | failed |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows.map((row) => `| ${row.join(' | ')} |`).join('\n')}

Variants: ${VARIANTS.map((v) => `**${v.name}**: ${v.what}`).join('; ')}.

## Sizing (from the CPU per write above)

The nats-server CPU a fleet needs is about (writes/s) × (µs/write), spread over the nodes for R3: every node stores every write. Writes/s per 1,000 shards at the default settings: ${fmt(1000 / 2.5 + 1000)} (400 lease renewals + 1,000 session flushes of busy shards).

| NATS | variant | shards | KV writes/s | nats-server cores (all nodes) |
| --- | --- | --- | --- | --- |
${sizing}
`;
}

async function main() {
  requireBuilt();
  const result = {
    startedAt: new Date().toISOString(),
    machine: machineFacts(NICE),
    seconds,
    writers,
    leaseMs: LEASE_MS,
    rows: [],
  };
  let index = 0;
  for (const replicas of [1, 3]) {
    log(`nats-load: R${replicas}`);
    const servers = await startServers(replicas);
    try {
      for (const shards of shardCounts)
        for (const variant of VARIANTS) {
          log(`  ${shards} shards, ${variant.name}`);
          const row = await runRow(servers, replicas, shards, variant, index++);
          log(
            `    ${row.writesPerSecond}/${row.askedPerSecond} writes/s, server ${row.serverCores} cores (${row.serverMicrosPerWrite} µs/write), p99 ${row.latencyMs.p99} ms, late ${row.lateRounds}/${row.rounds}, failed ${row.failed}`,
          );
          result.rows.push(row);
        }
    } finally {
      await servers.stop();
    }
  }
  // Sizing: the µs per write of the largest row of each (R, variant), times the writes 1,000 and
  // 10,000 shards ask.
  result.sizing = [];
  for (const replicas of [1, 3])
    for (const variant of VARIANTS) {
      const rows = result.rows.filter((r) => r.replicas === replicas && r.variant === variant.name);
      const largest = rows.at(-1);
      if (!largest?.serverMicrosPerWrite) continue;
      for (const shards of [1000, 10_000]) {
        const leaseKeys = Math.ceil(shards / variant.leaseGroup);
        const writes = leaseKeys / (LEASE_MS / 8 / 1000) + shards / (variant.flushMs / 1000);
        result.sizing.push({
          replicas,
          variant: variant.name,
          shards,
          writesPerSecond: round(writes),
          serverCores: round((writes * largest.serverMicrosPerWrite) / 1e6, 2),
        });
      }
    }
  result.finishedAt = new Date().toISOString();
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'nats-load.json'), `${JSON.stringify(result, null, 1)}\n`);
  fs.writeFileSync(path.join(out, 'nats-load.md'), render(result));
  log(`wrote ${path.join(out, 'nats-load.md')}`);
}

main()
  .catch((error) => {
    log(`nats-load FAILED: ${error?.stack ?? error}`);
    process.exitCode = 1;
  })
  .finally(() => stopEverything().then(() => process.exit(process.exitCode ?? 0)));
