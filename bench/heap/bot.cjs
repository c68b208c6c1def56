'use strict';
// One process of bench/heap/run.mjs: a Client on 4 shards, in one of three forms, reporting its
// memory once every guild is cached and it has been idle for IDLE_MS, then writing a heap snapshot
// to SNAP (if set); with COUNT_EVENTS=1 it counts MESSAGE_CREATEs instead (bench/heap/events.mjs):
//   MODE=plain       a plain discord.js Client (what a discord-hybrid-sharding cluster runs);
//   MODE=discluster  the same Client from createDiscordJsClient() on a standalone Cluster with
//                    guild snapshots (SNAPSHOTS=0: without);
//   MODE=bare        the standalone Cluster alone (raw dispatches, no discord.js).
const fs = require('node:fs');
const v8 = require('node:v8');
const { Client, GatewayIntentBits } = require('discord.js');

const INTENTS = GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages;
const SHARD_IDS = [0, 1, 2, 3];
const mode = process.env.MODE;
const expected = Number(process.env.GUILDS);

let cachedGuilds = () => 0;
/** MESSAGE_CREATEs bot code received (bench/heap/events.mjs). */
let events = 0;
// A clean exit on SIGTERM, so that --cpu-prof writes its profile.
process.on('SIGTERM', () => process.exit(0));
if (mode === 'plain') {
  const client = new Client({
    intents: INTENTS,
    rest: { api: process.env.SIM_API },
    shards: SHARD_IDS,
    shardCount: 4,
  });
  void client.login(process.env.TOKEN);
  cachedGuilds = () => client.guilds.cache.size;
  client.on('messageCreate', () => events++);
} else {
  const { Cluster } = require('discluster-sdk');
  const cluster = new Cluster({
    intents: INTENTS,
    identifyWindowMs: 200,
    guildSnapshots: process.env.SNAPSHOTS !== '0',
    standalone: {
      assignment: {
        bot: 'heap',
        clusterId: 0,
        shardIds: SHARD_IDS,
        shardCount: 4,
        clusterIds: [0],
        token: process.env.TOKEN,
        gateway: { ...JSON.parse(process.env.GATEWAY_JSON), api: process.env.SIM_REST },
      },
      nats: { servers: process.env.NATS_URL },
    },
  });
  cluster.on('error', (error) => console.log(`cluster error: ${error.message}`));
  if (mode === 'discluster') {
    const client = require('discluster-sdk/discord.js').createDiscordJsClient(cluster);
    cachedGuilds = () => client.guilds.cache.size;
    client.on('messageCreate', () => events++);
  } else {
    let guilds = 0;
    cluster.on('dispatch', (packet) => {
      if (packet.t === 'GUILD_CREATE') guilds++;
      else if (packet.t === 'MESSAGE_CREATE') events++;
    });
    cachedGuilds = () => guilds;
  }
  void cluster.start();
}

/** Resident memory by mapping (anonymous, the malloc heap, the node binary, libraries), MiB. */
function rssByMapping() {
  const by = new Map();
  let name = '';
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      name = head[1] ? head[1].split('/').pop() : '[anon]';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) by.set(name, (by.get(name) ?? 0) + Number(rss[1]) / 1024);
  }
  return Object.fromEntries(
    [...by]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 6)
      .map(([k, v]) => [k, +v.toFixed(1)]),
  );
}

const mib = (bytes) => +(bytes / 1048576).toFixed(1);
const timer = setInterval(async () => {
  if (cachedGuilds() < expected) return;
  clearInterval(timer);
  if (process.env.COUNT_EVENTS === '1') {
    // events.mjs: ready once the caches are full, then the count twice a second.
    console.log(JSON.stringify({ ready: true }));
    setInterval(() => console.log(JSON.stringify({ events })), 500);
    return;
  }
  await new Promise((resolve) => setTimeout(resolve, Number(process.env.IDLE_MS ?? 5000)));
  const memory = process.memoryUsage();
  console.log(
    JSON.stringify({
      mode,
      rssMiB: mib(memory.rss),
      heapUsedMiB: mib(memory.heapUsed),
      heapTotalMiB: mib(memory.heapTotal),
      spaces: Object.fromEntries(
        v8
          .getHeapSpaceStatistics()
          .filter((space) => space.space_size > 0)
          .map((space) => [space.space_name, mib(space.physical_space_size)]),
      ),
      rssByMapping: rssByMapping(),
    }),
  );
  if (process.env.SNAP) v8.writeHeapSnapshot(process.env.SNAP);
  console.log('done');
}, 200);
