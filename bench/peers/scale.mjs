#!/usr/bin/env node
// Section 7 of `npm run bench`: MASTER at scale. A real MASTER (foreground `discluster-master`,
// JetStream KV on a real nats-server, GET /gateway/bot from discord-sim) plans 10,000 shards
// (max_concurrency 16) over 200 simulated CONTROLs (bench/peers/fake-controls.mjs: MASTER's own
// test double, one NATS connection each, heartbeat every 5 s as CONTROL's default).
// Measured per run:
//   - plan: from the last CONTROL's announcement being answered to MASTER's log line "first plan
//     made" (pino's timestamp): waiting for the last host (MASTER polls every 200 ms), GET
//     /gateway/bot, computing the plan, saving it in KV;
//   - converge: from "first plan made" until every simulated CONTROL applied its assignment, and
//     until `discluster status --json` shows all 10,000 shards ready;
//   - MASTER RSS (VmRSS and peak VmHWM) and CPU (/proc/<pid>/stat) while converging and at steady
//     state; NATS messages per second at steady state (nats-server's /varz in_msgs and out_msgs).
//
//   node bench/peers/scale.mjs [--quick] [--out DIR] [--reps N] [--hosts N] [--shards N]
import path from 'node:path';
import { forkChild, onCleanup, root, stopChild } from '../sdk/common.mjs';
import { cpuSeconds, memoryMiB } from '../lib/cpu.mjs';
import { median, round } from '../lib/figures.mjs';
import { log, sleep } from '../lib/log.mjs';
import { startSim } from '../lib/sim.mjs';
import { readyShardCount, startFleet } from '../lib/fleet.mjs';
import { runSection } from '../lib/section.mjs';

const FAKES = path.join(root, 'bench', 'peers', 'fake-controls.mjs');
const HEARTBEAT_MS = 5000;

async function varz(port) {
  return (await fetch(`http://127.0.0.1:${port}/varz`)).json();
}

async function runOnce(cfg, rep, sampler) {
  const result = { rep, hosts: cfg.hosts, shards: cfg.shards };
  const sim = await startSim({ guilds: cfg.shards, shards: cfg.shards, 'max-concurrency': 16 });
  let fleet = null;
  let fakes = null;
  try {
    fleet = await startFleet(sim, {
      bot: 'scale',
      hosts: [],
      shards: cfg.shards,
      identifyWindowMs: 5000,
      masterEnv: { DISCLUSTER_EXPECTED_HOSTS: String(cfg.hosts), DISCLUSTER_LOG_LEVEL: 'info' },
      startMaster: false,
    });
    const monitorPort = fleet.nats.monitorPort;
    const masterStartedAt = Date.now();
    const master = await fleet.startMasterAndWait();
    result.masterReadyMs = Date.now() - masterStartedAt;
    fakes = forkChild(FAKES, [], `${cfg.hosts} simulated CONTROLs`);
    onCleanup(() => stopChild(fakes));
    await fakes.waitFor((m) => m?.hello, 30_000, 'hello');
    const converging = sampler.measure();
    const masterCpuBefore = cpuSeconds(master.pid);
    const started = Date.now();
    const answer = await fakes.request(
      {
        cmd: 'start',
        natsUrl: fleet.nats.url,
        bot: 'scale',
        hosts: cfg.hosts,
        cores: 2,
        heartbeatMs: HEARTBEAT_MS,
      },
      120_000,
    );
    if (answer.error) throw new Error(answer.error);
    result.announceSpreadMs = answer.announced.announcedLast - answer.announced.announcedFirst;
    const planLine = await master.waitForLine((line) => line.includes('first plan made'), 120_000);
    const planAt = JSON.parse(planLine).time;
    result.planMs = planAt - answer.announced.announcedLast;
    let stats;
    for (const deadline = Date.now() + 120_000; ;) {
      stats = (await fakes.request({ cmd: 'stats' })).stats;
      if (stats.assignedHosts >= cfg.hosts) break;
      if (Date.now() > deadline)
        throw new Error(`only ${stats.assignedHosts}/${cfg.hosts} CONTROLs assigned after 120 s`);
      await sleep(100);
    }
    result.assignedShards = stats.assignedShards;
    result.assignAllMs = stats.lastAssignAt - planAt;
    let status;
    for (const deadline = Date.now() + 120_000; ;) {
      status = await fleet.status(10_000);
      if (status && readyShardCount(status) >= cfg.shards) break;
      if (Date.now() > deadline) throw new Error(`status never showed ${cfg.shards} shards ready`);
      await sleep(250);
    }
    result.convergeMs = Date.now() - planAt;
    result.fromFirstAnnounceMs = Date.now() - started;
    result.statusHosts = status.hosts.length;
    result.masterCpuConvergingS = round(cpuSeconds(master.pid) - masterCpuBefore, 2);
    result.cpuConverging = converging();
    result.masterMemoryAfterConverge = memoryMiB(master.pid);
    // Steady state: heartbeats only.
    await sleep(cfg.settleMs);
    const steady = sampler.measure();
    const cpu0 = cpuSeconds(master.pid);
    const v0 = await varz(monitorPort);
    const t0 = performance.now();
    const rssSamples = [];
    for (let i = 0; i < cfg.steadySeconds; i++) {
      await sleep(1000);
      rssSamples.push(memoryMiB(master.pid)?.rssMiB);
    }
    const v1 = await varz(monitorPort);
    const seconds = (performance.now() - t0) / 1000;
    result.steady = {
      seconds: round(seconds, 1),
      masterCpuPct: round((100 * (cpuSeconds(master.pid) - cpu0)) / seconds, 1),
      masterRssMiB: round(median(rssSamples), 1),
      masterHwmMiB: memoryMiB(master.pid)?.hwmMiB,
      natsInMsgsPerSec: round((v1.in_msgs - v0.in_msgs) / seconds, 0),
      natsOutMsgsPerSec: round((v1.out_msgs - v0.out_msgs) / seconds, 0),
      natsInBytesPerSec: round((v1.in_bytes - v0.in_bytes) / seconds, 0),
      natsConnections: v1.connections,
      cpu: steady(),
    };
    log(
      `  r${rep}: plan ${result.planMs} ms, all ${cfg.hosts} CONTROLs assigned ${result.assignAllMs} ms and status all ready ${result.convergeMs} ms after the plan; ` +
        `MASTER ${result.steady.masterRssMiB} MiB (peak ${result.steady.masterHwmMiB}), ${result.steady.masterCpuPct}% CPU steady, ${result.masterCpuConvergingS} CPU-s converging; ` +
        `NATS ${result.steady.natsInMsgsPerSec} msgs/s in, ${result.steady.natsOutMsgsPerSec} out; others ${result.cpuConverging.otherCpuPct}% CPU`,
    );
    result.ok = true;
  } catch (error) {
    result.ok = false;
    result.error = error?.message ?? String(error);
    if (fleet) result.diagnostics = fleet.diagnostics().slice(-6000);
    log(`  r${rep}: FAILED: ${result.error}`);
  } finally {
    if (fakes) await stopChild(fakes);
    await fleet?.teardown();
    await sim.stop();
  }
  return result;
}

runSection(
  'scale',
  { reps: { type: 'string' }, hosts: { type: 'string' }, shards: { type: 'string' } },
  async ({ quick, flags, sampler, record }) => {
    const cfg = {
      hosts: Number(flags.hosts ?? 200),
      shards: Number(flags.shards ?? 10_000),
      maxConcurrency: 16,
      heartbeatMs: HEARTBEAT_MS,
      reps: Number(flags.reps ?? (quick ? 1 : 3)),
      settleMs: quick ? 3000 : 10_000,
      steadySeconds: quick ? 10 : 30,
    };
    record.config = cfg;
    record.runs = [];
    for (let rep = 1; rep <= cfg.reps; rep++) {
      log(`scale: MASTER, ${cfg.hosts} simulated CONTROLs, ${cfg.shards} shards, round ${rep}`);
      record.runs.push(await runOnce(cfg, rep, sampler));
    }
    const ok = record.runs.filter((r) => r.ok);
    const figure = (get) => ({ median: median(ok.map(get)), runs: ok.map(get) });
    record.summary = {
      planMs: figure((r) => r.planMs),
      assignAllMs: figure((r) => r.assignAllMs),
      convergeMs: figure((r) => r.convergeMs),
      masterRssMiB: figure((r) => r.steady.masterRssMiB),
      masterHwmMiB: figure((r) => r.steady.masterHwmMiB),
      masterCpuPctSteady: figure((r) => r.steady.masterCpuPct),
      masterCpuConvergingS: figure((r) => r.masterCpuConvergingS),
      natsInMsgsPerSec: figure((r) => r.steady.natsInMsgsPerSec),
      natsOutMsgsPerSec: figure((r) => r.steady.natsOutMsgsPerSec),
      otherCpuPct: figure((r) => r.cpuConverging.otherCpuPct),
      failed: record.runs.filter((r) => !r.ok).map((r) => r.error),
    };
  },
);
