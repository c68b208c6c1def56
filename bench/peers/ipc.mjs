#!/usr/bin/env node
// Section 6 of `npm run bench`: IPC between cluster processes, both systems up side by side with 16
// clusters of one shard each (S=16, max_concurrency 1):
//   - Discluster: a real fleet on two stand-in hosts (8 clusters each, every cluster a pm2 app of
//     its host's CONTROL). From cluster 0, sequential `cluster.ipc.request(target, 'echo', data)` to
//     a cluster on the other host, and `cluster.ipc.requestAll('echo', data)` over all 16;
//   - discord-hybrid-sharding: 16 clusters under one ClusterManager on this machine (its IPC is
//     local only). From cluster 0, sequential `client.cluster.broadcastEval((c, ctx) => ctx,
//     { context: data, cluster: 1 })` and the same without `cluster` (every cluster).
// bench/sdk/ipc.mjs measures the SDK's IPC against raw NATS in depth (bench/results/sdk.md).
// Latency per call from process.hrtime.bigint() in the calling cluster; runs alternate between
// the systems; medians of the runs.
//
//   node bench/peers/ipc.mjs [--quick] [--out DIR] [--reps N] [--n N]
import { waitForQuietMachine } from '../lib/cpu.mjs';
import { median, percentileSorted, round } from '../lib/figures.mjs';
import { log, sleep } from '../lib/log.mjs';
import { PEERS } from '../lib/peers.mjs';
import { startProbeServer } from '../lib/probe.mjs';
import { runSection } from '../lib/section.mjs';
import { startSim, waitForLiveShards } from '../lib/sim.mjs';
import { startSystem } from '../lib/systems.mjs';

const CLUSTERS = 16;
const PAYLOAD_BYTES = 100;

function percentiles(latencies) {
  const sorted = Float64Array.from(latencies).sort();
  const at = (p) => round(percentileSorted(sorted, p), 0);
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: round(sorted.at(-1), 0) };
}

async function startDiscluster(probe) {
  const sim = await startSim({
    guilds: CLUSTERS * 10,
    shards: CLUSTERS,
    'max-concurrency': 1,
    'identify-window-ms': 100,
  });
  const system = await startSystem(
    {
      system: 'discluster',
      bot: 'ipcbench',
      shards: CLUSTERS,
      identifyWindowMs: 100,
      hosts: [
        { id: 'alpha', cores: 2 },
        { id: 'beta', cores: 2 },
      ],
      controlEnv: { DISCLUSTER_SHARDS_PER_CLUSTER: '1' },
      botSettings: { logNonces: false },
    },
    sim,
    probe,
  );
  await waitForLiveShards(sim, CLUSTERS, { timeoutMs: 180_000, onPoll: () => system.check() });
  const ready = await system.fleet.waitAllReady(120_000, 1000);
  if (!ready.ok) throw new Error('Discluster fleet not ready');
  const bots = await probe.waitUntil(
    (list) => list.filter((b) => b.hello.role === 'discluster').length >= CLUSTERS && list,
    120_000,
    'every Discluster cluster',
  );
  const hostOf = new Map();
  for (const host of ready.status.hosts) for (const cluster of host.clusters) hostOf.set(cluster.id, host.id);
  const mine = bots
    .filter((b) => b.hello.role === 'discluster')
    .sort((a, b) => a.hello.clusterId - b.hello.clusterId);
  const from = mine[0];
  const target = mine.find((b) => hostOf.get(b.hello.clusterId) !== hostOf.get(from.hello.clusterId));
  if (!target) throw new Error('no cluster on another host');
  return {
    sim,
    system,
    from,
    target: target.hello.clusterId,
    pids: () => system.pids(),
    describe: `from cluster ${from.hello.clusterId} (${hostOf.get(from.hello.clusterId)}) to cluster ${target.hello.clusterId} (${hostOf.get(target.hello.clusterId)})`,
  };
}

async function startHybrid(probe) {
  const sim = await startSim({
    guilds: CLUSTERS * 10,
    shards: CLUSTERS,
    'max-concurrency': 1,
    'identify-window-ms': 100,
  });
  const peer = {
    ...PEERS.hybridDefault(CLUSTERS),
    options: { totalShards: CLUSTERS, shardsPerClusters: 1 },
    spawn: { timeout: -1, delay: 300 },
  };
  peer.label = 'discord-hybrid-sharding (16 clusters × 1 shard)';
  const system = await startSystem({ system: 'peer', peer }, sim, probe);
  await waitForLiveShards(sim, CLUSTERS, { timeoutMs: 180_000, onPoll: () => system.check() });
  const bots = await probe.waitUntil(
    (list) =>
      list.filter((b) => b.hello.role === 'hybrid' && b.events.some((e) => e.t === 'ready')).length >=
        CLUSTERS && list,
    120_000,
    'every hybrid cluster ready',
  );
  const from = bots.find((b) => b.hello.role === 'hybrid' && b.hello.clusterId === 0);
  return {
    sim,
    system,
    from,
    target: 1,
    pids: () => system.pids(),
    describe: 'from cluster 0 to cluster 1 (same machine, through the ClusterManager process)',
  };
}

runSection(
  'ipc',
  { reps: { type: 'string' }, n: { type: 'string' } },
  async ({ quick, flags, sampler, record }) => {
    const cfg = {
      clusters: CLUSTERS,
      payloadBytes: PAYLOAD_BYTES,
      reps: Number(flags.reps ?? (quick ? 1 : 3)),
      n: Number(flags.n ?? (quick ? 1000 : 5000)),
      warmup: quick ? 200 : 500,
      allN: quick ? 300 : 2000,
      allWarmup: quick ? 50 : 200,
      timeoutMs: 5000,
    };
    record.config = cfg;
    record.runs = [];
    const probe = await startProbeServer();
    const systems = {};
    try {
      log('ipc: starting a Discluster fleet (2 hosts, 16 clusters)');
      systems.discluster = await startDiscluster(probe);
      log('ipc: starting discord-hybrid-sharding (16 clusters)');
      systems.hybrid = await startHybrid(probe);
      record.layout = { discluster: systems.discluster.describe, hybrid: systems.hybrid.describe };
      await sleep(3000);
      for (let rep = 1; rep <= cfg.reps; rep++) {
        for (const name of ['discluster', 'hybrid']) {
          const s = systems[name];
          for (const kind of ['request', 'all']) {
            const otherBefore = await waitForQuietMachine(quick ? 2000 : 10_000, 15, [
              ...systems.discluster.pids(),
              ...systems.hybrid.pids(),
              systems.discluster.sim.pid,
              systems.hybrid.sim.pid,
            ]);
            const meter = sampler.measure();
            const answer = await probe.request(
              s.from,
              'ipcBench',
              {
                target: kind === 'all' ? 'all' : s.target,
                n: kind === 'all' ? cfg.allN : cfg.n,
                warmup: kind === 'all' ? cfg.allWarmup : cfg.warmup,
                payloadBytes: PAYLOAD_BYTES,
                timeoutMs: cfg.timeoutMs,
              },
              600_000,
            );
            const cpu = meter();
            const run = {
              system: name,
              kind,
              rep,
              n: answer.latenciesUs.length,
              clusters: answer.clusters,
              failed: answer.failed,
              bad: answer.bad,
              requesterCpuUsPerCall: round(
                answer.cpuUs / (answer.latenciesUs.length + (kind === 'all' ? cfg.allWarmup : cfg.warmup)),
                0,
              ),
              ...percentiles(answer.latenciesUs),
              otherCpuPct: cpu.otherCpuPct,
              otherCpuPctBefore: otherBefore,
            };
            record.runs.push(run);
            log(
              `  ${name} ${kind === 'all' ? `all (${run.clusters})` : 'request'} r${rep}: p50 ${run.p50} µs, p99 ${run.p99} µs, max ${run.max} µs, failed ${run.failed}, others ${run.otherCpuPct}%`,
            );
          }
        }
      }
    } finally {
      for (const s of Object.values(systems)) {
        await s.system.stop();
        await s.sim.stop();
      }
      await probe.close();
    }
    record.summary = {};
    for (const name of ['discluster', 'hybrid'])
      for (const kind of ['request', 'all']) {
        const runs = record.runs.filter((r) => r.system === name && r.kind === kind);
        const figure = (key) => ({ median: median(runs.map((r) => r[key])), runs: runs.map((r) => r[key]) });
        record.summary[`${name}.${kind}`] = {
          p50: figure('p50'),
          p90: figure('p90'),
          p99: figure('p99'),
          p999: figure('p999'),
          max: figure('max'),
          failed: runs.reduce((n, r) => n + r.failed + r.bad, 0),
          clusters: runs[0]?.clusters,
          requesterCpuUsPerCall: figure('requesterCpuUsPerCall'),
          otherCpuPct: figure('otherCpuPct'),
        };
      }
  },
);
