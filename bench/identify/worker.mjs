// One "cluster process" of bench/identify/repro.mjs: a NATS connection, a NatsIdentifyThrottler
// and an @discordjs/ws WebSocketManager for its shards, wired the way discluster-sdk's
// createShardManager wires them (IDENTIFY goes out right after waitForIdentify resolves). Every
// IDENTIFY written to a socket is timestamped (Date.now() just after ws's send(), which writes to
// the socket synchronously), so the parent can compare when IDENTIFYs left the bot with when the
// simulator stamped them. Forked with an IPC channel: {cmd:'start'}, {cmd:'results'}, {cmd:'stop'}.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { connect } = require('@nats-io/transport-node');
const { WebSocketManager, WebSocketShardEvents } = require('@discordjs/ws');
const { WebSocket } = require('ws');
const { Bucket } = require('@nats-io/kv');

/** Orders IDENTIFY writes and slot re-stamps within this process. */
let order = 0;
/** IDENTIFYs written by this process: { shardId, at, order }. */
const sends = [];
const originalSend = WebSocket.prototype.send;
WebSocket.prototype.send = function send(data, ...rest) {
  const result = originalSend.call(this, data, ...rest);
  if (typeof data === 'string' && data.startsWith('{"op":2,')) {
    const at = Date.now();
    const match = /"shard":\[(\d+),/.exec(data);
    sends.push({ shardId: Number(match?.[1]), at, order: ++order });
  }
  return result;
};
/**
 * Slot re-stamps (a plain put of a slot key; create and update set previousSeq): { shardId, at,
 * order }. A build without re-stamps records none.
 */
const restamps = [];
const originalPut = Bucket.prototype.put;
Bucket.prototype.put = function put(key, data, options) {
  if (typeof key === 'string' && key.startsWith('slot.') && options?.previousSeq === undefined) {
    let shardId = null;
    try {
      shardId = JSON.parse(Buffer.from(data).toString('utf8')).shardId;
    } catch {
      // not a slot record
    }
    restamps.push({ shardId, at: Date.now(), order: ++order });
  }
  return originalPut.call(this, key, data, options);
};

const grants = [];
const givebacks = [];
const otherDebug = [];
const ready = new Set();
let invalidSessions = 0;
let nc = null;
let throttler = null;
let manager = null;

async function start({ sdkPath, natsUrl, bot, gatewayBot, token, shardIds, shardCount, windowMs, marginMs }) {
  const { NatsIdentifyThrottler } = require(path.resolve(sdkPath));
  nc = await connect({ servers: natsUrl, name: `identify-bench-${process.pid}` });
  const maxConcurrency = gatewayBot.session_start_limit.max_concurrency;
  throttler = await NatsIdentifyThrottler.create(nc, {
    bot,
    shardCount,
    maxConcurrency,
    windowMs,
    ...(marginMs ? { safetyMarginMs: marginMs } : {}),
  });
  throttler.on('granted', (shardId) => grants.push({ shardId, at: Date.now() }));
  throttler.on('debug', (message) => {
    if (message.includes('took')) givebacks.push(message);
    else if (!message.startsWith('Waiter')) otherDebug.push(message);
  });
  await throttler.updateBudget(gatewayBot.session_start_limit);
  manager = new WebSocketManager({
    token,
    intents: 1 | (1 << 9),
    shardCount,
    shardIds,
    rest: { get: async () => gatewayBot },
    compression: null,
    buildIdentifyThrottler: () => ({
      waitForIdentify: (shardId, signal) => throttler.waitForIdentify(shardId, signal),
    }),
    retrieveSessionInfo: () => null,
    updateSessionInfo: () => undefined,
  });
  manager.on(WebSocketShardEvents.Ready, (_data, shardId) => {
    ready.add(shardId);
    if (ready.size === shardIds.length) process.send({ event: 'allReady', at: Date.now() });
  });
  manager.on(WebSocketShardEvents.Debug, (message) => {
    if (message.includes('Invalid session')) invalidSessions++;
  });
  await manager.connect();
}

async function stop() {
  try {
    await manager?.destroy();
    await throttler?.close();
    await nc?.close();
  } finally {
    process.exit(0);
  }
}

process.on('message', (message) => {
  const reply = (body) => process.send({ id: message.id, ...body });
  if (message.cmd === 'start')
    start(message).then(
      () => reply({ ok: true }),
      (error) => reply({ ok: false, error: error?.stack ?? String(error) }),
    );
  else if (message.cmd === 'results')
    reply({
      sends,
      restamps,
      grants,
      givebacks,
      otherDebug: otherDebug.slice(0, 20),
      ready: ready.size,
      invalidSessions,
    });
  else if (message.cmd === 'stop') void stop();
});
process.send({ event: 'loaded' });
