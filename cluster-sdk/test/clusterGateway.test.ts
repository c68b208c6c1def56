/**
 * Issue 16 §1: `cluster.gateway` is @discordjs/core's `Gateway` on the cluster's shards. A core
 * `Client` on `cluster.rest` + `cluster.gateway` hears what the cluster's `dispatch` delivers (no
 * more: the handover gate decides), answers through the fleet's REST, and sends gateway commands on
 * the cluster's own sockets. Real nats-server and discord-sim processes; nothing of Discord mocked.
 */
import util from 'node:util';
import {
  ActivityType,
  Client,
  GatewayDispatchEvents,
  GatewayIntentBits,
  GatewayOpcodes,
  PresenceUpdateStatus,
  type GatewayDispatchPayload,
} from '@discordjs/core';
import { WebSocketShardEvents } from '@discordjs/ws';
import { waitFor } from 'discluster-testing';
import { describe, expect, it } from 'vitest';
import type { Cluster } from '../src';
import { uniqueBot } from './helpers';
import { channelOnShard, messageCreate, postedTo, simAdmin, type SimChannel } from './simAdmin';
import { useInProcessClusters } from './standaloneHarness';

const TOKEN = 'cluster-gateway-TOKEN-3d9e52a7';
const SHARDS = 2;
const env = useInProcessClusters(TOKEN, {
  guilds: 20,
  shards: SHARDS,
  'max-concurrency': SHARDS,
  'identify-window-ms': 200,
});

/**
 * A standalone cluster (not started) on shards 0..1 of 2, with messages in its intents;
 * `standby`: the assignment of a reshard's new generation, whose gate holds back live events.
 */
async function newCluster(prefix: string, standby = false): Promise<Cluster> {
  const cluster = await env.cluster(
    uniqueBot(prefix),
    { shardCount: SHARDS, standby },
    {
      // MessageContent too: without it the simulator, as Discord, blanks `content` ('!ping').
      intents: GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages | GatewayIntentBits.MessageContent,
      identifyWindowMs: 200,
    },
  );
  cluster.on('error', () => undefined);
  return cluster;
}

/** Injects a user's MESSAGE_CREATE through the simulator's admin API (routed to the guild's shard). */
async function injectMessage(channel: SimChannel, id: string, content: string): Promise<void> {
  await simAdmin(env.sim, '/dispatch', messageCreate(channel, id, content));
}

describe('cluster.gateway with @discordjs/core', () => {
  it('a Client on cluster.rest + cluster.gateway answers once, sends on the shard, never shows the token', async () => {
    const cluster = await newCluster('core');
    const fromCluster: string[] = [];
    const fromGateway: string[] = [];
    const tag = (packet: GatewayDispatchPayload, shardId: number): string =>
      `${shardId}:${packet.t}:${packet.s}`;
    cluster.on('dispatch', (packet, shardId) => fromCluster.push(tag(packet, shardId)));
    cluster.gateway.on(WebSocketShardEvents.Dispatch, (packet, shardId) =>
      fromGateway.push(tag(packet, shardId)),
    );

    // Everything registered before start(): the READYs must reach it.
    const client = new Client({ rest: cluster.rest, gateway: cluster.gateway });
    const clientErrors: unknown[] = [];
    client.on('error', (error) => clientErrors.push(error));
    const readyShards: number[] = [];
    client.on(GatewayDispatchEvents.Ready, ({ shardId }) => readyShards.push(shardId));
    const handled: Array<{ id: string; shardId: number }> = [];
    client.on(GatewayDispatchEvents.MessageCreate, async ({ data, api, shardId }) => {
      if (data.content !== '!ping') return;
      handled.push({ id: data.id, shardId });
      await api.channels.createMessage(data.channel_id, {
        content: 'pong',
        nonce: `core-${data.id}`,
        message_reference: { message_id: data.id },
      });
    });

    const before = await env.sim.state();
    await cluster.start();
    expect(readyShards.sort()).toEqual([0, 1]);
    expect(await cluster.gateway.getShardCount()).toBe(cluster.shardCount);

    // MESSAGE_CREATE on shard 1 → the handler's reply lands in the simulator, once.
    const channel = await channelOnShard(env.sim, (guild) => cluster.shardForGuild(guild), 1);
    const messageId = '1300000000000000001';
    await injectMessage(channel, messageId, '!ping');
    await waitFor(async () => (await postedTo(env.sim, channel.id)).length > 0, {
      description: 'the reply in the simulator',
      timeoutMs: 10_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 500)); // room for a duplicate to show up
    const posted = await postedTo(env.sim, channel.id);
    expect(posted.map((m) => [m.nonce, m.content])).toEqual([[`core-${messageId}`, 'pong']]);
    expect(handled).toEqual([{ id: messageId, shardId: 1 }]);

    // Gateway commands go out on the cluster's sockets: a presence update (op 3), then a member
    // request (op 8) whose GUILD_MEMBERS_CHUNK comes back through cluster.gateway to the Client.
    await client.updatePresence(1, {
      status: PresenceUpdateStatus.Idle,
      activities: [{ name: 'tests', type: ActivityType.Watching }],
      since: null,
      afk: false,
    });
    const members = await client.requestGuildMembers(
      { guild_id: channel.guild_id, query: '', limit: 0 },
      5_000,
    );
    expect(members.members).toEqual([]);
    const presence = { status: PresenceUpdateStatus.Online, activities: [], since: null, afk: false };
    await expect(
      cluster.gateway.send(99, { op: GatewayOpcodes.PresenceUpdate, d: presence }),
    ).rejects.toMatchObject({ code: 'DISCLUSTER_ERR_INVALID_SHARD' });

    // Those commands were accepted: same sessions, no new IDENTIFY or RESUME, no send-rate violation.
    const after = await env.sim.state();
    expect(after['identifies'] - before['identifies']).toBe(SHARDS);
    expect(after['resumes']).toBe(before['resumes']);
    expect(after['violations'].sendRate).toBe(0);
    expect(cluster.status().map((s) => s.state)).toEqual(['ready', 'ready']);

    // Exactly what the cluster delivered, in the same order, and nothing failed in the Client.
    expect(fromGateway).toEqual(fromCluster);
    expect(fromCluster.filter((t) => t.includes(':MESSAGE_CREATE:'))).toHaveLength(1);
    expect(clientErrors).toEqual([]);

    for (const shown of [
      util.inspect(cluster.gateway, { depth: Infinity, showHidden: true }),
      JSON.stringify(cluster.gateway),
      util.inspect(cluster, { depth: Infinity, showHidden: true }),
      util.inspect(client, { depth: 6, showHidden: true }),
    ])
      expect(shown).not.toContain(TOKEN);
  });

  it('delivers only what the handover gate lets through: a standby cluster’s Client gets its READY and guilds, no live event', async () => {
    const cluster = await newCluster('standby', true);
    const fromCluster: string[] = [];
    cluster.on('dispatch', (packet) => fromCluster.push(packet.t));
    const client = new Client({ rest: cluster.rest, gateway: cluster.gateway });
    const fromClient: string[] = [];
    for (const event of [
      GatewayDispatchEvents.Ready,
      GatewayDispatchEvents.GuildCreate,
      GatewayDispatchEvents.MessageCreate,
    ])
      client.on(event, () => fromClient.push(event));

    await cluster.start();
    await waitFor(() => fromCluster.filter((t) => t === 'GUILD_CREATE').length > 0, {
      description: 'guild loading delivered',
    });
    const channel = await channelOnShard(env.sim, (guild) => cluster.shardForGuild(guild), 0);
    const received = (): number => cluster.status().find((shard) => shard.id === 0)!.events;
    const before = received();
    await injectMessage(channel, '1300000000000000002', '!ping');
    // The shard receives it (its event count, taken before the gate, goes up); the gate holds it back.
    await waitFor(() => received() > before, { description: 'the MESSAGE_CREATE on shard 0' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(fromCluster).not.toContain('MESSAGE_CREATE');
    expect(fromClient).toEqual(fromCluster);
    expect(fromClient.filter((t) => t === 'READY')).toHaveLength(SHARDS);
  });

  it('on/off follow EventEmitter rules; a listener that throws or rejects becomes the cluster’s error', async () => {
    const cluster = await newCluster('listeners');
    const errors: Error[] = [];
    cluster.on('error', (error) => errors.push(error));
    const packet = { op: 0, t: 'TYPING_START', s: 1, d: {} } as unknown as GatewayDispatchPayload;
    const heard: number[] = [];
    const listener = (_: GatewayDispatchPayload, shardId: number): void => void heard.push(shardId);
    cluster.gateway.on('dispatch', listener).on('dispatch', listener);
    cluster.gateway.on('dispatch', () => {
      throw new Error('sync failure');
    });
    cluster.gateway.on('dispatch', () => Promise.reject(new Error('async failure')));

    // The cluster's dispatch event is what the gate emits; emitted here without a gateway.
    cluster.emit('dispatch', packet, 1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(heard).toEqual([1, 1]);
    expect(errors.map((e) => e.message)).toEqual([
      'a cluster.gateway dispatch listener failed: sync failure',
      'a cluster.gateway dispatch listener failed: async failure',
    ]);

    cluster.gateway.off('dispatch', listener);
    cluster.emit('dispatch', packet, 0);
    cluster.gateway.off('dispatch', listener).off('dispatch', listener); // one too many: no-op
    cluster.emit('dispatch', packet, 1);
    expect(heard).toEqual([1, 1, 0]);
    expect(() => cluster.gateway.on('ready' as 'dispatch', listener)).toThrow(/only 'dispatch'/);
    expect(JSON.stringify(cluster.gateway)).toBe('{}');
  });
});
