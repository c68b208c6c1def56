// One gateway client process for bench/sdk/dispatch.mjs: either a bare `@discordjs/ws`
// WebSocketManager ("bare") or a standalone discluster-sdk `Cluster` ("cluster") for the same
// shards, with the same compression, counting MESSAGE_CREATE in its dispatch listener.
//
// Forked with an IPC channel. The parent sends {cmd:'start', config} (the token travels here, never
// on the command line), then {cmd:'stats', id} (answered with {id, stats}) and {cmd:'stop'}.
// The counting code is shared by both variants, so the only difference is the client under test.
import { createRequire } from 'node:module';
import v8 from 'node:v8';

const require = createRequire(import.meta.url);
const { countNonce, nonceFigures, nonceRun, parseNonce } = require('../lib/nonces.cjs');
const variant = process.argv[2];
if (variant !== 'bare' && variant !== 'cluster') {
  process.stderr.write('usage: dispatch-client.mjs bare|cluster (forked by bench/sdk/dispatch.mjs)\n');
  process.exit(2);
}

const now = () => performance.timeOrigin + performance.now();

// ---- counters (identical for both variants) ----------------------------------------------------

const counters = {
  readyShards: new Set(),
  readyAt: 0,
  guildsExpected: 0,
  guildsReceived: 0,
  guildsDoneAt: 0,
  dispatches: 0,
  errors: [],
  closes: [],
  nonCountedMessages: 0,
};
/** runId → { count, distinct, duplicates, firstAt, lastAt, seen, cpuAtFirst, cpuAtLast, expected } */
const runs = new Map();
let shardTotal = 0;

function runOf(id) {
  let run = runs.get(id);
  if (!run) {
    run = nonceRun({
      seen: new Uint8Array(1 << 17),
      // process.cpuUsage() (µs, user+system) at the first event and when `expected` distinct arrived.
      cpuAtFirst: null,
      cpuAtExpected: null,
      expectedAt: 0,
      expected: 0,
    });
    runs.set(id, run);
  }
  return run;
}

function cpuMicros() {
  const { user, system } = process.cpuUsage();
  return user + system;
}

function countMessage(nonce) {
  const parsed = parseNonce(nonce);
  if (!parsed) {
    counters.nonCountedMessages++;
    return;
  }
  const run = runOf(Number(parsed.runId));
  const t = now();
  if (run.count === 0) run.cpuAtFirst = cpuMicros();
  if (countNonce(run, parsed.n, t) && run.distinct === run.expected) {
    run.cpuAtExpected = cpuMicros();
    run.expectedAt = t;
  }
}

/** The dispatch listener of both variants: `packet` is the raw {op, t, s, d}. */
function onDispatch(packet, shardId) {
  counters.dispatches++;
  const t = packet.t;
  if (t === 'MESSAGE_CREATE') {
    countMessage(packet.d.nonce);
  } else if (t === 'READY') {
    counters.readyShards.add(shardId);
    counters.guildsExpected += packet.d.guilds.length;
    if (counters.readyShards.size === shardTotal) counters.readyAt = now();
  } else if (t === 'GUILD_CREATE') {
    counters.guildsReceived++;
    if (
      counters.readyShards.size === shardTotal &&
      counters.guildsReceived >= counters.guildsExpected &&
      counters.guildsDoneAt === 0
    )
      counters.guildsDoneAt = now();
  }
}

function stats() {
  const traffic = {};
  for (const [id, run] of runs) {
    traffic[id] = {
      ...nonceFigures(run),
      expected: run.expected,
      expectedAt: run.expectedAt,
      cpuAtFirstUs: run.cpuAtFirst,
      cpuAtExpectedUs: run.cpuAtExpected,
    };
  }
  const memory = process.memoryUsage();
  return {
    pid: process.pid,
    variant,
    readyShards: counters.readyShards.size,
    readyAt: counters.readyAt,
    guildsExpected: counters.guildsExpected,
    guildsReceived: counters.guildsReceived,
    guildsDoneAt: counters.guildsDoneAt,
    dispatches: counters.dispatches,
    nonCountedMessages: counters.nonCountedMessages,
    errors: counters.errors.slice(-20),
    closes: counters.closes.slice(-20),
    cpuUs: cpuMicros(),
    rssMiB: Math.round((memory.rss / 1024 / 1024) * 10) / 10,
    heapUsedMiB: Math.round((memory.heapUsed / 1024 / 1024) * 10) / 10,
    memory: memoryBreakdown(memory),
    traffic,
  };
}

const mib = (bytes) => Math.round((bytes / 1024 / 1024) * 10) / 10;

/** V8's heap spaces (committed), external and ArrayBuffer memory, in MiB: where RSS goes. */
function memoryBreakdown(memory) {
  const spaces = {};
  for (const space of v8.getHeapSpaceStatistics()) spaces[space.space_name] = mib(space.space_size);
  return { ...spaces, external: mib(memory.external), arrayBuffers: mib(memory.arrayBuffers) };
}

// ---- the two clients -----------------------------------------------------------------------------

let stopClient = async () => {};

async function startBare(config) {
  const { WebSocketManager, WebSocketShardEvents, CompressionMethod } = require('@discordjs/ws');
  // In-memory session store: what a bot without a fleet would use (and @discordjs/ws's default).
  const sessions = new Map();
  // A simple local identify throttler: one queue per rate-limit key, one IDENTIFY per key per window.
  const nextIdentifyAt = new Map();
  const manager = new WebSocketManager({
    token: config.token,
    intents: config.intents,
    shardCount: config.shardCount,
    shardIds: config.shardIds,
    // Same as the SDK: /gateway/bot comes from outside, the client makes no REST call.
    rest: { get: async () => config.gateway },
    compression: config.compression === 'zlib-stream' ? CompressionMethod.ZlibSync : null,
    buildIdentifyThrottler: () => ({
      waitForIdentify: async (shardId, signal) => {
        const key = shardId % config.gateway.session_start_limit.max_concurrency;
        const at = Math.max(Date.now(), nextIdentifyAt.get(key) ?? 0);
        nextIdentifyAt.set(key, at + config.identifyWindowMs + 50);
        const wait = at - Date.now();
        if (wait > 0) {
          await new Promise((resolve, reject) => {
            const timer = setTimeout(resolve, wait);
            signal?.addEventListener('abort', () => {
              clearTimeout(timer);
              reject(signal.reason);
            });
          });
        }
      },
    }),
    retrieveSessionInfo: (shardId) => sessions.get(shardId) ?? null,
    updateSessionInfo: (shardId, info) => {
      if (info) sessions.set(shardId, info);
      else sessions.delete(shardId);
    },
  });
  manager.on(WebSocketShardEvents.Dispatch, onDispatch);
  manager.on(WebSocketShardEvents.Error, (error, shardId) =>
    counters.errors.push(`shard ${shardId}: ${error.message}`),
  );
  manager.on(WebSocketShardEvents.Closed, (code, shardId) => counters.closes.push([shardId, code]));
  await manager.connect();
  stopClient = async () => {
    await manager.destroy({ code: 1000, reason: 'bench done' });
  };
}

async function startCluster(config) {
  const { Cluster } = require('discluster-sdk');
  const cluster = new Cluster({
    intents: config.intents,
    standalone: { assignment: config.assignment, nats: { servers: config.natsUrl } },
    identifyWindowMs: config.identifyWindowMs,
    compression: config.compression,
    sessionStartFloor: 10,
    handleSignals: false,
  });
  cluster.on('dispatch', onDispatch);
  cluster.on('error', (error) => counters.errors.push(error.message));
  cluster.on('fatal', (close) => counters.errors.push(`fatal ${JSON.stringify(close)}`));
  cluster.on('fenced', () => counters.errors.push('fenced'));
  cluster.on('shardState', (shardId, state) => {
    if (state === 'disconnected') counters.closes.push([shardId, state]);
  });
  await cluster.start();
  stopClient = async () => {
    await cluster.stop();
  };
}

// ---- control ---------------------------------------------------------------------------------------

let stopping = false;
async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  const hardExit = setTimeout(() => process.exit(code), 5000);
  try {
    await stopClient();
  } catch (error) {
    process.stderr.write(`stop failed: ${error?.message ?? error}\n`);
  }
  clearTimeout(hardExit);
  process.exit(code);
}

process.on('message', (message) => {
  if (message?.cmd === 'start') {
    const config = message.config;
    shardTotal = config.shardIds.length;
    const start = variant === 'bare' ? startBare(config) : startCluster(config);
    start.then(
      () => process.send({ started: true }),
      (error) => {
        process.send({ startError: error?.stack ?? String(error) });
        void stop(1);
      },
    );
  } else if (message?.cmd === 'expect') {
    const run = runOf(message.runId);
    run.expected = message.total;
    if (run.distinct >= run.expected && run.cpuAtExpected === null) {
      run.cpuAtExpected = cpuMicros();
      run.expectedAt = now();
    }
  } else if (message?.cmd === 'stats') {
    process.send({ id: message.id, stats: stats() });
  } else if (message?.cmd === 'stop') {
    void stop(0);
  }
});
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));
process.on('disconnect', () => void stop(0));
process.send({ hello: true, pid: process.pid });
