#!/usr/bin/env node
// Section 3 of `npm run bench`: failover. While MESSAGE_CREATE traffic with nonces runs, the
// machine serving 64 shards dies (SIGKILL of everything on it). Measured: time from the kill until
// every shard has a live session again (the simulator's view), identifies and resumes spent,
// duplicate live sessions, and events lost (nonces the simulator sent that no bot handler logged)
// or delivered twice.
//
// Discluster: two active stand-in hosts with 64 shards each and a standby host (each its own
// CONTROL and PM2_HOME); the whole of one active host is SIGKILLed (CONTROL, pm2 daemon, clusters:
// discluster-testing's killMachine). Nonces are counted from the bots' pm2 log files, as
// test/support/fleet.ts does. Full runs use Discluster's default timing (heartbeat 5 s, host
// timeout 15 s, shard lease 20 s: a new owner may start only after the lease expired); quick runs
// the shorter timing of the integration tests.
// Peer: discord-hybrid-sharding on one machine (it has no multi-host failover) with two clusters of
// 64 shards; the process of one cluster is SIGKILLed and its manager respawns it (respawn: true, its
// default). Nonces are appended to a file per process as they arrive.
//
//   node bench/peers/failover.mjs [--quick] [--out DIR] [--reps N]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onCleanup } from '../sdk/common.mjs';
import { median, round } from '../lib/figures.mjs';
import { log, sleep } from '../lib/log.mjs';
import { PEERS, readNonceLogs } from '../lib/peers.mjs';
import { startProbeServer } from '../lib/probe.mjs';
import { runSection } from '../lib/section.mjs';
import { liveShards, lostNonces, startSim, stateDelta, waitTrafficDone } from '../lib/sim.mjs';
import { guardedRun, startSystem, waitAllLive } from '../lib/systems.mjs';

const C = 16;

async function runOnce(kind, cfg, rep, sampler) {
  const { hostShards, windowMs, rate, seconds } = cfg;
  const shards = 2 * hostShards;
  const result = { kind, rep, shards, killedShards: hostShards };
  const sim = await startSim({
    guilds: shards * 10,
    shards,
    'max-concurrency': C,
    'identify-window-ms': kind === 'discluster' ? cfg.disclusterWindowMs : windowMs,
  });
  const probe = await startProbeServer();
  const nonceDir = fs.mkdtempSync(path.join(os.tmpdir(), 'discluster-bench-nonces-'));
  onCleanup(() => fs.rmSync(nonceDir, { recursive: true, force: true }));
  return guardedRun(result, `${kind} failover`, { sim, probe }, async (track) => {
    let system;
    if (kind === 'discluster') {
      const variant = {
        system: 'discluster',
        shards,
        identifyWindowMs: cfg.disclusterWindowMs,
        hosts: [
          { id: 'alpha', cores: 2 },
          { id: 'beta', cores: 2 },
          { id: 'gamma', cores: 2, role: 'standby' },
        ],
        masterEnv: cfg.masterEnv,
        controlEnv: cfg.controlEnv,
      };
      system = track(await startSystem(variant, sim, probe));
      await waitAllLive(sim, system, shards, 300_000, 'cold start');
      const ready = await system.fleet.waitAllReady(120_000, 1000);
      if (!ready.ok) throw new Error('not every shard ready in `discluster status` after the cold start');
      const beta = ready.status.hosts.find((host) => host.id === 'beta');
      result.victimShards = beta.clusters.reduce((n, cluster) => n + cluster.shards.length, 0);
      result.label = 'Discluster (2 active hosts + 1 standby)';
    } else {
      const peer = {
        ...PEERS.hybridTuned(shards, C, windowMs),
        options: { totalShards: shards, shardsPerClusters: hostShards },
      };
      peer.label = `discord-hybrid-sharding (2 clusters of ${hostShards} shards, respawn on exit)`;
      result.label = peer.label;
      system = track(await startSystem({ system: 'peer', peer }, sim, probe, { nonceLogDir: nonceDir }));
      await waitAllLive(sim, system, shards, 600_000, 'cold start');
      await probe.waitUntil(
        (bots) => bots.filter((bot) => bot.events.some((e) => e.t === 'ready')).length >= 2,
        120_000,
        'both clusters ready',
      );
      result.victimShards = hostShards;
    }
    await sleep(2000);
    const before = await sim.call('GET', '/state');
    const traffic = await sim.call('POST', '/traffic', { eventsPerSecond: rate, seconds });
    result.traffic = { id: traffic.id, total: traffic.total, perSecond: rate, seconds };
    await sleep(3000);
    const meter = sampler.measure();
    const killAt = Date.now();
    if (kind === 'discluster') {
      result.killedPids = (await system.fleet.killHost('beta')).length;
    } else {
      const victim = probe.live().find((bot) => bot.hello.clusterId === 1);
      process.kill(victim.hello.pid, 'SIGKILL');
      result.killedPids = 1;
    }
    // The simulator sees the sockets close at once; then wait for every shard to be live again.
    result.liveRightAfterKill = liveShards(await sim.call('GET', '/state'), shards).live;
    const live = await waitAllLive(sim, system, shards, 600_000, 'failover', 100);
    result.toAllServingMs = live.at - killAt;
    result.cpu = meter();
    Object.assign(result, stateDelta(before, await sim.call('GET', '/state')));
    result.trafficFinished = await waitTrafficDone(sim, traffic.id, 120_000);
    await sleep(3000);
    let unique;
    let deliveries;
    if (kind === 'discluster') {
      ({ unique, deliveries } = system.fleet.receivedNonces());
    } else {
      ({ unique, deliveries } = readNonceLogs(nonceDir, traffic.id));
    }
    result.eventsLost = lostNonces(unique, traffic);
    result.eventsDeliveredTwice =
      deliveries - [...unique].filter((n) => n.startsWith(`${traffic.id}:`)).length;
    log(
      `  ${result.label}: ${result.victimShards} shards lost with their machine/process; all serving again after ${round(result.toAllServingMs / 1000, 1)} s; ` +
        `identifies ${result.identifies}, resumes ${result.resumes}, duplicates ${result.duplicateLiveSessions}; ` +
        `events lost ${result.eventsLost}/${traffic.total}, delivered twice ${result.eventsDeliveredTwice}; others ${result.cpu.otherCpuPct}% CPU`,
    );
  });
}

function summarize(runs) {
  const out = {};
  for (const kind of ['discluster', 'hybrid']) {
    const list = runs.filter((run) => run.kind === kind);
    const ok = list.filter((run) => run.ok);
    const pick = (key) => ok.map((run) => run[key]);
    out[kind] = {
      label: list[0]?.label,
      runs: list.length,
      failed: list.length - ok.length,
      victimShards: pick('victimShards'),
      toAllServingMs: { median: median(pick('toAllServingMs')), runs: pick('toAllServingMs') },
      identifies: { max: ok.length ? Math.max(...pick('identifies')) : null, runs: pick('identifies') },
      resumes: { runs: pick('resumes') },
      eventsLost: { max: ok.length ? Math.max(...pick('eventsLost')) : null, runs: pick('eventsLost') },
      eventsDeliveredTwice: { runs: pick('eventsDeliveredTwice') },
      duplicateLiveSessions: { runs: pick('duplicateLiveSessions') },
      identifyViolations: { runs: pick('identifyViolations') },
      otherCpuPct: {
        median: median(ok.map((run) => run.cpu.otherCpuPct)),
        runs: ok.map((run) => run.cpu.otherCpuPct),
      },
      errors: list.filter((run) => !run.ok).map((run) => run.error),
    };
  }
  return out;
}

runSection('failover', { reps: { type: 'string' } }, async ({ quick, flags, sampler, record }) => {
  const reps = Number(flags.reps ?? (quick ? 1 : 3));
  const cfg = {
    hostShards: quick ? 16 : 64,
    // The simulator's window for the peer (its throttler waits 5 s regardless) and for Discluster's
    // cold start (the failover itself spends no identify when it works).
    windowMs: 5000,
    disclusterWindowMs: 500,
    rate: quick ? 100 : 200,
    seconds: quick ? 15 : 60,
    // Full: Discluster's defaults. Quick: the integration tests' short timing.
    masterEnv: quick ? { DISCLUSTER_HOST_TIMEOUT_MS: '3000', DISCLUSTER_LEASE_MS: '6000' } : {},
    controlEnv: quick ? { DISCLUSTER_HEARTBEAT_MS: '500' } : {},
  };
  record.config = { ...cfg, reps, maxConcurrency: C };
  record.runs = [];
  for (let rep = 1; rep <= reps; rep++) {
    for (const kind of ['discluster', 'hybrid']) {
      log(`failover ${kind}, round ${rep}`);
      record.runs.push(await runOnce(kind, cfg, rep, sampler));
      record.summary = summarize(record.runs);
    }
  }
});
