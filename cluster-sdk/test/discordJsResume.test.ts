/**
 * Issue 16 §3 with discord.js's own Client: a cluster stops (sessions and guild snapshots saved), a
 * new cluster on the same shards RESUMEs them with 0 identifies, and the discord.js client on it
 * still gets clientReady with `client.guilds.cache` (guilds, channels, roles) equal to before.
 * Real nats-server and discord-sim processes.
 */
import { Events, GatewayIntentBits, type Client } from 'discord.js';
import { waitFor } from 'discluster-testing';
import { describe, expect, it } from 'vitest';
import type { Cluster } from '../src';
import { createDiscordJsClient } from '../src/discordjs';
import { uniqueBot } from './helpers';
import { useInProcessClusters } from './standaloneHarness';

const TOKEN = 'MTE4NDk1NjA3.R2l0SHVi.discluster-djs-resume-9c1e';
const SHARD_COUNT = 3;
const SERVED = [0, 2];
const INTENTS = GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages;
const env = useInProcessClusters(TOKEN, {
  guilds: 45,
  shards: SHARD_COUNT,
  'max-concurrency': SHARD_COUNT,
  'identify-window-ms': 200,
  'heartbeat-interval-ms': 500,
});

/** A standalone cluster of `bot` serving shards 0 and 2 of 3 (not started), with guild snapshots. */
function newCluster(bot: string): Promise<Cluster> {
  return env.cluster(
    bot,
    { shardCount: SHARD_COUNT, shardIds: SERVED },
    { intents: INTENTS, identifyWindowMs: 200, guildSnapshots: { flushIntervalMs: 100 } },
  );
}

/** What a bot reads from discord.js's guild cache: ids, names, channels and roles. */
function cacheOf(client: Client): unknown {
  return [...client.guilds.cache.values()]
    .map((guild) => ({
      id: guild.id,
      name: guild.name,
      available: guild.available,
      channels: [...guild.channels.cache.values()].map((c) => [c.id, c.name, c.type]).sort(),
      roles: [...guild.roles.cache.values()]
        .map((r) => [r.id, r.name, r.permissions.bitfield.toString()])
        .sort(),
    }))
    .sort((a, b) => a.id.localeCompare(b.id));
}

async function readyClient(cluster: Cluster): Promise<{ client: Client; readyCount: () => number }> {
  const client = createDiscordJsClient(cluster);
  env.cleanup.add(() => client.destroy());
  let ready = 0;
  client.on(Events.ClientReady, () => ready++);
  await cluster.start();
  await waitFor(() => ready > 0, { description: 'clientReady', timeoutMs: 30_000 });
  return { client, readyCount: () => ready };
}

describe('createDiscordJsClient across a resume', () => {
  it('a new cluster that RESUMEs (0 identifies) gives discord.js clientReady and the same guild cache', async () => {
    const bot = uniqueBot('djsr');
    const first = await newCluster(bot);
    const { client: before } = await readyClient(first);
    const cached = cacheOf(before);
    expect(before.guilds.cache.size).toBeGreaterThan(0);
    const identifies = (await env.sim.state())['identifies'] as number;
    await first.stop(); // flushes sessions and snapshots

    const second = await newCluster(bot);
    const errors: Error[] = [];
    second.on('error', (error) => errors.push(error));
    const { client: after, readyCount } = await readyClient(second);
    expect(readyCount()).toBe(1);
    expect((await env.sim.state())['identifies']).toBe(identifies);
    expect(cacheOf(after)).toEqual(cached);
    expect(after.user?.id).toBe(before.user?.id);
    expect(second.status().map((shard) => shard.guilds)).toEqual(first.status().map((shard) => shard.guilds));
    expect(errors).toEqual([]);
  });
});
