'use strict';
// One peer system's manager process, forked by the bench: discord.js's `ShardingManager` or
// discord-hybrid-sharding's `ClusterManager`, running bench/peers/djs-bot.cjs in its children (or
// the bot file `bot` names).
// {cmd:'start', kind, token, simApi, probe, intents, options, spawn, bot?} creates the manager and calls
// spawn() with the given spawn options (undefined = the peer's defaults); {cmd:'stop'} kills every
// child by its pid (no respawn) and exits. Messages to the bench: {spawned, pid}, {spawnDone},
// {spawnError}.
const path = require('node:path');

const BOT = path.join(__dirname, 'djs-bot.cjs');
let manager = null;
let kind = null;

function childPids() {
  const pids = [];
  if (!manager) return pids;
  if (kind === 'sharding-manager') {
    for (const shard of manager.shards.values()) if (shard.process?.pid) pids.push(shard.process.pid);
  } else {
    for (const cluster of manager.clusters.values()) {
      const pid = cluster.thread?.process?.pid;
      if (pid) pids.push(pid);
    }
  }
  return pids;
}

async function start(message) {
  kind = message.kind;
  process.env.BENCH_PEER = kind;
  process.env.BENCH_SIM_API = message.simApi;
  process.env.BENCH_PROBE = message.probe;
  process.env.BENCH_INTENTS = String(message.intents);
  if (message.nonceLogDir) process.env.BENCH_NONCE_LOG_DIR = message.nonceLogDir;
  if (kind === 'sharding-manager') {
    const { ShardingManager } = require('discord.js');
    manager = new ShardingManager(message.bot ?? BOT, { token: message.token, ...message.options });
    manager.on('shardCreate', (shard) =>
      shard.on('spawn', (child) => process.send({ spawned: true, pid: child.pid, shard: shard.id })),
    );
  } else if (kind === 'hybrid') {
    const { ClusterManager } = require('discord-hybrid-sharding');
    manager = new ClusterManager(message.bot ?? BOT, {
      token: message.token,
      mode: 'process',
      ...message.options,
    });
    manager.on('clusterCreate', (cluster) =>
      cluster.on('spawn', (child) => process.send({ spawned: true, pid: child?.pid, cluster: cluster.id })),
    );
  } else {
    throw new Error(`unknown peer ${kind}`);
  }
  manager.spawn(message.spawn).then(
    () => process.send({ spawnDone: true, at: Date.now() }),
    (error) => process.send({ spawnError: String(error?.stack ?? error) }),
  );
}

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  if (manager) manager.respawn = false;
  if (kind === 'hybrid' && manager) manager.queue.stop();
  for (const pid of childPids()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  setTimeout(() => process.exit(0), 200);
}

process.on('message', (message) => {
  if (message?.cmd === 'start') {
    try {
      start(message);
    } catch (error) {
      process.send({ spawnError: String(error?.stack ?? error) });
    }
  } else if (message?.cmd === 'pids') {
    process.send({ id: message.id, pids: childPids() });
  } else if (message?.cmd === 'stop') stop();
});
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
process.send({ hello: true, pid: process.pid });
