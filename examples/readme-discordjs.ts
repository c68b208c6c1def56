import { Events, GatewayIntentBits } from 'discord.js';
import { Cluster } from 'discluster-sdk';
import { createDiscordJsClient } from 'discluster-sdk/discord.js';

// discord.js on this cluster's shards: caches, events and REST are discord.js's own; the shards
// (identify coordination, RESUME, fencing) stay the cluster's. Fleet mode here; standalone the same.
const { Guilds, GuildMessages, MessageContent } = GatewayIntentBits;
const cluster = new Cluster({ intents: Guilds | GuildMessages | MessageContent });
// Before start(): the client must see every shard's READY. Intents default to the cluster's.
const client = createDiscordJsClient(cluster, { allowedMentions: { repliedUser: false } });

client.once(Events.ClientReady, (ready) => {
  console.log(
    `${ready.user.tag}: ${ready.guilds.cache.size} guilds on shards ${cluster.shardIds.join(', ')}`,
  );
  ready.user.setPresence({ activities: [{ name: `cluster ${cluster.id}` }] }); // on this cluster's shards
});
client.on(Events.MessageCreate, async (message) => {
  if (message.author.bot || message.content !== '!ping') return;
  await message.reply('pong'); // through cluster.rest, inside the fleet's rate limits
});
client.on(Events.InteractionCreate, async (interaction) => {
  if (!interaction.isChatInputCommand() || interaction.commandName !== 'stats') return;
  await interaction.deferReply();
  const counts = await cluster.ipc.requestAll('guildCount', null, { timeoutMs: 2_000 });
  const total = counts.reduce((sum, answer) => sum + (answer.ok ? Number(answer.value) : 0), 0);
  await interaction.editReply(`${total} guilds in the fleet`);
});
cluster.ipc.handle('guildCount', () => client.guilds.cache.size);
client.on(Events.Error, (error) => console.error(error));
cluster.on('error', (error) => console.error(error)); // also a discord.js listener that threw
void cluster.start(); // never client.login(): the client logs in once the cluster has its shards
