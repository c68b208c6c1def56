import { Events, GatewayIntentBits } from 'discord.js';
import { Cluster } from 'discluster-sdk';
import { createDiscordJsClient } from 'discluster-sdk/discord.js';

// bot.js after the move. CONTROL starts one process of this file per cluster and hands it its
// shards and the token over pm2's IPC channel: no token, shard list or manager in this file.
const { Guilds, GuildMessages, MessageContent } = GatewayIntentBits;
const cluster = new Cluster({
  intents: Guilds | GuildMessages | MessageContent,
  // A restarted cluster RESUMEs and Discord sends no GUILD_CREATE: the snapshots refill the cache.
  guildSnapshots: true,
});
// Was: new Client({ intents, shards: getInfo().SHARD_LIST, shardCount: getInfo().TOTAL_SHARDS }).
const client = createDiscordJsClient(cluster, { allowedMentions: { repliedUser: false } });

// Was: client.cluster.broadcastEval((c) => c.guilds.cache.size). Each cluster answers for itself.
cluster.ipc.handle('guildCount', () => client.guilds.cache.size);
// Was: broadcastEval((c, { id }) => c.guilds.cache.get(id)?.name, { context: { id } }).
cluster.ipc.handle('guildName', (id) => client.guilds.cache.get(String(id))?.name ?? null);

client.once(Events.ClientReady, async (ready) => {
  // Was: client.cluster.id, getInfo().SHARD_LIST, getInfo().TOTAL_SHARDS (or client.shard.ids/count).
  console.log(`cluster ${cluster.id}: shards ${cluster.shardIds.join(', ')} of ${cluster.shardCount}`);
  console.log(`${ready.user.tag}: ${ready.guilds.cache.size} guilds in this cluster`);
  // One cluster registers the slash commands; cluster ids are numbered from 0 across the fleet.
  if (cluster.id === 0) {
    await ready.application.commands.set([{ name: 'stats', description: 'Guilds across every cluster' }]);
  }
});

client.on(Events.MessageCreate, async (message) => {
  if (message.author.bot) return;
  if (message.content === '!ping') {
    await message.reply(`pong (${client.ws.ping} ms)`); // through cluster.rest, in the fleet's limits
  } else if (message.content.startsWith('!where ')) {
    const guildId = message.content.slice('!where '.length).trim();
    // Only the cluster that has the guild answers with a name; the others answer null.
    const answers = await cluster.ipc.requestAll('guildName', guildId, { timeoutMs: 2_000 });
    const found = answers.find((answer) => answer.ok && answer.value !== null);
    await message.reply(
      found?.ok
        ? `${String(found.value)}: shard ${cluster.shardForGuild(guildId)}, cluster ${found.clusterId}`
        : 'not found',
    );
  }
});

client.on(Events.InteractionCreate, async (interaction) => {
  if (!interaction.isChatInputCommand() || interaction.commandName !== 'stats') return;
  await interaction.deferReply();
  const counts = await cluster.ipc.requestAll('guildCount', null, { timeoutMs: 2_000 });
  const answered = counts.filter((answer) => answer.ok);
  const total = answered.reduce((sum, answer) => sum + Number(answer.value), 0);
  await interaction.editReply(`${total} guilds (${answered.length}/${counts.length} clusters answered)`);
});

client.on(Events.Error, (error) => console.error(error));
cluster.on('error', (error) => console.error(error));
// Was: client.login(token). The client logs in by itself once the cluster has its shards.
void cluster.start();
