#!/usr/bin/env node
// IPC request/response latency between cluster processes over one local nats-server, with raw NATS
// request/reply between the same processes as the in-run comparison.
//
// Layouts (each process a child at the bench priority, each ClusterIpc on its own NATS connection):
//   pair:  2 processes, cluster 0 and cluster 1. Process 0 sends N sequential requests to cluster 1:
//          `ipc.request(1, 'echo', data)` ("sdk") or a raw `nc.request()` with the same bytes on the
//          wire, answered by `msg.respond(msg.data)` ("raw"). Payloads ~100 B and 4 KiB of JSON.
//   all2:  2 processes hosting 8 ClusterIpc each (clusters 0-7 and 8-15): `ipc.requestAll('echo')`
//          from cluster 0 over all 16 ("sdkAll"), against 16 raw requests in parallel ("rawAll").
//   all16: 16 processes with one ClusterIpc each, same requests (a fleet's real shape, on 2 cores).
// Every connection is made with `noAsyncTraces: true`, as `Cluster` makes its own (the client then
// skips creating two stack-capturing Error objects per request).
//   pair-traces, all2-traces: pair and all2 with nats.js's default options instead, to show what the
//          option is worth to anyone who hands the SDK a connection of their own.
// Raw and SDK runs alternate (A B A B …) in every layout; latency per request from
// process.hrtime.bigint() in the requester; CPU of every process from /proc/<pid>/stat.
//
//   node bench/sdk/ipc.mjs            full run, writes bench/results/sdk.json + sdk.md
//   node bench/sdk/ipc.mjs --quick    fewer requests and repetitions, writes to a temp dir
// Flags: --reps N, --n N, --warmup N, --all-n N, --layouts pair,all2,all16, --out DIR.
import path from 'node:path';
import { applyNice, forkChild, here, onCleanup, stopChild, testingHelpers } from './common.mjs';
import { cpuMeter, waitForQuietMachine } from '../lib/cpu.mjs';
import { median, round } from '../lib/figures.mjs';
import { stringFlags } from '../lib/flags.mjs';
import { log, sleep } from '../lib/log.mjs';
import { machineSummary, sdkBuildFingerprint } from '../lib/machineFacts.mjs';
import { parseSectionFlags, runSdkSection } from './section.mjs';

const PEER = path.join(here, 'ipc-peer.mjs');

// --only raw|sdk (diagnostics, with --cpu-prof): run only the raw or only the sdk calls.
const { flags, quick, outDir } = parseSectionFlags(
  stringFlags('reps', 'n', 'warmup', 'all-n', 'layouts', 'only'),
);
const config = {
  reps: Number(flags.reps ?? (quick ? 1 : 5)),
  n: Number(flags.n ?? (quick ? 3000 : 20_000)),
  warmup: Number(flags.warmup ?? (quick ? 500 : 2000)),
  allN: Number(flags['all-n'] ?? (quick ? 1000 : 5000)),
  allWarmup: quick ? 200 : 500,
  payloads: [100, 4096],
  layouts: (flags.layouts ?? 'pair,all2,all16,pair-traces,all2-traces').split(','),
  timeoutMs: 5000,
  quietWaitMs: quick ? 3000 : 15_000,
};

let layoutCounter = 0;

/** Starts processes hosting the given cluster ids (one array per process). */
async function startPeers(natsUrl, hosting, natsOptions) {
  const botName = `ipcbench${process.pid}x${++layoutCounter}`;
  const clusterIds = hosting.flat();
  const peers = hosting.map((ids, index) =>
    forkChild(PEER, [], `ipc peer ${index} (clusters ${ids.join(',')})`),
  );
  try {
    await Promise.all(peers.map((peer) => peer.waitFor((m) => m?.hello, 30_000, 'hello')));
    for (let i = 0; i < peers.length; i++) {
      const answer = await peers[i].request(
        { cmd: 'start', natsUrl, botName, hostedIds: hosting[i], clusterIds, natsOptions },
        60_000,
      );
      if (answer.error) throw new Error(`peer ${i} failed to start: ${answer.error}`);
    }
  } catch (error) {
    await Promise.all(peers.map((peer) => stopChild(peer)));
    throw error;
  }
  return { peers, clusterIds, botName, sdkBuild: sdkBuildFingerprint().combined };
}

async function timedRun(layout, peersInfo, natsPid, spec) {
  const { peers } = peersInfo;
  const otherBefore = await waitForQuietMachine(config.quietWaitMs, 15, [
    natsPid,
    ...peers.map((p) => p.pid),
  ]);
  const meter = cpuMeter([natsPid, ...peers.map((peer) => peer.pid)]);
  const answer = await peers[0].request({ cmd: 'run', timeoutMs: config.timeoutMs, ...spec }, 600_000);
  const cpu = meter();
  if (answer.error) throw new Error(`${layout} ${spec.kind}: ${answer.error}`);
  const result = answer.result;
  const ops = result.n + result.warmup;
  result.errors = answer.errors;
  result.layout = layout;
  result.sdkBuild = peersInfo.sdkBuild;
  result.rep = spec.rep;
  result.wallS = cpu.wallS;
  result.natsCpuPct = cpu.pct[0];
  result.peerCpuPct = cpu.pct.slice(1);
  // /proc CPU per operation (warm-up included, as /proc cannot separate it): requester, responders, nats.
  result.procCpuUsPerOp = {
    requester: round((cpu.cpuS[1] * 1e6) / ops, 1),
    responders: round((cpu.cpuS.slice(2).reduce((a, b) => a + b, 0) * 1e6) / ops, 1),
    nats: round((cpu.cpuS[0] * 1e6) / ops, 1),
  };
  result.otherCpuPct = cpu.otherPct;
  result.otherCpuPctBefore = otherBefore;
  log(
    `  ${layout} ${spec.kind} ${spec.payloadBytes} B rep ${spec.rep}: p50 ${result.us.p50} µs, p99 ${result.us.p99} µs, ` +
      `p99.9 ${result.us.p999} µs, max ${result.us.max} µs, ${result.perSec}/s, requester CPU ${result.requesterCpuUsPerOp} µs/op, ` +
      `failed ${result.failed}, bad ${result.bad}, other ${cpu.otherPct}%`,
  );
  return result;
}

// The options `Cluster` connects with (cluster-sdk/src/cluster/Cluster.ts).
const SDK_NATS_OPTIONS = { noAsyncTraces: true };
const TWO_BY_EIGHT = [
  [0, 1, 2, 3, 4, 5, 6, 7],
  [8, 9, 10, 11, 12, 13, 14, 15],
];

export const LAYOUTS = {
  pair: { hosting: [[0], [1]], all: false, natsOptions: SDK_NATS_OPTIONS },
  all2: { hosting: TWO_BY_EIGHT, all: true, natsOptions: SDK_NATS_OPTIONS },
  all16: { hosting: Array.from({ length: 16 }, (_, i) => [i]), all: true, natsOptions: SDK_NATS_OPTIONS },
  'pair-traces': { hosting: [[0], [1]], all: false, natsOptions: {} },
  'all2-traces': { hosting: TWO_BY_EIGHT, all: true, natsOptions: {} },
};

async function runLayout(layout, nats) {
  const spec = LAYOUTS[layout];
  if (!spec) throw new Error(`unknown layout ${layout} (known: ${Object.keys(LAYOUTS).join(', ')})`);
  const { hosting } = spec;
  log(
    `layout ${layout}: ${hosting.length} processes, ${hosting.flat().length} ClusterIpc, NATS options ${JSON.stringify(spec.natsOptions)}`,
  );
  const peersInfo = await startPeers(nats.url, hosting, spec.natsOptions);
  const results = [];
  try {
    const kinds = (spec.all ? ['rawAll', 'sdkAll'] : ['raw', 'sdk']).filter(
      (kind) => !flags.only || kind.startsWith(flags.only),
    );
    const payloads = config.payloads;
    const n = spec.all ? config.allN : config.n;
    const warmup = spec.all ? config.allWarmup : config.warmup;
    // Unmeasured first pass of every kind and payload: JIT, connection buffers and the reply inbox warm
    // for both before the first measured run, so the kind measured first is not the one paying for it.
    for (const payloadBytes of payloads)
      for (const kind of kinds)
        await peersInfo.peers[0].request(
          {
            cmd: 'run',
            timeoutMs: config.timeoutMs,
            kind,
            from: 0,
            target: 1,
            payloadBytes,
            n: warmup,
            warmup: 0,
          },
          600_000,
        );
    for (const payloadBytes of payloads) {
      for (let rep = 1; rep <= config.reps; rep++) {
        for (const kind of kinds) {
          results.push(
            await timedRun(layout, peersInfo, nats.pid, {
              kind,
              from: 0,
              target: 1,
              payloadBytes,
              n,
              warmup,
              rep,
            }),
          );
        }
      }
    }
  } finally {
    await Promise.all(peersInfo.peers.map((peer) => stopChild(peer)));
  }
  return results;
}

function summarize(results) {
  const groups = new Map();
  for (const result of results) {
    const key = `${result.layout}|${result.payloadBytes}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(result);
  }
  const rows = [];
  for (const [key, list] of groups) {
    const [layout, payloadBytes] = key.split('|');
    const sdkKind = LAYOUTS[layout].all ? 'sdkAll' : 'sdk';
    const rawKind = LAYOUTS[layout].all ? 'rawAll' : 'raw';
    const sdk = list.filter((r) => r.kind === sdkKind);
    const raw = list.filter((r) => r.kind === rawKind);
    const stat = (runs, pick) => ({ median: round(median(runs.map(pick)), 1), runs: runs.map(pick) });
    const figures = (runs) => ({
      p50: stat(runs, (r) => r.us.p50),
      p90: stat(runs, (r) => r.us.p90),
      p99: stat(runs, (r) => r.us.p99),
      p999: stat(runs, (r) => r.us.p999),
      max: stat(runs, (r) => r.us.max),
      mean: stat(runs, (r) => r.us.mean),
      perSec: stat(runs, (r) => r.perSec),
      requesterCpuUsPerOp: stat(runs, (r) => r.requesterCpuUsPerOp),
      respondersProcCpuUsPerOp: stat(runs, (r) => r.procCpuUsPerOp.responders),
      failed: runs.reduce((a, r) => a + r.failed, 0),
      bad: runs.reduce((a, r) => a + r.bad, 0),
      otherCpuPct: stat(runs, (r) => r.otherCpuPct),
    });
    const s = figures(sdk);
    const r = figures(raw);
    const ratio = (a, b) => (a && b ? round(a / b, 2) : null);
    const perRep = (pick) => sdk.map((x, i) => (raw[i] ? round(pick(x) / pick(raw[i]), 2) : null));
    rows.push({
      layout,
      natsOptions: LAYOUTS[layout].natsOptions,
      payloadBytes: Number(payloadBytes),
      wireBytes: sdk[0]?.wireBytes ?? null,
      n: sdk[0]?.n ?? null,
      reps: sdk.length,
      sdk: s,
      raw: r,
      ratio: {
        p50: ratio(s.p50.median, r.p50.median),
        p99: ratio(s.p99.median, r.p99.median),
        requesterCpu: ratio(s.requesterCpuUsPerOp.median, r.requesterCpuUsPerOp.median),
        p50PerRep: perRep((x) => x.us.p50),
        p99PerRep: perRep((x) => x.us.p99),
      },
      overheadUs: {
        p50: round(s.p50.median - r.p50.median, 1),
        p99: round(s.p99.median - r.p99.median, 1),
      },
    });
  }
  return rows;
}

runSdkSection('ipc', { config, quick, outDir }, async (machine) => {
  log(`ipc bench: ${machineSummary(machine)}; layouts ${config.layouts.join(', ')}`);
  const { startNatsServer } = await testingHelpers();
  const nats = await startNatsServer({ jetstream: false });
  onCleanup(() => nats.stop());
  const natsPriority = applyNice(nats.pid);
  log(`nats-server pid ${nats.pid} (${nats.url}), priority ${natsPriority}`);
  const startedAt = new Date().toISOString();
  const results = [];
  for (const layout of config.layouts) {
    results.push(...(await runLayout(layout, nats)));
    await sleep(500);
  }
  return { startedAt, summary: summarize(results), runs: results };
});
