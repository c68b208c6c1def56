/**
 * The bot `npm run demo` runs on every stand-in machine. CONTROL (discluster-control) starts one
 * process of this file per cluster and hands it its shards, the token and NATS access over pm2's
 * IPC channel: nothing about the fleet is configured here. CONTROL passes no environment either,
 * so settings that differ from Discord's (the demo simulator's short identify window) are in code.
 *
 * What it shows: counting gateway events, answering an IPC request (`stats`), and asking every
 * cluster of the bot at once (`requestAll`). Its output is in the pm2 logs of each machine:
 * `PM2_HOME=.demo/hosts/host-a npx pm2 logs`.
 */
import { Cluster } from 'discluster-sdk';
import { GatewayDispatchEvents, GatewayIntentBits } from 'discord-api-types/v10';

/** What a cluster answers to the IPC request `stats`. */
export interface ClusterStats {
  readonly clusterId: number;
  readonly shards: number;
  readonly guilds: number;
  /** Gateway dispatches of every kind since this process started. */
  readonly events: number;
  /** MESSAGE_CREATE dispatches since this process started. */
  readonly messages: number;
}

/** How often the lowest-numbered cluster logs the whole fleet's totals. */
const FLEET_REPORT_MS = 15_000;

const cluster = new Cluster({
  intents: GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages,
  // The demo's discord-sim allows one IDENTIFY per rate-limit key per 1000 ms; Discord's window is
  // 5000 ms, the default. Every process of a bot must use the same window.
  identifyWindowMs: 1000,
  // A dozen processes share a laptop's cores with the simulator, which stamps an IDENTIFY when its
  // event loop reads it: on a busy machine it read some 250+ ms late and counted violations the
  // fleet never sent. Half the demo's short window leaves room for that (8 windows of 1.5 s to start).
  identifySafetyMarginMs: 500,
});

let events = 0;
let messages = 0;
cluster.on('dispatch', (packet) => {
  events++;
  if (packet.t === GatewayDispatchEvents.MessageCreate) messages++;
});

const stats = (): ClusterStats => ({
  clusterId: cluster.id,
  shards: cluster.shardIds.length,
  guilds: cluster.status().reduce((sum, shard) => sum + shard.guilds, 0),
  events,
  messages,
});

// Registered before start(), so no request reaches this cluster before its handler.
cluster.ipc.handle('stats', stats);

cluster.on('ready', () => {
  const { guilds } = stats();
  console.log(`cluster ${cluster.id}: shards ${cluster.shardIds.join(', ')} ready (${guilds} guilds)`);
});
cluster.on('fatal', ({ shardId, code, reason }) =>
  console.error(`cluster ${cluster.id}: shard ${shardId} stopped for good (${code}): ${reason}`),
);
cluster.on('fenced', () => console.log(`cluster ${cluster.id}: fenced (no NATS or no CONTROL)`));
cluster.on('unfenced', () => console.log(`cluster ${cluster.id}: confirmed, resuming`));
cluster.on('error', (error) => console.error(`cluster ${cluster.id}: ${error.message}`));

/** Asks every cluster for its `stats` and logs the totals (request/response over NATS). */
async function reportFleet(): Promise<void> {
  const answers = await cluster.ipc.requestAll('stats', null, { timeoutMs: 2000 });
  const ok = answers.flatMap((answer) => (answer.ok ? [answer.value as ClusterStats] : []));
  const sum = (pick: (one: ClusterStats) => number) => ok.reduce((total, one) => total + pick(one), 0);
  console.log(
    `fleet: ${ok.length}/${answers.length} clusters answered, ${sum((one) => one.shards)} shards, ` +
      `${sum((one) => one.guilds)} guilds, ${sum((one) => one.messages)} messages, ${sum((one) => one.events)} events`,
  );
}

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
