import {
  Client,
  GatewayDispatchEvents,
  GatewayIntentBits,
  InteractionType,
  MessageFlags,
} from '@discordjs/core';
import { Cluster } from 'discluster-sdk';

// The same bot on @discordjs/core: typed events and the API, no cache. Guild counts come from
// the cluster itself (READY's guild list, then GUILD_CREATE and GUILD_DELETE).
const { Guilds, GuildMessages, MessageContent } = GatewayIntentBits;
const cluster = new Cluster({
  intents: Guilds | GuildMessages | MessageContent,
  guildSnapshots: true, // after a restart (RESUME), status() counts the restored guilds, not 0
});
const client = new Client({ rest: cluster.rest, gateway: cluster.gateway });

const guildCount = (): number => cluster.status().reduce((sum, shard) => sum + shard.guilds, 0);
cluster.ipc.handle('guildCount', guildCount);

client.once(GatewayDispatchEvents.Ready, async ({ data, api }) => {
  if (cluster.id !== 0) return; // one cluster registers the slash commands
  await api.applicationCommands.bulkOverwriteGlobalCommands(data.application.id, [
    { name: 'stats', description: 'Guilds across every cluster' },
  ]);
});

client.on(GatewayDispatchEvents.MessageCreate, async ({ data: message, api }) => {
  if (message.author.bot || message.content !== '!ping') return;
  await api.channels.createMessage(message.channel_id, {
    content: 'pong',
    message_reference: { message_id: message.id },
  });
});

client.on(GatewayDispatchEvents.InteractionCreate, async ({ data: interaction, api }) => {
  if (interaction.type !== InteractionType.ApplicationCommand || interaction.data.name !== 'stats') return;
  await api.interactions.defer(interaction.id, interaction.token, { flags: MessageFlags.Ephemeral });
  const counts = await cluster.ipc.requestAll('guildCount', null, { timeoutMs: 2_000 });
  const total = counts.reduce((sum, answer) => sum + (answer.ok ? Number(answer.value) : 0), 0);
  await api.interactions.editReply(interaction.application_id, interaction.token, {
    content: `${total} guilds in the fleet`,
  });
});

client.on('error', (error) => console.error(error)); // a handler that rejected
cluster.on('error', (error) => console.error(error));
void cluster.start();
