import { readFileSync } from 'node:fs';
import { Cluster } from 'discluster-sdk';
import { GatewayDispatchEvents, GatewayIntentBits, type APIGatewayBotInfo } from 'discord-api-types/v10';

// One standalone cluster serving shards 0-3 of 4: no pm2, no CONTROL. It needs a nats-server
// (NATS_URL) and a gateway: discord-sim's `rest` URL, or Discord itself (DISCORD_API).
async function main(): Promise<void> {
  const api = process.env['DISCORD_API'] ?? 'https://discord.com/api/v10';
  // The token comes from a file, never from argv or the environment (Promise 4).
  const token = readFileSync(process.env['DISCORD_TOKEN_FILE'] ?? 'token.txt', 'utf8').trim();
  // The cluster makes no REST call of its own: give it GET /gateway/bot.
  const response = await fetch(`${api}/gateway/bot`, { headers: { authorization: `Bot ${token}` } });
  if (!response.ok) throw new Error(`GET /gateway/bot answered HTTP ${response.status}`);
  const gateway = (await response.json()) as APIGatewayBotInfo;

  const cluster = new Cluster({
    intents: GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages,
    standalone: {
      assignment: {
        clusterId: 0,
        clusterIds: [0],
        shardIds: [0, 1, 2, 3],
        shardCount: 4,
        bot: 'my-bot',
        token,
        gateway,
      },
      nats: { servers: process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222' },
    },
    // SIGINT/SIGTERM: close the shards resumably, save their sessions to NATS, exit 0.
    handleSignals: true,
  });

  let messages = 0;
  cluster.on('dispatch', (packet) => {
    if (packet.t === GatewayDispatchEvents.MessageCreate) messages++;
  });
  cluster.on('ready', () =>
    console.log(`cluster ${cluster.id}: shards ${cluster.shardIds.join(', ')} ready`),
  );
  cluster.on('fatal', ({ shardId, code, reason }) =>
    console.error(`shard ${shardId} stopped (${code}): ${reason}`),
  );
  cluster.on('error', (error) => console.error(error));
  cluster.ipc.handle('messages', () => messages); // other clusters: ipc.request(0, 'messages')

  await cluster.start(); // resolves once every shard is READY or RESUMED
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
