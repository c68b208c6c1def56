#!/usr/bin/env node
// A cheap, correct gateway load client for discord-sim benchmarks and scale tests: raw `ws`,
// HELLO → IDENTIFY → READY / GUILD_CREATE, heartbeats with the last sequence, optional
// zlib-stream (zlib-sync Inflate, one context per connection, as Discord requires).
//
// It opens the shards `--first`..`--last` of `--shard-count` and counts what arrives:
// per shard READY and GUILD_CREATE (checked against READY's guild list and the routing
// formula), sequence gaps, and MESSAGE_CREATE per traffic run (by nonce `<run>:<n>`, with
// duplicates and latency from the message timestamp).
//
// Control: with an IPC channel (child_process.fork) it waits for {cmd:'start'} and answers
// {cmd:'stats', id} with {id, stats}; {cmd:'close'} closes every socket and exits.
// Without one (spawned with pipes) it starts at once and prints JSON lines on stdout:
// {"type":"ready"} when every shard is READY, {"type":"guilds"} (with per-shard counts) when
// every GUILD_CREATE arrived, {"type":"stats"} every --report-ms while counters change.
// SIGTERM/SIGINT close the sockets and exit.
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { histogramPercentile as percentile } from '../lib/figures.mjs';
import nonces from '../lib/nonces.cjs';

const { countNonce, nonceFigures, nonceRun, parseNonce } = nonces;

const { values: args } = parseArgs({
  options: {
    gateway: { type: 'string' },
    token: { type: 'string', default: 'discord-sim-token' },
    'shard-count': { type: 'string' },
    first: { type: 'string', default: '0' },
    last: { type: 'string' },
    compress: { type: 'string', default: 'none' },
    // GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT
    intents: { type: 'string', default: String(1 | (1 << 9) | (1 << 15)) },
    'connect-concurrency': { type: 'string', default: '128' },
    'report-ms': { type: 'string', default: '0' },
    // JSON.parse every dispatch instead of reading MESSAGE_CREATE's few fields by position.
    'full-parse': { type: 'boolean', default: false },
  },
});

if (!args.gateway || !args['shard-count']) {
  process.stderr.write(
    'usage: load-client.mjs --gateway ws://… --shard-count N [--first a --last b] [--compress zlib-stream]\n',
  );
  process.exit(2);
}
const shardCount = Number(args['shard-count']);
const first = Number(args.first);
const last = args.last === undefined ? shardCount - 1 : Number(args.last);
const compress = args.compress === 'zlib-stream' ? 'zlib-stream' : null;
const intents = Number(args.intents);
const connectConcurrency = Math.max(1, Number(args['connect-concurrency']));
const reportMs = Number(args['report-ms']);
const fullParse = args['full-parse'];
const ipc = typeof process.send === 'function';

let ZlibSync = null;
if (compress) ZlibSync = (await import('zlib-sync')).default;

const url = `${args.gateway.replace(/\/+$/, '')}/?v=10&encoding=json${compress ? `&compress=${compress}` : ''}`;

// ---- counters ---------------------------------------------------------------------------------

const MAX_LATENCY_MS = 120_000;
const counters = {
  startedAt: 0,
  opened: 0,
  hello: 0,
  ready: 0,
  readyShards: 0,
  guildsDoneShards: 0,
  firstOpenAt: 0,
  allOpenAt: 0,
  allReadyAt: 0,
  allGuildsAt: 0,
  identifies: 0,
  invalidSessions: 0,
  reconnectRequests: 0,
  heartbeatsSent: 0,
  heartbeatAcks: 0,
  seqGaps: 0,
  messages: 0,
  bytes: 0,
  closes: {},
  errors: 0,
  lastError: '',
  decodeErrors: 0,
};
const guilds = {
  expected: 0,
  received: 0,
  duplicates: 0,
  unexpected: 0,
  misrouted: 0,
  // Sum of every received guild id modulo 2^64, so a caller can compare the set with the simulator's.
  checksum: 0n,
};
/** runId → { count, distinct, duplicates, firstAt, lastAt, seen: Uint8Array, latency: Uint32Array } */
const runs = new Map();
const otherDispatches = {};

function runOf(id) {
  let run = runs.get(id);
  if (!run) {
    run = nonceRun({ latency: new Uint32Array(MAX_LATENCY_MS + 1), maxLatency: 0 });
    runs.set(id, run);
  }
  return run;
}

function countMessage(runId, n, timestampMs, now) {
  const run = runOf(runId);
  countNonce(run, n, now);
  if (Number.isFinite(timestampMs)) {
    const ms = Math.min(MAX_LATENCY_MS, Math.max(0, now - timestampMs));
    run.latency[ms]++;
    if (ms > run.maxLatency) run.maxLatency = ms;
  }
}

/** Non-empty latency buckets as [ms, count] pairs. */
function sparseHistogram(run) {
  const pairs = [];
  for (let ms = 0; ms <= run.maxLatency; ms++) if (run.latency[ms] > 0) pairs.push([ms, run.latency[ms]]);
  return pairs;
}

// ---- shards -----------------------------------------------------------------------------------

const shards = [];
for (let id = first; id <= last; id++) {
  shards.push({
    id,
    socket: null,
    inflate: null,
    seq: null,
    heartbeat: null,
    ready: 0,
    sessionId: null,
    expected: null,
    seen: null,
    guildsExpected: 0,
    guildsReceived: 0,
    done: false,
  });
}
const shardCountBig = BigInt(shardCount);
const MASK64 = (1n << 64n) - 1n;
let stopping = false;

function connect(shard, onSettled) {
  const socket = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true, maxPayload: 0 });
  shard.socket = socket;
  if (compress) shard.inflate = new ZlibSync.Inflate({ chunkSize: 65535 });
  let settled = false;
  const settle = () => {
    if (settled) return;
    settled = true;
    onSettled();
  };
  socket.on('open', () => {
    counters.opened++;
    const now = Date.now();
    if (counters.firstOpenAt === 0) counters.firstOpenAt = now;
    if (counters.opened === shards.length) counters.allOpenAt = now;
  });
  socket.on('message', (data, isBinary) => {
    counters.bytes += data.length;
    let text;
    if (compress) {
      const inflate = shard.inflate;
      const l = data.length;
      const flush =
        l >= 4 &&
        data[l - 4] === 0x00 &&
        data[l - 3] === 0x00 &&
        data[l - 2] === 0xff &&
        data[l - 1] === 0xff;
      inflate.push(data, flush ? ZlibSync.Z_SYNC_FLUSH : ZlibSync.Z_NO_FLUSH);
      if (!flush) return;
      if (inflate.err < 0) {
        counters.decodeErrors++;
        counters.lastError = `inflate error ${inflate.err} ${inflate.msg ?? ''}`;
        return;
      }
      text = inflate.result.toString('utf8');
    } else {
      if (isBinary) {
        counters.decodeErrors++;
        return;
      }
      text = data.toString('utf8');
    }
    onPayload(shard, text, settle);
  });
  socket.on('close', (code) => {
    const key = String(code);
    counters.closes[key] = (counters.closes[key] ?? 0) + 1;
    if (shard.heartbeat) clearTimeout(shard.heartbeat);
    shard.heartbeat = null;
    shard.socket = null;
    settle();
  });
  socket.on('error', (error) => {
    counters.errors++;
    counters.lastError = error.message;
  });
}

const MESSAGE_CREATE_PREFIX = '{"t":"MESSAGE_CREATE","s":';

function onPayload(shard, text, settle) {
  counters.messages++;
  const now = Date.now();
  if (!fullParse && text.startsWith(MESSAGE_CREATE_PREFIX)) {
    // discord-sim writes `{"t":…,"s":N,"op":0,"d":{…}}`: read s and the nonce without building objects.
    const sEnd = text.indexOf(',', MESSAGE_CREATE_PREFIX.length);
    const seq = Number(text.slice(MESSAGE_CREATE_PREFIX.length, sEnd));
    const nonceAt = text.lastIndexOf('"nonce":"');
    const tsAt = text.lastIndexOf('"timestamp":"');
    if (Number.isInteger(seq) && nonceAt > 0) {
      checkSeq(shard, seq);
      const nonceEnd = text.indexOf('"', nonceAt + 9);
      const nonce = text.slice(nonceAt + 9, nonceEnd);
      const parsed = parseNonce(nonce);
      const timestamp = tsAt > 0 ? Date.parse(text.slice(tsAt + 13, text.indexOf('"', tsAt + 13))) : NaN;
      if (parsed) countMessage(Number(parsed.runId), parsed.n, timestamp, now);
      return;
    }
  }
  let payload;
  try {
    payload = JSON.parse(text);
  } catch {
    counters.decodeErrors++;
    return;
  }
  const { op, t, s, d } = payload;
  if (typeof s === 'number') checkSeq(shard, s);
  switch (op) {
    case 10: {
      counters.hello++;
      startHeartbeat(shard, d.heartbeat_interval);
      identify(shard);
      return;
    }
    case 11:
      counters.heartbeatAcks++;
      return;
    case 1:
      sendHeartbeat(shard);
      return;
    case 7:
      counters.reconnectRequests++;
      return;
    case 9:
      counters.invalidSessions++;
      // Discord: wait 1–5 s, then identify again on the same socket.
      setTimeout(() => identify(shard), 1000 + Math.random() * 4000).unref();
      return;
    case 0:
      onDispatch(shard, t, d, now, settle);
      return;
    default:
  }
}

function checkSeq(shard, seq) {
  if (shard.seq !== null && seq !== shard.seq + 1) counters.seqGaps++;
  shard.seq = seq;
}

function onDispatch(shard, t, d, now, settle) {
  switch (t) {
    case 'READY': {
      counters.ready++;
      shard.ready++;
      shard.sessionId = d.session_id;
      shard.expected = new Set(d.guilds.map((guild) => guild.id));
      shard.seen = new Set();
      shard.guildsExpected = shard.expected.size;
      guilds.expected += shard.expected.size;
      if (shard.ready === 1) {
        counters.readyShards++;
        if (counters.readyShards === shards.length) {
          counters.allReadyAt = now;
          emitLine({ type: 'ready', ...summary() });
        }
      }
      settle();
      if (shard.guildsExpected === 0) finishGuilds(shard, now);
      return;
    }
    case 'GUILD_CREATE': {
      const id = d.id;
      if (shard.expected?.delete(id)) {
        shard.seen.add(id);
        shard.guildsReceived++;
        guilds.received++;
        guilds.checksum = (guilds.checksum + BigInt(id)) & MASK64;
        if ((BigInt(id) >> 22n) % shardCountBig !== BigInt(shard.id)) guilds.misrouted++;
        if (shard.expected.size === 0) finishGuilds(shard, now);
      } else if (shard.seen?.has(id)) guilds.duplicates++;
      else guilds.unexpected++;
      return;
    }
    case 'MESSAGE_CREATE': {
      const parsed = parseNonce(d?.nonce);
      if (parsed) countMessage(Number(parsed.runId), parsed.n, Date.parse(d.timestamp), now);
      else otherDispatches[t] = (otherDispatches[t] ?? 0) + 1;
      return;
    }
    default:
      otherDispatches[t] = (otherDispatches[t] ?? 0) + 1;
  }
}

function finishGuilds(shard, now) {
  if (shard.done) return;
  shard.done = true;
  counters.guildsDoneShards++;
  if (counters.guildsDoneShards === shards.length) {
    counters.allGuildsAt = now;
    emitLine({ type: 'guilds', ...summary(), perShard: perShard() });
  }
}

function send(shard, payload) {
  const socket = shard.socket;
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(payload));
}

function identify(shard) {
  counters.identifies++;
  send(shard, {
    op: 2,
    d: {
      token: args.token,
      intents,
      shard: [shard.id, shardCount],
      properties: {
        os: process.platform,
        browser: 'discord-sim-load-client',
        device: 'discord-sim-load-client',
      },
    },
  });
}

function sendHeartbeat(shard) {
  counters.heartbeatsSent++;
  send(shard, { op: 1, d: shard.seq });
}

function startHeartbeat(shard, intervalMs) {
  if (shard.heartbeat) clearTimeout(shard.heartbeat);
  const beat = () => {
    sendHeartbeat(shard);
    shard.heartbeat = setTimeout(beat, intervalMs);
  };
  // Discord: the first heartbeat after interval * jitter.
  shard.heartbeat = setTimeout(beat, Math.random() * intervalMs);
}

/** Opens every shard, at most `connectConcurrency` handshakes (up to READY) in flight at once. */
function start() {
  if (counters.startedAt !== 0) return;
  counters.startedAt = Date.now();
  let next = 0;
  const launch = () => {
    if (stopping || next >= shards.length) return;
    connect(shards[next++], launch);
  };
  for (let i = 0; i < Math.min(connectConcurrency, shards.length); i++) launch();
}

// ---- reporting --------------------------------------------------------------------------------

function summary() {
  const traffic = {};
  for (const [id, run] of runs) {
    const histogram = sparseHistogram(run);
    traffic[id] = {
      ...nonceFigures(run),
      latencyMs: { p50: percentile(histogram, 0.5), p99: percentile(histogram, 0.99), max: run.maxLatency },
      latencyHistogram: histogram,
    };
  }
  return {
    pid: process.pid,
    shards: shards.length,
    first,
    last,
    compress: compress ?? 'none',
    ...counters,
    openSockets: shards.filter((shard) => shard.socket?.readyState === WebSocket.OPEN).length,
    guilds: { ...guilds, checksum: guilds.checksum.toString() },
    traffic,
    otherDispatches,
  };
}

function perShard() {
  return shards.map((shard) => ({
    id: shard.id,
    ready: shard.ready,
    expected: shard.guildsExpected,
    received: shard.guildsReceived,
  }));
}

function emitLine(object) {
  if (!ipc) process.stdout.write(`${JSON.stringify(object)}\n`);
}

function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  for (const shard of shards) {
    if (shard.heartbeat) clearTimeout(shard.heartbeat);
    shard.socket?.close(1000);
  }
  // Give close frames a moment, then leave regardless.
  setTimeout(() => process.exit(code), 500).unref();
  setTimeout(() => process.exit(code), 2000);
}

process.on('SIGTERM', () => stop(0));
process.on('SIGINT', () => stop(0));

if (ipc) {
  process.on('message', (message) => {
    if (message?.cmd === 'start') start();
    else if (message?.cmd === 'stats') {
      process.send({
        id: message.id,
        stats: { ...summary(), ...(message.perShard ? { perShard: perShard() } : {}) },
      });
    } else if (message?.cmd === 'close') stop(0);
  });
  // The parent went away: nothing is left to report to.
  process.on('disconnect', () => stop(0));
  process.send({ ready: true, pid: process.pid });
} else {
  start();
  if (reportMs > 0) {
    let lastKey = '';
    setInterval(() => {
      const line = summary();
      const key = `${line.messages}/${line.opened}/${Object.keys(line.closes).length}`;
      if (key === lastKey) return;
      lastKey = key;
      emitLine({ type: 'stats', ...line });
    }, reportMs);
  }
}
