// The peer systems, run from their npm packages against discord-sim: discord.js's ShardingManager
// and discord-hybrid-sharding's ClusterManager (bench/peers/peer-manager.cjs, a child of the bench)
// with bench/peers/djs-bot.cjs in their children. The children report to the bench's probe
// (bench/lib/probe.mjs); every pid is stopped on the way out.
import fs from 'node:fs';
import path from 'node:path';
import { forkChild, onCleanup, root, stopChild } from '../sdk/common.mjs';
import { SIM_TOKEN } from './sim.mjs';

const MANAGER = path.join(root, 'bench', 'peers', 'peer-manager.cjs');
export const DEFAULT_INTENTS = 1 | (1 << 9); // GUILDS | GUILD_MESSAGES

/** Peer settings the benchmarks use, named for the reports. */
export const PEERS = {
  // discord.js ShardingManager: one process per shard; spawn() defaults (delay 5500 ms, timeout 30 s).
  shardingManager: (shards) => ({
    kind: 'sharding-manager',
    label: 'discord.js ShardingManager (defaults)',
    options: { totalShards: shards },
    spawn: undefined,
  }),
  // discord-hybrid-sharding as its README sets it up: mode process, totalClusters auto (one per
  // CPU), its queue with the default spawn delay (7 s per shard of the cluster), spawn({ timeout: -1 }).
  hybridDefault: (shards) => ({
    kind: 'hybrid',
    label: 'discord-hybrid-sharding (README settings)',
    options: { totalShards: shards, totalClusters: 'auto' },
    spawn: { timeout: -1 },
  }),
  // Tuned by hand for this benchmark: clusters of max_concurrency shards (one per rate-limit key)
  // and a spawn delay of window / max_concurrency per shard, so one cluster starts per identify
  // window. Each cluster's own discord.js throttler cannot see the others'.
  hybridTuned: (shards, maxConcurrency, windowMs) => ({
    kind: 'hybrid',
    label: `discord-hybrid-sharding (tuned: ${maxConcurrency} shards/cluster, delay ${Math.ceil(windowMs / maxConcurrency)} ms/shard)`,
    options: { totalShards: shards, shardsPerClusters: maxConcurrency },
    spawn: { timeout: -1, delay: Math.ceil(windowMs / maxConcurrency) },
  }),
};

/**
 * Starts a peer manager process for `peer` (an entry of PEERS) against `sim`, reporting to `probe`.
 * Resolves once the manager process runs; `spawnDone` resolves when its spawn() resolved. `bot`: the
 * bot file its children run (default bench/peers/djs-bot.cjs).
 */
export async function startPeer(
  peer,
  sim,
  probe,
  { intents = DEFAULT_INTENTS, options = {}, nonceLogDir = null, bot = undefined } = {},
) {
  const manager = forkChild(MANAGER, [], peer.label);
  const handle = {
    peer,
    manager,
    pid: manager.pid,
    childPids: new Set(),
    spawnErrors: [],
  };
  manager.child.on('message', (message) => {
    if (message?.spawned && message.pid) handle.childPids.add(message.pid);
    if (message?.spawnError) handle.spawnErrors.push(message.spawnError);
  });
  handle.spawnDone = manager.waitFor((m) => m?.spawnDone || m?.spawnError, 24 * 3600_000, 'spawn end');
  handle.spawnDone.catch(() => undefined);
  handle.stop = async () => {
    await stopChild(manager, 4000);
    // The manager kills its children by pid; anything it could not (it was killed first) goes here.
    for (const pid of handle.childPids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  onCleanup(handle.stop);
  await manager.waitFor((m) => m?.hello, 30_000, 'hello');
  await manager.send({
    cmd: 'start',
    kind: peer.kind,
    token: SIM_TOKEN,
    simApi: sim.api,
    probe: probe.url,
    intents,
    nonceLogDir,
    options: { ...peer.options, ...options },
    spawn: peer.spawn,
    bot,
  });
  return handle;
}

/**
 * The nonces of traffic run `trafficId` that peer bots appended to their files in `dir`
 * (BENCH_NONCE_LOG_DIR): the set, and every delivery counted.
 */
export function readNonceLogs(dir, trafficId) {
  const lines = fs
    .readdirSync(dir)
    .flatMap((file) => fs.readFileSync(path.join(dir, file), 'utf8').split('\n'))
    .filter((line) => line.startsWith(`${trafficId}:`));
  return { unique: new Set(lines), deliveries: lines.length };
}
