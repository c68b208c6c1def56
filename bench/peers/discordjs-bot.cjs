'use strict';
// The one discord.js bot of the `discordjs` section (bench/peers/discordjs.mjs), run unchanged on
// both systems: a discord.js 14 `Client` with Guilds | GuildMessages and discord.js's default
// caches, counting `messageCreate`. Only where the Client comes from differs, as in
// docs/move-your-discordjs-bot.md:
//   - on Discluster (CONTROL runs it under pm2; bench/lib/fleet.mjs's entry file sets
//     `globalThis.__disclusterBench`): `createDiscordJsClient(cluster)` from
//     'discluster-sdk/discord.js' on a `Cluster` with guild snapshots on (`guildSnapshots: true`),
//     so a restarted cluster that RESUMEs gets its guilds back;
//   - on discord-hybrid-sharding (BENCH_PEER=hybrid, a child of its ClusterManager,
//     bench/peers/peer-manager.cjs): `new Client({ shards: getInfo().SHARD_LIST, shardCount })`, a
//     `ClusterClient`, `triggerReady()` on clientReady and `client.login()`, as its README says.
// The bench observes it through bench/lib/probe-client.cjs: stats (shard ids,
// `client.guilds.cache.size`, clientReady time, MESSAGE_CREATE nonces seen in `messageCreate`).
const path = require('node:path');
const { Client, Events, GatewayIntentBits } = require('discord.js');
const { connectProbe, nonceCounter } = require(path.join(__dirname, '..', 'lib', 'probe-client.cjs'));

const INTENTS = GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages;
const onDiscluster = process.env.BENCH_PEER !== 'hybrid';

let client;
let cluster = null;
let hybrid = null;
let probe = null;
if (onDiscluster) {
  const settings = globalThis.__disclusterBench ?? {};
  const { Cluster } = require('discluster-sdk');
  const { createDiscordJsClient } = require('discluster-sdk/discord.js');
  cluster = new Cluster({
    intents: INTENTS,
    identifyWindowMs: settings.identifyWindowMs ?? 5000,
    guildSnapshots: true,
  });
  cluster.on('error', (error) => process.stdout.write(`cluster error: ${error.message}\n`));
  client = createDiscordJsClient(cluster);
} else {
  hybrid = require('discord-hybrid-sharding');
  client = new Client({
    intents: INTENTS,
    rest: { api: process.env.BENCH_SIM_API },
    shards: hybrid.getInfo().SHARD_LIST,
    shardCount: hybrid.getInfo().TOTAL_SHARDS,
  });
  client.cluster = new hybrid.ClusterClient(client);
}

// ---- the bot: the same on both systems ----
const nonces = nonceCounter();
let readyAt = 0;
client.on(Events.MessageCreate, (message) => nonces.count(message.nonce));
client.once(Events.ClientReady, () => {
  readyAt = Date.now();
  client.cluster?.triggerReady();
  probe?.event({ t: 'ready', at: readyAt, guilds: client.guilds.cache.size });
});
// ---- end of the bot ----

function connect(shardIds, clusterId) {
  probe = connectProbe(
    onDiscluster ? globalThis.__disclusterBench?.probe : process.env.BENCH_PROBE,
    { role: onDiscluster ? 'discluster' : 'hybrid', shardIds, clusterId },
    {
      stats: () => ({
        shardIds,
        readyAt,
        guilds: client.guilds.cache.size,
        traffic: nonces.snapshot(),
      }),
    },
  );
}

if (onDiscluster) {
  // Never client.login(): the client logs in once the cluster has its shards.
  cluster.start().then(
    () => connect(cluster.shardIds, cluster.id),
    (error) => {
      process.stdout.write(`startError: ${error.message}\n`);
      process.exit(1);
    },
  );
} else {
  connect(hybrid.getInfo().SHARD_LIST, client.cluster.id);
  client.login(process.env.DISCORD_TOKEN);
}
