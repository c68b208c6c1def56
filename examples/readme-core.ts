import {
  ActivityType,
  Client,
  GatewayDispatchEvents,
  GatewayIntentBits,
  PresenceUpdateStatus,
} from '@discordjs/core';
import { Cluster } from 'discluster-sdk';

// @discordjs/core on this cluster's shards: typed events from cluster.gateway, REST through
// cluster.rest (inside the fleet's rate limits). Fleet mode here; standalone works the same.
const { Guilds, GuildMessages, MessageContent } = GatewayIntentBits;
const cluster = new Cluster({ intents: Guilds | GuildMessages | MessageContent });
const client = new Client({ rest: cluster.rest, gateway: cluster.gateway });

client.on(GatewayDispatchEvents.Ready, ({ shardId }) => {
  // A gateway command (op 3) on that shard, through the cluster's own socket.
  client
    .updatePresence(shardId, {
      status: PresenceUpdateStatus.Online,
      activities: [{ name: `shard ${shardId}`, type: ActivityType.Watching }],
      since: null,
      afk: false,
    })
    .catch((error: unknown) => console.error(error));
});
client.on(GatewayDispatchEvents.MessageCreate, async ({ data: message, api }) => {
  if (message.author.bot || message.content !== '!ping') return;
  await api.channels.createMessage(message.channel_id, {
    content: 'pong',
    message_reference: { message_id: message.id },
  });
});
client.on('error', (error) => console.error(error)); // a handler that rejected
cluster.on('error', (error) => console.error(error));
void cluster.start();
