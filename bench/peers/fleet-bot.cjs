'use strict';
// The bot the Discluster fleet runs under CONTROL: `new Cluster({ intents, … })` as a user writes
// it. CONTROL passes no environment (only the cluster id), so bench/lib/fleet.mjs writes a small
// wrapper per fleet that sets `globalThis.__disclusterBench` (identify window, probe address,
// intents) and requires this file; the settings are therefore fixed in the bot file, as a user's
// would be.
//
// Like test/fixtures/fleetBot.js, every MESSAGE_CREATE nonce, READY and RESUMED is a JSON line on
// stdout (pm2 keeps them in $PM2_HOME/logs, so they survive a SIGKILLed machine and are counted
// from there). The probe (bench/lib/probe-client.cjs) serves stats (RSS, shards, guilds) and the
// timed IPC loops of the IPC benchmark.
const path = require('node:path');
const { Cluster } = require('discluster-sdk');
const { connectProbe, nonceCounter } = require(path.join(__dirname, '..', 'lib', 'probe-client.cjs'));

const settings = globalThis.__disclusterBench ?? {};
const out = (line) => process.stdout.write(`${JSON.stringify({ ...line, pid: process.pid })}\n`);

const cluster = new Cluster({
  intents: settings.intents ?? 1 | (1 << 9),
  identifyWindowMs: settings.identifyWindowMs ?? 5000,
  ...(settings.identifySafetyMarginMs ? { identifySafetyMarginMs: settings.identifySafetyMarginMs } : {}),
});

const nonces = nonceCounter();
const shardStates = new Map();
let guilds = 0;
let readyAt = 0;
const logNonces = settings.logNonces !== false;

cluster.on('dispatch', (packet, shardId) => {
  if (packet.t === 'MESSAGE_CREATE' && typeof packet.d.nonce === 'string') {
    nonces.count(packet.d.nonce);
    if (logNonces) out({ t: 'msg', nonce: packet.d.nonce, shardId });
  } else if (packet.t === 'GUILD_CREATE') guilds++;
  else if (packet.t === 'READY' || packet.t === 'RESUMED') out({ t: packet.t, shardId, at: Date.now() });
});
cluster.on('shardState', (shardId, state) => shardStates.set(shardId, state));
cluster.on('fatal', (close) => out({ t: 'fatal', code: close.code }));
cluster.on('error', (error) => out({ t: 'error', message: error.message }));
// Counted by the soak: a fence is what a lost lease costs (a NATS node failover must cause none).
cluster.on('fenced', () => out({ t: 'fenced' }));

function payloadOf(bytes) {
  const base = { guildId: '1234567890123456789', op: 'echo', s: '' };
  return { ...base, s: 'x'.repeat(Math.max(0, bytes - JSON.stringify(base).length)) };
}

cluster.ipc.handle('echo', (data) => data);

/** Sequential timed requests from this cluster: `ipc.request` to one cluster, or `ipc.requestAll`. */
async function ipcBench({ target, n, warmup, payloadBytes, timeoutMs }) {
  const data = payloadOf(payloadBytes);
  const latencies = new Float64Array(n);
  let failed = 0;
  let bad = 0;
  let clusters = 1;
  const cpuBefore = process.cpuUsage();
  for (let i = -warmup; i < n; i++) {
    const started = process.hrtime.bigint();
    try {
      if (target === 'all') {
        const results = await cluster.ipc.requestAll('echo', data, { timeoutMs });
        clusters = results.length;
        for (const result of results) {
          if (!result.ok) failed++;
          else if (result.value?.s?.length !== data.s.length) bad++;
        }
      } else {
        const value = await cluster.ipc.request(target, 'echo', data, { timeoutMs });
        if (value?.s?.length !== data.s.length) bad++;
      }
    } catch {
      failed++;
    }
    if (i >= 0) latencies[i] = Number(process.hrtime.bigint() - started) / 1000;
  }
  const cpu = process.cpuUsage(cpuBefore);
  return { latenciesUs: Array.from(latencies), failed, bad, cpuUs: cpu.user + cpu.system, clusters };
}

let probe = null;
cluster.start().then(
  () => {
    out({ t: 'started', clusterId: cluster.id, shardIds: cluster.shardIds });
    probe = connectProbe(
      settings.probe,
      { role: 'discluster', clusterId: cluster.id, shardIds: cluster.shardIds },
      {
        stats: () => ({
          clusterId: cluster.id,
          shards: cluster.shardIds.length,
          readyShards: [...shardStates.values()].filter((state) => state === 'ready').length,
          readyAt,
          guilds,
          traffic: nonces.snapshot(),
        }),
        ipcBench,
      },
    );
  },
  (error) => {
    out({ t: 'startError', message: error.message });
    process.exit(1);
  },
);
cluster.on('ready', () => {
  readyAt = Date.now();
  probe?.event({ t: 'ready', at: readyAt });
});
