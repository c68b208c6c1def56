// What the peer benchmarks do with every system under test, in one place: start it against a
// simulator (a Discluster fleet, or a peer manager), list its processes, stop it by pid.
import fs from 'node:fs';
import { round } from './figures.mjs';
import { log } from './log.mjs';
import { markOurs, memoryMiB } from './cpu.mjs';
import { startFleet } from './fleet.mjs';
import { startPeer } from './peers.mjs';
import { waitForLiveShards } from './sim.mjs';

/**
 * Starts `variant` against `sim`: `{ system: 'discluster', hosts, shards, identifyWindowMs, … }` or
 * `{ system: 'peer', peer }` (bench/lib/peers.mjs); `botFile` (Discluster) or `extra.bot` (peer)
 * names another bot file. Returns { pids(), stop(), fleet?, peer? }.
 */
export async function startSystem(variant, sim, probe, extra = {}) {
  if (variant.system === 'discluster') {
    const fleet = await startFleet(sim, {
      bot: variant.bot ?? 'bench',
      hosts: variant.hosts,
      shards: variant.shards,
      identifyWindowMs: variant.identifyWindowMs,
      probe: probe.url,
      masterEnv: variant.masterEnv,
      controlEnv: variant.controlEnv,
      botSettings: { ...variant.botSettings, ...extra.botSettings },
      botFile: variant.botFile,
    });
    for (const host of fleet.hosts.values()) markOurs(host.home);
    return {
      fleet,
      pids: () => fleet.allPids(),
      workerPids: () => fleet.allClusterPids(),
      check: () => fleet.check(),
      stop: () => fleet.teardown(),
    };
  }
  const peer = await startPeer(variant.peer, sim, probe, extra);
  return {
    peer,
    pids: () => [peer.pid, ...peer.childPids].filter(alive),
    workerPids: () => [...peer.childPids].filter(alive),
    check: () => {
      if (peer.manager.exited)
        throw new Error(`${variant.peer.label}: manager exited: ${peer.manager.stderr.slice(-1500)}`);
      if (peer.spawnErrors.length > 0)
        throw new Error(`${variant.peer.label}: spawn failed: ${peer.spawnErrors[0]}`);
    },
    stop: () => peer.stop(),
  };
}

function alive(pid) {
  return fs.existsSync(`/proc/${pid}`);
}

/** Total RSS (MiB) and count of a list of processes. */
export function processMemory(pids) {
  let rss = 0;
  let count = 0;
  for (const pid of pids) {
    const memory = memoryMiB(pid);
    if (!memory) continue;
    rss += memory.rssMiB;
    count++;
  }
  return { processes: count, rssMiB: round(rss, 1) };
}

/**
 * Waits until every shard of `shards` has a live session at the simulator, failing at once if the
 * system died and after `timeoutMs` (a liveness bound, not a target); logs progress now and then.
 */
export async function waitAllLive(sim, system, shards, timeoutMs, label, intervalMs = 200) {
  const started = Date.now();
  let lastLog = started;
  const live = await waitForLiveShards(sim, shards, {
    timeoutMs,
    intervalMs,
    onPoll: (n) => {
      system.check();
      if (Date.now() - lastLog > 15_000) {
        lastLog = Date.now();
        log(`    ${label}: ${n}/${shards} shards live after ${round((Date.now() - started) / 1000, 0)} s`);
      }
    },
  });
  if (!live.ok) throw new Error(`${label}: only ${live.live}/${shards} shards live after ${timeoutMs} ms`);
  return live;
}

/** Records a failed run (with the fleet's last output) and logs it. */
export function failRun(result, error, system, label) {
  result.ok = false;
  result.error = error?.message ?? String(error);
  if (system?.fleet) result.diagnostics = system.fleet.diagnostics().slice(-6000);
  log(`  ${label}: FAILED: ${result.error}`);
}

/**
 * Runs one measured run: `body(track)` starts what it needs and hands the system under test to
 * `track(system)`; a thrown error is recorded in `result` (failRun); the system, the probe and the
 * simulator are always stopped. Resolves with `result`.
 */
export async function guardedRun(result, label, { sim, probe }, body) {
  let system = null;
  try {
    await body((started) => (system = started));
    result.ok = true;
  } catch (error) {
    failRun(result, error, system, label);
  } finally {
    await system?.stop();
    await probe.close();
    await sim.stop();
  }
  return result;
}
