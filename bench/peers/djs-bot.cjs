'use strict';
// The bot the peers run: a discord.js 14 `Client` as their READMEs set it up, pointed at
// discord-sim. Under discord.js's ShardingManager (BENCH_PEER=sharding-manager) the Client reads
// its shard from the environment the manager sets; under discord-hybrid-sharding
// (BENCH_PEER=hybrid) it takes `getInfo().SHARD_LIST` / `TOTAL_SHARDS` and a `ClusterClient`, and
// calls `triggerReady()` on clientReady, as that README says. Everything else is discord.js's
// defaults (its cache, its identify throttler: 5 s per key plus jitter).
//
// The bench observes it through bench/lib/probe-client.cjs (BENCH_PROBE): hello, ready, stats
// (RSS, guilds cached, MESSAGE_CREATE nonces seen in `messageCreate`), and for the IPC benchmark
// timed `broadcastEval` loops.
const path = require('node:path');
const { Client, Events, GatewayIntentBits } = require('discord.js');
const { connectProbe, nonceCounter } = require(path.join(__dirname, '..', 'lib', 'probe-client.cjs'));

const peer = process.env.BENCH_PEER;
const api = process.env.BENCH_SIM_API;
const intents = Number(
  process.env.BENCH_INTENTS ?? GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages,
);

let hybrid = null;
const options = { intents, rest: { api } };
if (peer === 'hybrid') {
  hybrid = require('discord-hybrid-sharding');
  options.shards = hybrid.getInfo().SHARD_LIST;
  options.shardCount = hybrid.getInfo().TOTAL_SHARDS;
}
const client = new Client(options);
if (hybrid) client.cluster = new hybrid.ClusterClient(client);

const nonces = nonceCounter();
const readyShards = new Set();
let readyAt = 0;
// BENCH_NONCE_LOG_DIR: every nonce also appended to <dir>/<pid>.log as it arrives, so a SIGKILLed
// process's deliveries still count (as pm2's log files do for Discluster's bots).
const nonceLog = process.env.BENCH_NONCE_LOG_DIR
  ? require('node:fs').openSync(path.join(process.env.BENCH_NONCE_LOG_DIR, `${process.pid}.log`), 'a')
  : null;
client.on(Events.MessageCreate, (message) => {
  nonces.count(message.nonce);
  if (nonceLog !== null && typeof message.nonce === 'string')
    require('node:fs').writeSync(nonceLog, `${message.nonce}\n`);
});
client.on(Events.ShardReady, (shardId) => readyShards.add(shardId));

function payloadOf(bytes) {
  const base = { guildId: '1234567890123456789', op: 'echo', s: '' };
  return { ...base, s: 'x'.repeat(Math.max(0, bytes - JSON.stringify(base).length)) };
}

/** Sequential timed `broadcastEval`s from this cluster: to one cluster, or to all. */
async function ipcBench({ target, n, warmup, payloadBytes, timeoutMs }) {
  const context = payloadOf(payloadBytes);
  const evalOptions = { context, timeout: timeoutMs };
  if (target !== 'all') evalOptions.cluster = target;
  const latencies = new Float64Array(n);
  let failed = 0;
  let bad = 0;
  const expected = target === 'all' ? client.cluster.count : 1;
  const cpuBefore = process.cpuUsage();
  for (let i = -warmup; i < n; i++) {
    const started = process.hrtime.bigint();
    try {
      const result = await client.cluster.broadcastEval((c, ctx) => ctx, evalOptions);
      const list = Array.isArray(result) ? result : [result];
      if (list.length !== expected || list.some((value) => value?.s?.length !== context.s.length)) bad++;
    } catch {
      failed++;
    }
    if (i >= 0) latencies[i] = Number(process.hrtime.bigint() - started) / 1000;
  }
  const cpu = process.cpuUsage(cpuBefore);
  return {
    latenciesUs: Array.from(latencies),
    failed,
    bad,
    cpuUs: cpu.user + cpu.system,
    clusters: expected,
  };
}

const probe = connectProbe(
  process.env.BENCH_PROBE,
  {
    role: peer,
    shardIds: client.options.shards === 'auto' ? null : client.options.shards,
    clusterId: hybrid ? client.cluster.id : null,
  },
  {
    stats: () => ({
      readyShards: readyShards.size,
      readyAt,
      guilds: client.guilds.cache.size,
      traffic: nonces.snapshot(),
    }),
    ipcBench,
  },
);

client.once(Events.ClientReady, () => {
  readyAt = Date.now();
  if (hybrid) client.cluster.triggerReady();
  probe.event({ t: 'ready', at: readyAt, shards: [...readyShards], guilds: client.guilds.cache.size });
});

client.login(process.env.DISCORD_TOKEN);
