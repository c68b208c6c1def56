/**
 * The bot `npm run demo` runs on every stand-in machine: a discord.js bot. CONTROL
 * (discluster-control) starts one process of this file per cluster and hands it its shards, the
 * token and NATS access over pm2's IPC channel: nothing about the fleet is configured here. CONTROL
 * passes no environment either, so settings that differ from Discord's (the demo simulator's short
 * identify window) are in code.
 *
 * What it shows: a discord.js `Client` on the cluster's shards (no login, no sockets of its own)
 * that answers `!ping` with `message.reply` and a `/stats` slash command with the fleet's totals
 * (asked of every cluster at once with `requestAll`), its replies going through `cluster.rest`
 * inside the fleet's shared rate limits. Its output is in the pm2 logs of each machine:
 * `PM2_HOME=.demo/hosts/host-a npx pm2 logs`.
 */
import { Cluster } from 'discluster-sdk';
import { createDiscordJsClient } from 'discluster-sdk/discord.js';
import { GatewayDispatchEvents } from 'discord-api-types/v10';
import { ApplicationCommandType, Events, GatewayIntentBits } from 'discord.js';

/** What a cluster answers to the IPC request `stats`. */
export interface ClusterStats {
  readonly clusterId: number;
  readonly shards: number;
  /** Guilds in this cluster's discord.js cache. */
  readonly guilds: number;
  /** Gateway dispatches of every kind since this process started. */
  readonly events: number;
  /** MESSAGE_CREATE dispatches since this process started. */
  readonly messages: number;
}

/** How often the lowest-numbered cluster logs the whole fleet's totals. */
const FLEET_REPORT_MS = 15_000;

const cluster = new Cluster({
  intents: GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages | GatewayIntentBits.MessageContent,
  // The demo's discord-sim allows one IDENTIFY per rate-limit key per 1000 ms; Discord's window is
  // 5000 ms, the default. Every process of a bot must use the same window.
  identifyWindowMs: 1000,
  // A dozen processes share a laptop's cores with the simulator, which stamps an IDENTIFY when its
  // event loop reads it: on a busy machine it read some 250+ ms late and counted violations the
  // fleet never sent. Half the demo's short window leaves room for that (8 windows of 1.5 s to start).
  identifySafetyMarginMs: 500,
});
// Before start(), so the client sees every shard's READY. Its REST is cluster.rest.
const client = createDiscordJsClient(cluster, { allowedMentions: { repliedUser: false } });

let events = 0;
let messages = 0;
cluster.on('dispatch', (packet) => {
  events++;
  if (packet.t === GatewayDispatchEvents.MessageCreate) messages++;
});

const stats = (): ClusterStats => ({
  clusterId: cluster.id,
  shards: cluster.shardIds.length,
  guilds: client.guilds.cache.size,
  events,
  messages,
});

/** Asks every cluster for its `stats` (request/response over NATS) and adds them up. */
async function fleetTotals(): Promise<{
  answered: number;
  asked: number;
  totals: Omit<ClusterStats, 'clusterId'>;
}> {
  const answers = await cluster.ipc.requestAll('stats', null, { timeoutMs: 2000 });
  const ok = answers.flatMap((answer) => (answer.ok ? [answer.value as ClusterStats] : []));
  const sum = (pick: (one: ClusterStats) => number) => ok.reduce((total, one) => total + pick(one), 0);
  return {
    answered: ok.length,
    asked: answers.length,
    totals: {
      shards: sum((one) => one.shards),
      guilds: sum((one) => one.guilds),
      events: sum((one) => one.events),
      messages: sum((one) => one.messages),
    },
  };
}

// Registered before start(), so no request reaches this cluster before its handler.
cluster.ipc.handle('stats', stats);

client.once(Events.ClientReady, async (ready) => {
  console.log(
    `cluster ${cluster.id}: shards ${cluster.shardIds.join(', ')} ready (${ready.guilds.cache.size} guilds)`,
  );
  // Global commands belong to the application, not a cluster: cluster 0 registers them.
  if (cluster.id !== 0) return;
  try {
    await ready.application.commands.set([
      {
        name: 'stats',
        description: "The fleet's shards, guilds and events",
        type: ApplicationCommandType.ChatInput,
      },
    ]);
    console.log('cluster 0: registered /stats');
  } catch (error) {
    console.error(`cluster 0: could not register /stats: ${String(error)}`);
  }
});

client.on(Events.MessageCreate, async (message) => {
  if (message.author.bot || message.content !== '!ping') return;
  // The message's nonce makes a retried POST land once (enforce_nonce).
  await message.reply({
    content: `pong from cluster ${cluster.id}`,
    nonce: `ping-${message.id}`,
    enforceNonce: true,
  });
});

client.on(Events.InteractionCreate, async (interaction) => {
  if (!interaction.isChatInputCommand() || interaction.commandName !== 'stats') return;
  const { answered, asked, totals } = await fleetTotals();
  await interaction.reply(
    `${totals.shards} shards, ${totals.guilds} guilds, ${totals.events} events ` +
      `(${answered} of ${asked} clusters answered)`,
  );
});

client.on(Events.Error, (error) => console.error(`cluster ${cluster.id}: discord.js: ${error.message}`));
cluster.on('fatal', ({ shardId, code, reason }) =>
  console.error(`cluster ${cluster.id}: shard ${shardId} stopped for good (${code}): ${reason}`),
);
cluster.on('fenced', () => console.log(`cluster ${cluster.id}: fenced (no NATS or no CONTROL)`));
cluster.on('unfenced', () => console.log(`cluster ${cluster.id}: confirmed, resuming`));
// Also a discord.js listener that threw: the process keeps serving.
cluster.on('error', (error) => console.error(`cluster ${cluster.id}: ${error.message}`));

async function reportFleet(): Promise<void> {
  const { answered, asked, totals } = await fleetTotals();
  console.log(
    `fleet: ${answered}/${asked} clusters answered, ${totals.shards} shards, ${totals.guilds} guilds, ` +
      `${totals.messages} messages, ${totals.events} events`,
  );
}

// Never client.login(): the client is logged in once the cluster has its shards.
cluster.start().then(
  () => {
    console.log(`cluster ${cluster.id}: started with shards ${cluster.shardIds.join(', ')}`);
    // Cluster ids are numbered fleet-wide from 0: cluster 0 reports for everyone.
    if (cluster.id === 0)
      setInterval(() => {
        reportFleet().catch((error: unknown) => console.error(`fleet report failed: ${String(error)}`));
      }, FLEET_REPORT_MS).unref();
  },
  (error: unknown) => {
    console.error(`cluster could not start: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
