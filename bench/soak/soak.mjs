#!/usr/bin/env node
// The soak itself (run by bench/soak/run.mjs, which renders the report): a Discluster fleet
// (bench/lib/fleet.mjs: nats-server, MASTER, one CONTROL with its own pm2 daemon per stand-in host,
// the bench bot in cluster processes) against discord-sim, with steady MESSAGE_CREATE traffic and a
// random fault every few minutes, for a set time. Every sampling interval it reads, for every
// process of the fleet, VmRSS from /proc/<pid>/status and the number of /proc/<pid>/fd entries.
// At the end it checks what the fault matrix checks (delivery by nonce, identify violations,
// duplicate live sessions) over the whole soak.
//
//   node bench/soak/soak.mjs [--minutes N] [--quick] [--seed N] [--out DIR] …   (see OPTIONS)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { applyNice, onCleanup, root } from '../sdk/common.mjs';
import { markOurs } from '../lib/cpu.mjs';
import { round } from '../lib/figures.mjs';
import { stringFlags } from '../lib/flags.mjs';
import { readPid, readyShardCount, startFleet } from '../lib/fleet.mjs';
import { log, sleep } from '../lib/log.mjs';
import { runSection } from '../lib/section.mjs';
import { liveShards, startSim, stateDelta, waitForLiveShards } from '../lib/sim.mjs';
import { analyze } from './analyze.mjs';

// The sim's own mulberry32, so a soak's faults can be replayed with --seed.
const { GuildStore, seededRandom } = createRequire(import.meta.url)(
  path.join(root, 'discord-sim', 'dist', 'guilds.js'),
);
const { leaseBucket, sessionBucket } = createRequire(import.meta.url)(
  path.join(root, 'protocol', 'dist', 'index.js'),
);

export const OPTIONS = {
  ...stringFlags('minutes', 'seed', 'sample-s', 'warmup-s', 'fault-min-s', 'fault-max-s', 'faults'),
  ...stringFlags('shards', 'hosts', 'rate', 'kill-node-every-min', 'node-down-s'),
  'nats-cluster': { type: 'boolean', default: false },
};

const FAULT_KINDS = [
  'cluster-sigkill',
  'resume-storm',
  'op7',
  'invalid-session',
  'rolling-restart',
  'nats-restart',
];
const HOST_IDS = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta'];
const MAX_CONCURRENCY = 4;
const WINDOW_MS = 500;
// As the integration tests: a co-located simulator on a loaded machine reads IDENTIFYs late.
const SAFETY_MARGIN_MS = 400;
/** --nats-cluster: the smallest JetStream cluster that survives losing a node, kv_replicas 3. */
const NATS_NODES = 3;
/** Liveness bound for recovery from one fault (not a target). */
const RECOVERY_BOUND_MS = 180_000;

function config(flags, quick) {
  const num = (name, fallback) => {
    if (flags[name] === undefined) return fallback;
    const value = Number(flags[name]);
    if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a number ≥ 0`);
    return value;
  };
  const minutes = num('minutes', quick ? 3 : 30);
  const natsCluster = flags['nats-cluster'] ? NATS_NODES : 0;
  // On a cluster, nats-restart (the one server) has no meaning: the node kills replace it.
  const kinds = natsCluster ? FAULT_KINDS.filter((kind) => kind !== 'nats-restart') : FAULT_KINDS;
  const faults = (flags.faults ?? kinds.join(',')).split(',').filter(Boolean);
  for (const kind of faults)
    if (!kinds.includes(kind)) throw new Error(`unknown fault ${kind}; known: ${kinds.join(', ')}`);
  const killNodeEveryMin = num('kill-node-every-min', 0);
  if (killNodeEveryMin > 0 && !natsCluster) throw new Error('--kill-node-every-min needs --nats-cluster');
  const cfg = {
    minutes,
    seed: num('seed', Math.floor(Math.random() * 2 ** 31)),
    sampleS: num('sample-s', quick ? 5 : 15),
    warmupS: num('warmup-s', quick ? 20 : Math.min(180, Math.round(minutes * 6))),
    faultMinS: num('fault-min-s', quick ? 10 : 120),
    faultMaxS: num('fault-max-s', quick ? 15 : 180),
    faults,
    shards: num('shards', 32),
    hosts: num('hosts', 2),
    maxConcurrency: MAX_CONCURRENCY,
    guildsPerShard: 50,
    identifyWindowMs: WINDOW_MS,
    identifySafetyMarginMs: SAFETY_MARGIN_MS,
    trafficPerSecond: num('rate', 200),
    // Enough for any outage of the soak (a shard gets ~rate/shards events per second); the
    // default 100,000 per session would let the simulator's own memory grow all run long.
    replayBufferLimit: 2000,
    recoveryBoundMs: RECOVERY_BOUND_MS,
    natsCluster,
    kvReplicas: natsCluster || 1,
    killNodeEveryMin,
    nodeDownS: num('node-down-s', 10),
  };
  if (cfg.hosts < 1 || cfg.hosts > HOST_IDS.length) throw new Error(`--hosts must be 1..${HOST_IDS.length}`);
  if (cfg.faultMaxS < cfg.faultMinS) throw new Error('--fault-max-s must be ≥ --fault-min-s');
  if (cfg.warmupS >= minutes * 60) throw new Error('the warm-up must be shorter than the soak');
  return cfg;
}

/** What the simulator counted across a fault: bench/lib's delta and the resumes of live sessions. */
function simDelta(before, after) {
  return {
    ...stateDelta(before, after),
    resumeWhileLive: after.violations.resumeWhileLive - before.violations.resumeWhileLive,
  };
}

// ---- /proc ---------------------------------------------------------------------------------------

/** What each open fd of a process points at: `socket:[…]`, `pipe:[…]`, `anon_inode:…` or a path. */
function fdTargets(pid) {
  const targets = [];
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      targets.push(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // closed meanwhile
    }
  }
  return targets;
}

/** Open fds by kind: s sockets, p pipes, a anon inodes (eventfd, epoll, …), f files, o other. */
function fdKinds(targets) {
  const kinds = { s: 0, p: 0, a: 0, f: 0, o: 0 };
  for (const target of targets) {
    if (target.startsWith('socket:')) kinds.s++;
    else if (target.startsWith('pipe:')) kinds.p++;
    else if (target.startsWith('anon_inode:')) kinds.a++;
    else if (target.startsWith('/')) kinds.f++;
    else kinds.o++;
  }
  return kinds;
}

function procFigures(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
    const targets = fdTargets(pid);
    return { rss: field('VmRSS'), fd: targets.length, fk: fdKinds(targets), thr: field('Threads') };
  } catch {
    return null; // exited between listing and reading
  }
}

/** The fd targets of the long-lived processes (MASTER, CONTROLs, pm2 daemons), files by name. */
function fdSnapshot(fleet, sim) {
  const snapshot = {};
  for (const p of fleetProcesses(fleet, sim).filter((x) => ['master', 'control', 'pm2'].includes(x.r))) {
    try {
      const counts = {};
      for (const target of fdTargets(p.pid)) {
        // `/proc/<pid>/stat` (pm2's pidusage): of a live or of an exited process?
        const proc = /^\/proc\/(\d+)\//.exec(target);
        const key = proc
          ? target.replace(
              /^\/proc\/\d+\//,
              fs.existsSync(`/proc/${proc[1]}`) ? '/proc/<live pid>/' : '/proc/<exited pid>/',
            )
          : target.replace(/\[\d+\]$/, '[…]');
        counts[key] = (counts[key] ?? 0) + 1;
      }
      snapshot[p.k] = counts;
    } catch {
      // gone
    }
  }
  return snapshot;
}

function clusterIdOf(pid) {
  try {
    const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const entry = environ.find((line) => line.startsWith('DISCLUSTER_CLUSTER_ID='));
    return entry ? entry.slice('DISCLUSTER_CLUSTER_ID='.length) : null;
  } catch {
    return null;
  }
}

/** Every process of the fleet, the simulator and the bench itself: { k (series key), r (role), h, pid }. */
function fleetProcesses(fleet, sim) {
  const list = [];
  for (const master of fleet.masters)
    if (!master.expectedExit) list.push({ k: 'master', r: 'master', h: null, pid: master.pid });
  for (const [id, host] of fleet.hosts) {
    if (host.control) list.push({ k: `control:${id}`, r: 'control', h: id, pid: host.control.pid });
    const daemon = readPid(path.join(host.home, 'pm2.pid'));
    if (Number.isInteger(daemon) && daemon > 0) list.push({ k: `pm2:${id}`, r: 'pm2', h: id, pid: daemon });
    const clusters = fleet
      .clusterPids(id)
      .map((pid) => ({ pid, cid: clusterIdOf(pid) }))
      .filter((c) => c.cid !== null)
      .sort((a, b) => Number(a.cid) - Number(b.cid));
    for (const { pid, cid } of clusters) list.push({ k: `cluster:${cid}`, r: 'cluster', h: id, pid });
  }
  if (fleet.natsCluster) {
    for (const node of fleet.natsCluster.nodes)
      if (node.running) list.push({ k: `nats:${node.index}`, r: 'nats', h: null, pid: node.pid });
  } else list.push({ k: 'nats', r: 'nats', h: null, pid: fleet.nats.pid });
  list.push({ k: 'sim', r: 'sim', h: null, pid: sim.pid });
  list.push({ k: 'bench', r: 'bench', h: null, pid: process.pid });
  return list;
}

// ---- the soak ------------------------------------------------------------------------------------

runSection('soak', OPTIONS, async ({ quick, flags, sampler, record }) => {
  const cfg = config(flags, quick);
  record.config = cfg;
  const random = seededRandom(cfg.seed);
  log(
    `soak: ${cfg.minutes} min (warm-up ${cfg.warmupS} s), ${cfg.hosts} hosts, ${cfg.shards} shards, ` +
      `${cfg.trafficPerSecond} ev/s, a fault every ${cfg.faultMinS}–${cfg.faultMaxS} s, sample every ${cfg.sampleS} s; seed ${cfg.seed}`,
  );

  const guilds = cfg.shards * cfg.guildsPerShard;
  const sim = await startSim({
    guilds,
    shards: cfg.shards,
    'max-concurrency': cfg.maxConcurrency,
    'identify-window-ms': cfg.identifyWindowMs,
    'replay-buffer-limit': cfg.replayBufferLimit,
  });
  const guildModel = new GuildStore(guilds, 1);
  const shardOfNonce = (n) => guildModel.shardOf(n % guilds, cfg.shards);
  const hosts = HOST_IDS.slice(0, cfg.hosts).map((id) => ({ id, cores: 2 }));
  const t0 = Date.now();
  const fleet = await startFleet(sim, {
    bot: 'bench',
    hosts,
    shards: cfg.shards,
    identifyWindowMs: cfg.identifyWindowMs,
    botSettings: { identifySafetyMarginMs: cfg.identifySafetyMarginMs },
    natsCluster: cfg.natsCluster,
  });
  for (const host of fleet.hosts.values()) markOurs(host.home);

  // ---- cold start
  const live = await waitForLiveShards(sim, cfg.shards, {
    timeoutMs: 300_000,
    onPoll: () => fleet.check(),
  });
  if (!live.ok) throw new Error(`cold start: only ${live.live}/${cfg.shards} shards live after 300 s`);
  const ready = await fleet.waitAllReady(120_000);
  if (!ready.ok) throw new Error('cold start: `discluster status` never showed every shard ready');
  const coldState = await sim.call('GET', '/state');
  record.coldStart = {
    allLiveMs: live.at - t0,
    statusReadyMs: ready.at - t0,
    identifies: coldState.identifies,
    identifyViolations: coldState.violations.identifyRate,
    duplicateLiveSessions: coldState.violations.duplicateLiveSessions,
    resumeWhileLive: coldState.violations.resumeWhileLive,
  };
  log(
    `  cold start: every shard live after ${round(record.coldStart.allLiveMs / 1000, 1)} s, ` +
      `${coldState.identifies} identifies, ${coldState.violations.identifyRate} identify violations`,
  );

  // ---- the soak: traffic, sampling, faults
  const soakStart = Date.now();
  const soakMs = cfg.minutes * 60_000;
  const soakEnd = soakStart + soakMs;
  record.soak = { startedAt: new Date(soakStart).toISOString(), warmupS: cfg.warmupS };
  record.fdTargets = { atStart: fdSnapshot(fleet, sim) };
  record.samples = [];
  record.faults = [];
  const meter = sampler.measure();
  const stateAtStart = coldState;
  // The traffic run spans the soak; its nonces are checked at the end.
  const trafficSeconds = Math.max(1, Math.round(soakMs / 1000) - 5);
  const trafficStart = await sim.call('POST', '/traffic', {
    eventsPerSecond: cfg.trafficPerSecond,
    seconds: trafficSeconds,
  });
  const trafficRun = await sim.call('GET', `/traffic/${trafficStart.id}`);
  const traffic = {
    id: trafficStart.id,
    total: trafficStart.total,
    eventsPerSecond: cfg.trafficPerSecond,
    seconds: trafficSeconds,
    startedAt: trafficRun.startedAt,
  };
  record.traffic = { ...traffic };

  let sampling = true;
  const takeSample = () => {
    const procs = [];
    for (const p of fleetProcesses(fleet, sim)) {
      const figures = procFigures(p.pid);
      if (figures) procs.push({ ...p, ...figures });
    }
    const sample = {
      t: round((Date.now() - soakStart) / 1000, 1),
      load1: round(os.loadavg()[0], 2),
      procs,
    };
    record.samples.push(sample);
    return sample;
  };
  const samplerLoop = (async () => {
    for (let k = 0; sampling; k++) {
      const due = soakStart + k * cfg.sampleS * 1000;
      if (due > soakEnd) break;
      if (due > Date.now()) await sleep(due - Date.now());
      if (!sampling) break;
      const sample = takeSample();
      if (k % Math.max(1, Math.round(120 / cfg.sampleS)) === 0) {
        const sum = (role) =>
          round(sample.procs.filter((p) => p.r === role).reduce((a, p) => a + p.rss, 0) / 1024, 0);
        log(
          `  t=${Math.round(sample.t)} s: RSS MiB master ${sum('master')}, controls ${sum('control')}, pm2 ${sum('pm2')}, ` +
            `clusters ${sum('cluster')} (${sample.procs.filter((p) => p.r === 'cluster').length}), nats ${sum('nats')}, sim ${sum('sim')}`,
        );
      }
    }
  })();
  onCleanup(() => {
    sampling = false;
  });

  // Between faults, what the fault cost until the next one (a fence can come seconds after the
  // fleet looked recovered): a poller reads the simulator's live sessions every second.
  const newWindow = () => ({
    polls: 0,
    pollsNotAllLive: 0,
    minLive: cfg.shards,
    missingShardSeconds: 0,
    pollsDoubled: 0,
  });
  const liveness = { current: newWindow(), stop: false };
  record.soak.beforeFaults = liveness.current;
  const livenessLoop = (async () => {
    let last = Date.now();
    while (!liveness.stop) {
      await sleep(1000);
      try {
        const { live: n, doubled } = liveShards(await sim.call('GET', '/state'), cfg.shards);
        const now = Date.now();
        const w = liveness.current;
        w.polls++;
        if (n < cfg.shards) w.pollsNotAllLive++;
        if (doubled > 0) w.pollsDoubled++;
        w.minLive = Math.min(w.minLive, n);
        w.missingShardSeconds = round(w.missingShardSeconds + ((cfg.shards - n) * (now - last)) / 1000, 1);
        last = now;
      } catch {
        // the simulator is being stopped
      }
    }
  })();
  /** What the simulator counted from a fault's injection until `state` (the next fault or the end). */
  const closeWindow = (fault, state) => {
    const b = fault.stateBefore;
    fault.untilNext = {
      seconds: round((Date.now() - soakStart) / 1000 - fault.atS, 1),
      resumes: state.resumes - b.resumes,
      identifies: state.identifies - b.identifies,
      identifyViolations: state.violations.identifyRate - b.violations.identifyRate,
      duplicateLiveSessions: state.violations.duplicateLiveSessions - b.violations.duplicateLiveSessions,
      resumeWhileLive: state.violations.resumeWhileLive - b.violations.resumeWhileLive,
    };
  };

  // One fault at a time: the random faults and the NATS node kills wait for each other (a check
  // and set with no await between them, so a plain flag is a mutex here).
  let faultBusy = false;
  const takeFaultTurn = async () => {
    while (faultBusy) await sleep(250);
    faultBusy = true;
  };
  const fencesSoFar = () => fleet.botLines('"fenced"').filter((line) => line.t === 'fenced').length;

  // --nats-cluster: a 3-replica probe bucket written every 50 ms for the whole soak; the gaps
  // between successful writes are each node kill's KV stall.
  const probe = cfg.natsCluster ? await startKvProbe(fleet.natsCluster) : null;
  if (probe) onCleanup(() => probe.stop());
  record.nodeKills = [];
  /** SIGKILL one NATS node, restart it after --node-down-s, and measure what it cost. */
  const killNatsNode = async (cluster, node) => {
    const kill = { n: record.nodeKills.length + 1, node, atS: round((Date.now() - soakStart) / 1000, 1) };
    try {
      // The probe bucket led by the victim, so its stall is that of a bucket losing its leader.
      kill.probeLeaderWasKilled = await probe.leaderOnto(node);
      const before = await sim.call('GET', '/state');
      const fencedBefore = fencesSoFar();
      kill.metaLeaderWasKilled = (await cluster.metaLeader()) === node;
      kill.leasesLeaderWasKilled = (await cluster.streamLeader(`KV_${leaseBucket('bench')}`)) === node;
      kill.sessionsLeaderWasKilled = (await cluster.streamLeader(`KV_${sessionBucket('bench')}`)) === node;
      const oldPid = cluster.nodes[node].pid;
      const killedAt = Date.now();
      const perfKilledAt = performance.now();
      await cluster.killNode(node);
      const deadline = killedAt + RECOVERY_BOUND_MS;
      const until = async (what, ready) => {
        for (;;) {
          fleet.check();
          if (await ready()) return Date.now();
          if (Date.now() > deadline) throw new Error(`${what} not within ${RECOVERY_BOUND_MS} ms`);
          await sleep(200);
        }
      };
      // Both timed from the kill, while the node is still down: the fleet must serve on the other two.
      const [leadersAt, servingAt] = await Promise.all([
        until('a new meta leader and living leaders of the lease and sessions buckets', async () => {
          const leaders = [
            await cluster.metaLeader(),
            await cluster.streamLeader(`KV_${leaseBucket('bench')}`),
            await cluster.streamLeader(`KV_${sessionBucket('bench')}`),
          ];
          return leaders.every((leader) => leader !== undefined && leader !== node);
        }),
        until('every shard live, none doubled', async () => {
          const { live: n, doubled } = liveShards(await sim.call('GET', '/state'), cfg.shards);
          return n === cfg.shards && doubled === 0;
        }),
      ]);
      kill.recoveryMs = leadersAt - killedAt;
      kill.servingAfterMs = servingAt - killedAt;
      const restartAt = killedAt + cfg.nodeDownS * 1000;
      if (Date.now() < restartAt) await sleep(restartAt - Date.now());
      await cluster.restartNode(node);
      // As every process of the fleet: the bench's load stays below the machine's other work.
      applyNice(cluster.nodes[node].pid);
      const restartedAt = Date.now();
      kill.downMs = restartedAt - killedAt;
      kill.catchUpMs = (await until(`node ${node} caught up`, () => cluster.caughtUp(node))) - restartedAt;
      kill.kvStallMs = probe.longestGap(perfKilledAt - 100, performance.now());
      kill.probeWriteFailures = probe.failuresSince(perfKilledAt);
      kill.fencedClusters = fencesSoFar() - fencedBefore;
      const after = await sim.call('GET', '/state');
      Object.assign(kill, simDelta(before, after));
      kill.detail = `SIGKILL nats node ${node} (pid ${oldPid} → ${cluster.nodes[node].pid})`;
      kill.ok = true;
      log(
        `  node kill ${kill.n} at ${Math.round(kill.atS)} s: node ${node}${kill.metaLeaderWasKilled ? ' (meta leader)' : ''}; ` +
          `KV stall ${round(kill.kvStallMs / 1000, 1)} s, leaders moved after ${round(kill.recoveryMs / 1000, 1)} s, ` +
          `caught up ${round(kill.catchUpMs / 1000, 1)} s after its restart; ${kill.fencedClusters} fences, ` +
          `${kill.identifies} identifies, ${kill.resumes} resumes, ${kill.identifyViolations} violations, ` +
          `${kill.duplicateLiveSessions} duplicates, ${kill.resumeWhileLive} resumes while live`,
      );
    } catch (error) {
      kill.ok = false;
      kill.error = error?.message ?? String(error);
      log(`  node kill ${kill.n} (node ${node}) FAILED: ${kill.error}`);
      // A node left down would turn every later figure into a 2-node soak: start it again.
      if (!cluster.nodes[node].running) await cluster.restartNode(node).catch(() => undefined);
      fleet.check();
    }
    return kill;
  };

  const nodeKiller = (async () => {
    if (!cfg.killNodeEveryMin) return;
    const cluster = fleet.natsCluster;
    const lastKillBy = soakEnd - Math.min(60_000, cfg.killNodeEveryMin * 30_000);
    for (let k = 0; ; k++) {
      const due = soakStart + cfg.warmupS * 1000 + (k + 1) * cfg.killNodeEveryMin * 60_000;
      if (due > lastKillBy) break;
      while (Date.now() < due && !liveness.stop) await sleep(Math.min(1000, due - Date.now()));
      if (liveness.stop) break;
      await takeFaultTurn();
      try {
        record.nodeKills.push(await killNatsNode(cluster, k % cluster.nodes.length));
      } finally {
        faultBusy = false;
      }
    }
  })();

  // Faults: a seeded shuffled deck of the kinds, so every kind comes up once before any repeats.
  let deck = [];
  const nextKind = () => {
    if (deck.length === 0) {
      deck = [...cfg.faults];
      for (let i = deck.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [deck[i], deck[j]] = [deck[j], deck[i]];
      }
    }
    return deck.shift();
  };
  const pick = (list) => list[Math.floor(random() * list.length)];
  const pickSome = (list, n) => {
    const copy = [...list];
    const out = [];
    while (out.length < n && copy.length > 0) out.push(copy.splice(Math.floor(random() * copy.length), 1)[0]);
    return out.sort((a, b) => a - b);
  };
  const allShards = [...Array(cfg.shards).keys()];
  const invalidations = [];

  // The first fault one interval after the warm-up, each next one an interval after the previous
  // one recovered; the end of the soak stays quiet enough for the last one to settle.
  let nextFaultAt = soakStart + cfg.warmupS * 1000;
  const lastFaultBy = soakEnd - Math.min(60_000, cfg.faultMinS * 1000);
  let previous = null;
  for (;;) {
    nextFaultAt += (cfg.faultMinS + random() * (cfg.faultMaxS - cfg.faultMinS)) * 1000;
    if (nextFaultAt > lastFaultBy) break;
    while (Date.now() < nextFaultAt) {
      fleet.check();
      await sleep(Math.min(1000, nextFaultAt - Date.now()));
    }
    await takeFaultTurn();
    const kind = nextKind();
    const before = await sim.call('GET', '/state');
    if (previous) closeWindow(previous, before);
    const fault = { kind, atS: round((Date.now() - soakStart) / 1000, 1), window: newWindow() };
    fault.stateBefore = before;
    liveness.current = fault.window;
    record.faults.push(fault);
    previous = fault;
    let expectResumes = 0;
    let expectIdentifies = 0;
    const injectedAt = Date.now();
    try {
      if (kind === 'cluster-sigkill') {
        const status = await fleet.status();
        const pids = fleet.allClusterPids().map((pid) => ({ pid, cid: clusterIdOf(pid) }));
        const victim = pick(pids);
        const cluster = status?.hosts.flatMap((h) => h.clusters).find((c) => String(c.id) === victim.cid);
        fault.detail = `SIGKILL cluster ${victim.cid} (pid ${victim.pid}, ${cluster?.shards.length ?? '?'} shards)`;
        process.kill(victim.pid, 'SIGKILL');
        expectResumes = cluster?.shards.length ?? 1;
      } else if (kind === 'resume-storm') {
        fault.detail = `every shard closed with 4000`;
        await sim.call('POST', '/shards/all/close?code=4000');
        expectResumes = cfg.shards;
      } else if (kind === 'op7') {
        const shards = pickSome(allShards, Math.max(1, Math.round(cfg.shards / 4)));
        fault.detail = `op 7 RECONNECT to shards ${shards.join(', ')}`;
        await Promise.all(shards.map((id) => sim.call('POST', `/shards/${id}/reconnect`)));
        expectResumes = shards.length;
      } else if (kind === 'invalid-session') {
        const shards = pickSome(allShards, 2);
        const sentBefore = (await sim.call('GET', `/traffic/${traffic.id}`)).sent;
        fault.detail = `INVALID_SESSION(false) to shards ${shards.join(', ')}`;
        await Promise.all(shards.map((id) => sim.call('POST', `/shards/${id}/invalidate?resumable=false`)));
        invalidations.push({ shards, sentBefore, at: Date.now() });
        expectIdentifies = shards.length;
      } else if (kind === 'rolling-restart') {
        fault.detail = '`discluster restart --rolling`';
        const result = await fleet.cli('restart', '--rolling', '--timeout-ms', String(RECOVERY_BOUND_MS));
        fault.cliMs = Date.now() - injectedAt;
        if (result.code !== 0)
          throw new Error(`discluster restart --rolling: exit ${result.code}: ${result.stderr}`);
        expectResumes = cfg.shards;
      } else if (kind === 'nats-restart') {
        const oldPid = fleet.nats.pid;
        await fleet.nats.restart();
        fault.natsDownMs = Date.now() - injectedAt;
        fault.detail = `nats-server stopped (SIGTERM) and started on the same port and store, down ${round(fault.natsDownMs / 1000, 1)} s (pid ${oldPid} → ${fleet.nats.pid})`;
      }
      // Recovered: the sessions the fault costs are back (RESUMEs, or IDENTIFYs after an
      // invalidation), every shard has one live session, and `discluster status` says ready.
      const deadline = injectedAt + RECOVERY_BOUND_MS;
      let state;
      for (;;) {
        fleet.check();
        state = await sim.call('GET', '/state');
        const { live: n, doubled } = liveShards(state, cfg.shards);
        if (
          state.resumes - before.resumes >= expectResumes &&
          state.identifies - before.identifies >= expectIdentifies &&
          n === cfg.shards &&
          doubled === 0
        )
          break;
        if (Date.now() > deadline) throw new Error(`not every shard serving within ${RECOVERY_BOUND_MS} ms`);
        await sleep(250);
      }
      fault.servingAfterMs = Date.now() - injectedAt;
      for (;;) {
        const status = await fleet.status();
        if (status && readyShardCount(status) >= cfg.shards) break;
        if (Date.now() > deadline)
          throw new Error(`\`discluster status\` not all ready within ${RECOVERY_BOUND_MS} ms`);
        await sleep(1000);
      }
      fault.statusReadyAfterMs = Date.now() - injectedAt;
      const after = await sim.call('GET', '/state');
      Object.assign(fault, simDelta(before, after));
      fault.ok = true;
      log(
        `  fault ${record.faults.length} at ${Math.round(fault.atS)} s: ${kind}: ${fault.detail}; serving after ${round(fault.servingAfterMs / 1000, 1)} s, ` +
          `status ready after ${round(fault.statusReadyAfterMs / 1000, 1)} s; ${fault.resumes} resumes, ${fault.identifies} identifies, ` +
          `${fault.identifyViolations} violations, ${fault.duplicateLiveSessions} duplicates`,
      );
    } catch (error) {
      fault.ok = false;
      fault.error = error?.message ?? String(error);
      log(`  fault ${record.faults.length} (${kind}) at ${Math.round(fault.atS)} s FAILED: ${fault.error}`);
      fleet.check(); // a MASTER or CONTROL that died ends the soak with its output
    } finally {
      faultBusy = false;
    }
    nextFaultAt = Math.max(nextFaultAt, Date.now());
  }

  // ---- the end: last samples, then the checks
  while (Date.now() < soakEnd) {
    fleet.check();
    await sleep(Math.min(1000, soakEnd - Date.now()));
  }
  await samplerLoop;
  sampling = false;
  liveness.stop = true;
  await nodeKiller;
  await probe?.stop();
  record.fdTargets.atEnd = fdSnapshot(fleet, sim);
  liveness.stop = true;
  await livenessLoop;
  if (previous) closeWindow(previous, await sim.call('GET', '/state'));
  for (const fault of record.faults) delete fault.stateBefore;
  record.soak.finishedAt = new Date().toISOString();
  record.soak.cpu = meter();

  // Delivery, as the fault matrix counts it: every nonce of the traffic run at a bot handler, except
  // those sent to an invalidated shard between the invalidation and its new IDENTIFY (Discord does
  // not deliver those either).
  const identifies = await sim.call('GET', '/identifies');
  const reidentifiedAt = (shard, after) =>
    identifies.find((r) => r.shard[0] === shard && r.outcome === 'ready' && r.at >= after)?.at ?? Infinity;
  const exemptRanges = invalidations.flatMap((inv) =>
    inv.shards.map((shard) => ({ shard, fromN: inv.sentBefore, untilAt: reidentifiedAt(shard, inv.at) })),
  );
  const isExempt = (n) =>
    exemptRanges.some(
      (range) =>
        n >= range.fromN &&
        shardOfNonce(n) === range.shard &&
        traffic.startedAt + (n * 1000) / traffic.eventsPerSecond <= range.untilAt,
    );
  for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
    if ((await sim.call('GET', `/traffic/${traffic.id}`)).done) break;
    await sleep(500);
  }
  const required = [];
  let exempt = 0;
  for (let n = 0; n < traffic.total; n++) {
    if (isExempt(n)) exempt++;
    else required.push(n);
  }
  let received = new Set();
  let deliveries = 0;
  let missing = required;
  for (const deadline = Date.now() + 60_000; ;) {
    ({ unique: received, deliveries } = fleet.receivedNonces());
    missing = required.filter((n) => !received.has(`${traffic.id}:${n}`));
    if (missing.length === 0 || Date.now() > deadline) break;
    await sleep(5000);
  }
  const endState = await sim.call('GET', '/state');
  let delivered = 0;
  for (let n = 0; n < traffic.total; n++) if (received.has(`${traffic.id}:${n}`)) delivered++;
  const duplicates = await sim.call('GET', '/duplicates');
  record.checks = {
    traffic: {
      dispatched: traffic.total,
      required: required.length,
      exempt,
      delivered,
      lost: missing.length,
      lostSample: missing.slice(0, 20),
      deliveredMoreThanOnce: deliveries - [...received].filter((n) => n.startsWith(`${traffic.id}:`)).length,
    },
    duringSoak: {
      identifies: endState.identifies - stateAtStart.identifies,
      resumes: endState.resumes - stateAtStart.resumes,
      identifyViolations: endState.violations.identifyRate - stateAtStart.violations.identifyRate,
      duplicateLiveSessions:
        endState.violations.duplicateLiveSessions - stateAtStart.violations.duplicateLiveSessions,
      resumeWhileLive: endState.violations.resumeWhileLive - stateAtStart.violations.resumeWhileLive,
      fences: fencesSoFar(),
    },
    total: {
      identifies: endState.identifies,
      resumes: endState.resumes,
      identifyViolations: endState.violations.identifyRate,
      duplicateLiveSessions: endState.violations.duplicateLiveSessions,
      resumeWhileLive: endState.violations.resumeWhileLive,
      duplicates: duplicates.slice(0, 20),
      sessionStartRemaining: endState.sessionStartRemaining,
      tokenReset: endState.tokenReset,
    },
    faultsFailed: record.faults.filter((f) => !f.ok).length,
    nodeKillsFailed: record.nodeKills.filter((kill) => !kill.ok).length,
  };
  log(
    `  delivery: ${delivered} of ${traffic.total} nonces at a bot handler (${required.length} required, ${exempt} exempt), ` +
      `${missing.length} lost, ${record.checks.traffic.deliveredMoreThanOnce} deliveries beyond the first; during the soak ` +
      `${record.checks.duringSoak.identifies} identifies, ${record.checks.duringSoak.identifyViolations} identify violations, ` +
      `${record.checks.duringSoak.duplicateLiveSessions} duplicate live sessions, ` +
      `${record.checks.duringSoak.resumeWhileLive} resumes while live, ${record.checks.duringSoak.fences} fences`,
  );

  // What the fleet said about itself: cluster restarts, and warnings or errors in MASTER's and the
  // CONTROLs' logs (pino JSON: level 40 warn, 50 error, 60 fatal) and the bots' error lines.
  const status = await fleet.status();
  record.endStatus = status
    ? {
        stopped: status.stopped ?? null,
        hosts: status.hosts.map((h) => ({
          id: h.id,
          state: h.state,
          clusters: h.clusters.map((c) => ({
            id: c.id,
            state: c.state,
            restarts: c.restarts,
            shards: c.shards.length,
            ready: c.shards.filter((s) => s.state === 'ready').length,
          })),
        })),
      }
    : null;
  const logLines = (spawned, name) =>
    (spawned?.lines ?? []).flatMap((line) => {
      try {
        const entry = JSON.parse(line);
        return entry.level >= 40
          ? [{ from: name, level: entry.level, msg: entry.msg, t: round((entry.time - soakStart) / 1000, 1) }]
          : [];
      } catch {
        return [];
      }
    });
  const warnings = [
    ...fleet.masters.flatMap((m, i) => logLines(m, `MASTER ${i}`)),
    ...[...fleet.hosts].flatMap(([id, host]) => logLines(host.control, `CONTROL ${id}`)),
  ];
  const counts = {};
  for (const w of warnings) {
    const key = `${w.from} [${w.level}] ${w.msg}`;
    counts[key] ??= { count: 0, atS: [] };
    counts[key].count++;
    if (counts[key].atS.length < 40) counts[key].atS.push(w.t);
  }
  // The full logs of MASTER and the CONTROLs, and the clusters' stderr, kept outside the results
  // (the fleet's temporary directories are removed at teardown) for looking into a finding.
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'discluster-soak-logs-'));
  fleet.masters.forEach((m, i) =>
    fs.writeFileSync(path.join(logDir, `master-${i}.log`), `${m.lines.join('\n')}\n${m.stderr()}`),
  );
  for (const [id, host] of fleet.hosts) {
    fs.writeFileSync(
      path.join(logDir, `control-${id}.log`),
      `${host.control.lines.join('\n')}\n${host.control.stderr()}`,
    );
    const pm2Logs = path.join(host.home, 'logs');
    for (const file of fs.existsSync(pm2Logs) ? fs.readdirSync(pm2Logs) : [])
      if (file.endsWith('-error.log'))
        fs.copyFileSync(path.join(pm2Logs, file), path.join(logDir, `${id}-${file}`));
  }
  const elected = fleet.masters.flatMap((m) =>
    m.lines
      .filter((line) => line.includes('elected leader'))
      .map((line) => {
        try {
          return round((JSON.parse(line).time - soakStart) / 1000, 1);
        } catch {
          return null;
        }
      }),
  );
  log(`  MASTER, CONTROL and cluster error logs: ${logDir}`);
  const botProblems = fleet
    .botLines('"t":"')
    .filter((line) => ['error', 'fatal', 'startError'].includes(line.t));
  record.logs = {
    dir: logDir,
    masterElectedAtS: elected,
    warningsByMessage: counts,
    botErrors: botProblems.slice(0, 50),
    botErrorCount: botProblems.length,
  };

  const verdict = analyze(record);
  log(
    `  growth ${verdict.ok ? 'bounded' : 'NOT bounded'} over ${verdict.window.minutes} min after the warm-up` +
      (verdict.failed.length ? `: ${verdict.failed.map((f) => `${f.label}: ${f.why}`).join('; ')}` : ''),
  );
  for (const s of verdict.series.filter((x) => x.ok !== null))
    log(
      `    ${s.label.padEnd(44)} RSS ${s.rssMiB.firstMedian} → ${s.rssMiB.lastMedian} MiB (max ${s.rssMiB.max}, ${s.rssMiB.slopePerHour} MiB/h), ` +
        `fd floor ${s.fds.firstMin} → ${s.fds.lastMin}${s.judged ? (s.ok ? '' : '  FAIL') : '  (not judged)'}`,
    );
});

// ---- --nats-cluster ------------------------------------------------------------------------------

/**
 * Writes to a 3-replica KV bucket (`stall_probe`) every 50 ms and remembers every gap between
 * successful writes, for the KV stall of each node kill.
 */
async function startKvProbe(cluster) {
  const nc = await connect({ servers: [...cluster.urls], maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const kv = await new Kvm(jetstream(nc, { timeout: 2000 })).create('stall_probe', {
    replicas: cluster.nodes.length,
    history: 1,
  });
  const gaps = [];
  const failures = [];
  let running = true;
  const loop = (async () => {
    let lastOk = performance.now();
    for (let n = 1; running; n++) {
      try {
        await kv.put('probe', String(n));
        const now = performance.now();
        // Only gaps worth a look: the soak runs for hours at 20 writes a second.
        if (now - lastOk > 200) gaps.push({ from: lastOk, ms: now - lastOk });
        lastOk = now;
      } catch {
        failures.push(performance.now());
      }
      await sleep(50);
    }
  })();
  return {
    longestGap: (from, to) =>
      Math.round(Math.max(0, ...gaps.filter((g) => g.from >= from && g.from < to).map((g) => g.ms))),
    failuresSince: (from) => failures.filter((at) => at >= from).length,
    /** Steps the bucket's leader down until it is `node` (nats-server cannot name the next leader). */
    async leaderOnto(node) {
      for (let attempt = 0; attempt < 12; attempt++) {
        const leader = await cluster.streamLeader('KV_stall_probe');
        if (leader === node) return true;
        if (leader !== undefined)
          await nc
            .request('$JS.API.STREAM.LEADER.STEPDOWN.KV_stall_probe', '', { timeout: 5000 })
            .catch(() => undefined);
        await sleep(500);
      }
      return false;
    },
    async stop() {
      if (!running) return;
      running = false;
      await loop;
      await nc.close().catch(() => undefined);
    },
  };
}
