/**
 * Issue 16 §2: `createDiscordJsClient(cluster)` is discord.js's own `Client` on a standalone
 * cluster's shards (shards 0 and 2 of 3 here): its gateway is a strategy that opens no socket, its
 * REST is `cluster.rest`. Real nats-server and discord-sim processes; nothing of Discord mocked.
 */
import util from 'node:util';
import { Events, GatewayIntentBits, type Client, type Message } from 'discord.js';
import { waitFor } from 'discluster-testing';
import { describe, expect, it, vi } from 'vitest';
import type { Cluster } from '../src';
import { createDiscordJsClient } from '../src/discordjs';
import { uniqueBot } from './helpers';
import { SIM_USER, messageCreate, postedTo, simAdmin, simChannels, type SimChannel } from './simAdmin';
import { useInProcessClusters } from './standaloneHarness';

// Shaped like a real token (three dot-separated parts): discord.js's debug line censors the third.
const TOKEN = 'MTE4NDk1NjA3.R2l0SHVi.discluster-djs-SECRET-7f3a';
const SHARD_COUNT = 3;
const SERVED = [0, 2];
const INTENTS = GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages | GatewayIntentBits.MessageContent;
const env = useInProcessClusters(TOKEN, {
  guilds: 30,
  shards: SHARD_COUNT,
  'max-concurrency': SHARD_COUNT,
  'identify-window-ms': 200,
  'heartbeat-interval-ms': 500,
  'interaction-response-ms': 10_000,
});

/** A standalone cluster serving shards 0 and 2 of 3 (not started). */
function newCluster(prefix: string): Promise<Cluster> {
  return env.cluster(
    uniqueBot(prefix),
    { shardCount: SHARD_COUNT, shardIds: SERVED },
    { intents: INTENTS, identifyWindowMs: 200 },
  );
}

/** A `/ping` slash command as Discord sends it (discord.js reads every one of these fields). */
function interactionCreate(channel: SimChannel): unknown {
  return {
    t: 'INTERACTION_CREATE',
    d: {
      type: 2,
      version: 1,
      guild_id: channel.guild_id,
      channel_id: channel.id,
      channel: { id: channel.id, type: 0, guild_id: channel.guild_id },
      data: { id: '1310000000000000001', name: 'ping', type: 1 },
      member: {
        user: SIM_USER,
        roles: [],
        joined_at: new Date().toISOString(),
        deaf: false,
        mute: false,
        flags: 0,
        permissions: '0',
      },
      locale: 'en-US',
      guild_locale: 'en-US',
      app_permissions: '0',
      entitlements: [],
      authorizing_integration_owners: { '0': channel.guild_id },
      context: 0,
    },
  };
}

/** discord.js's @discordjs/ws 1.x manager and its strategy (private in discord.js: read for the test only). */
function strategyOf(client: Client): unknown {
  return (client.ws as unknown as { _ws: { strategy: unknown } })._ws.strategy;
}

describe('createDiscordJsClient', () => {
  it('a discord.js Client on the cluster’s shards: ready, caches, replies, presence, no socket of its own, no token shown', async () => {
    const cluster = await newCluster('djs');
    const clusterErrors: Error[] = [];
    cluster.on('error', (error) => clusterErrors.push(error));
    const client = createDiscordJsClient(cluster);
    const debug: string[] = [];
    client.on(Events.Debug, (message) => debug.push(message));
    const shardErrors: unknown[] = [];
    client.on(Events.ShardError, (error) => shardErrors.push(error));
    let clientReady = 0;
    client.on(Events.ClientReady, () => clientReady++);
    const shardReady: number[] = [];
    client.on(Events.ShardReady, (id) => shardReady.push(id));
    const replies: Array<Promise<Message>> = [];
    client.on(Events.MessageCreate, (message) => {
      if (message.content === '!ping')
        replies.push(message.reply({ content: 'pong', nonce: `djs-${message.id}`, enforceNonce: true }));
    });
    const interactionReplies: Array<Promise<unknown>> = [];
    client.on(Events.InteractionCreate, (interaction) => {
      if (interaction.isChatInputCommand() && interaction.commandName === 'ping')
        interactionReplies.push(interaction.reply('pong'));
    });

    const before = await env.sim.state();
    await cluster.start();
    await waitFor(() => clientReady > 0, { description: 'clientReady', timeoutMs: 15_000 });
    expect(clientReady).toBe(1);
    expect(shardReady.sort()).toEqual(SERVED);
    expect(client.isReady()).toBe(true);
    expect(client.user?.bot).toBe(true);
    expect(client.options.shards).toEqual(SERVED);
    expect(client.options.shardCount).toBe(SHARD_COUNT);
    expect(client.rest).toBe(cluster.rest);

    // Exactly the guilds the simulator puts on shards 0 and 2 (its channels name every guild).
    const channels = await simChannels(env.sim);
    const served = new Set(
      channels.map((c) => c.guild_id).filter((id) => SERVED.includes(cluster.shardForGuild(id))),
    );
    expect(served.size).toBeGreaterThan(0);
    expect(served.size).toBeLessThan(30);
    expect(client.guilds.cache.size).toBe(served.size);
    expect([...client.guilds.cache.keys()].sort()).toEqual([...served].sort());

    // Heartbeats (every 500 ms here) reach discord.js's shards: client.ws.ping is a latency.
    await waitFor(() => client.ws.shards.every((shard) => shard.ping >= 0), {
      description: 'heartbeat latency on every discord.js shard',
    });
    expect(Number.isFinite(client.ws.ping)).toBe(true);
    expect(client.ws.ping).toBeGreaterThanOrEqual(0);

    // messageCreate → message.reply lands in the simulator exactly once.
    const onShard2 = channels.find((c) => cluster.shardForGuild(c.guild_id) === 2)!;
    const messageId = '1300000000000000011';
    await simAdmin(env.sim, '/dispatch', messageCreate(onShard2, messageId, '!ping'));
    await waitFor(() => replies.length > 0, { description: 'messageCreate' });
    const reply = await replies[0]!;
    expect(reply.content).toBe('pong');
    await new Promise((resolve) => setTimeout(resolve, 500)); // room for a duplicate to show up
    const posted = await postedTo(env.sim, onShard2.id);
    expect(posted.map((m) => [m.nonce, m.content, m.message_reference?.message_id])).toEqual([
      [`djs-${messageId}`, 'pong', messageId],
    ]);
    expect(replies).toHaveLength(1);

    // interactionCreate → interaction.reply is accepted by the simulator's callback route.
    const onShard0 = channels.find((c) => cluster.shardForGuild(c.guild_id) === 0)!;
    const { interaction } = await simAdmin<{ interaction: { id: string } }>(
      env.sim,
      '/dispatch',
      interactionCreate(onShard0),
    );
    await waitFor(() => interactionReplies.length > 0, { description: 'interactionCreate' });
    await interactionReplies[0];
    const handedOut = await simAdmin<Array<{ id: string; callback_type: number | null }>>(
      env.sim,
      '/interactions',
    );
    expect(handedOut.find((i) => i.id === interaction.id)?.callback_type).toBe(4);

    // setPresence goes out on the cluster's sockets (op 3 to both shards): accepted, shards stay ready.
    const sent = vi.spyOn(cluster, 'send');
    client.user!.setPresence({ status: 'idle', activities: [{ name: 'tests' }] });
    await waitFor(() => sent.mock.calls.length >= 2, { description: 'op 3 sent to both shards' });
    await new Promise((resolve) => setTimeout(resolve, 200)); // room for a third send to show up
    expect(sent.mock.calls.map(([shardId, payload]) => [shardId, payload.op])).toEqual([
      [0, 3],
      [2, 3],
    ]);
    await Promise.all(sent.mock.results.map((result) => result.value as Promise<void>));
    expect(client.user!.presence.status).toBe('idle');
    expect(cluster.status().map((s) => s.state)).toEqual(['ready', 'ready']);
    expect(shardErrors).toEqual([]);

    // No socket or IDENTIFY of discord.js's own: the simulator saw the cluster's two sessions only.
    const after = await env.sim.state();
    expect(after['identifies'] - before['identifies']).toBe(SERVED.length);
    expect(after['resumes']).toBe(before['resumes']);
    expect(after['liveSessions']).toHaveLength(SERVED.length);
    expect(after['violations']).toMatchObject({ identifyRate: 0, duplicateLiveSessions: 0, sendRate: 0 });

    // The token: discord.js keeps it in client.token (a non-enumerable property, its design) and
    // prints it censored; the options, the strategy and JSON never show it.
    expect(client.token).toBe(TOKEN);
    expect(Object.keys(client)).not.toContain('token');
    for (const shown of [
      util.inspect(client.options, { depth: Infinity, showHidden: true }),
      JSON.stringify(client.options),
      util.inspect(strategyOf(client), { depth: Infinity, showHidden: true }),
      JSON.stringify(strategyOf(client)),
      util.inspect(client),
      ...debug,
    ])
      expect(shown).not.toContain(TOKEN);
    expect(debug.some((line) => line.includes('MTE4NDk1NjA3.R2l0SHVi.*'))).toBe(true);

    // client.destroy() ends the client, not the shards: they belong to the cluster.
    await client.destroy();
    expect(cluster.status().map((s) => s.state)).toEqual(['ready', 'ready']);
    expect((await env.sim.state())['liveSessions']).toHaveLength(SERVED.length);
    expect(clusterErrors).toEqual([]);
  });

  it('rejects options the cluster decides, and intents other than the cluster’s', async () => {
    const cluster = await newCluster('djs-options');
    expect(() => createDiscordJsClient(cluster, { ws: { buildStrategy: () => ({}) as never } })).toThrow(
      /ws\.buildStrategy come from the cluster/,
    );
    expect(() =>
      createDiscordJsClient(cluster, { shardCount: 2 } as Parameters<typeof createDiscordJsClient>[1]),
    ).toThrow(/shardCount come from the cluster/);
    expect(() => createDiscordJsClient(cluster, { intents: GatewayIntentBits.Guilds })).toThrow(
      /intents 1 differ from the cluster's/,
    );
    expect(() => createDiscordJsClient({} as Cluster)).toThrow(/expected a Cluster of discluster-sdk/);
  });
});
