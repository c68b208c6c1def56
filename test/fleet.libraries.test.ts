import fs from 'node:fs';
import path from 'node:path';
import { pm2List, waitFor } from 'discluster-testing';
import type { FleetStatus } from 'discluster-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userMessage } from '../discord-sim/src';
import { Fleet, TOKEN, readyShards } from './support/fleet';
import { expectFleetInvariants } from './support/invariants';

/**
 * Issue 16 "Must show", through a real fleet (nats-server, pm2, CONTROLs, MASTER, discord-sim): a
 * discord.js bot (`createDiscordJsClient`) and an @discordjs/core bot (`cluster.gateway`) answer a
 * message and an interaction, hold exactly their clusters' guilds with the simulator's channels and
 * roles, and hold the same guilds after a SIGKILLed cluster is restarted by CONTROL and after a
 * machine dies and its clusters move to the standby: both RESUME (0 identifies), and the guilds come
 * from the cluster's guild snapshots in NATS, not from Discord.
 */

const SCRIPT = path.resolve(__dirname, 'fixtures', 'fleetLibraryBot.js');
const SHARDS = 4;
const GUILDS = 48;

type GuildView = { id: string; name: string; channels: [string, string][]; roles: [string, string][] };
interface SimChannel {
  readonly id: string;
  readonly guild_id: string;
}

const shardOf = (guildId: string) => Number((BigInt(guildId) >> 22n) % BigInt(SHARDS));

const clustersOf = (status: FleetStatus, hostId: string) =>
  status.hosts.find((host) => host.id === hostId)?.clusters ?? [];

describe.each(['discord.js', 'core'] as const)('a %s bot on a fleet of three machines', (library) => {
  let fleet: Fleet;
  let channels: SimChannel[];

  const admin = async <T>(route: string, body?: unknown): Promise<T> => {
    const response = await fetch(
      `${fleet.sim.admin}${route}`,
      body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) },
    );
    expect(response.ok, `${route}: ${response.status}`).toBe(true);
    return (await response.json()) as T;
  };

  /** The latest `cache` line of each running cluster process (by pid), by cluster id. */
  async function cacheOfRunningClusters(): Promise<Map<number, GuildView[]>> {
    const running = new Set<number>();
    for (const host of fleet.hosts.values())
      for (const proc of (await pm2List(host.home)).processes) running.add(proc['pid'] as number);
    const caches = new Map<number, GuildView[]>();
    for (const line of fleet.botLines())
      if (line['t'] === 'cache' && running.has(line['pid'] as number))
        caches.set(line['clusterId'] as number, line['view'] as GuildView[]);
    return caches;
  }

  /** Waits until every cluster of `status` reported its cache from a running process. */
  async function cachesOf(status: FleetStatus, description: string): Promise<Map<number, GuildView[]>> {
    const clusterIds = status.hosts.flatMap((host) => host.clusters.map((cluster) => cluster.id));
    let caches = new Map<number, GuildView[]>();
    await waitFor(
      async () => {
        caches = await cacheOfRunningClusters();
        return clusterIds.every((id) => caches.has(id));
      },
      { description, timeoutMs: 120_000, intervalMs: 500 },
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${fleet.diagnostics()}`);
    });
    return caches;
  }

  async function allReady(description: string, also: (status: FleetStatus) => boolean = () => true) {
    let last: FleetStatus | undefined;
    await waitFor(
      async () => {
        last = await fleet.status();
        return readyShards(last).length === SHARDS && also(last);
      },
      { description, timeoutMs: 120_000, intervalMs: 500 },
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}\nlast status: ${JSON.stringify(last)}\n${fleet.diagnostics()}`);
    });
    return last!;
  }

  /** `!ping` in `channel`: exactly one reply, referencing it, lands in the simulator. */
  async function expectPingAnswered(channel: SimChannel, messageId: string): Promise<void> {
    await admin('/dispatch', {
      t: 'MESSAGE_CREATE',
      d: userMessage({
        id: messageId,
        channelId: channel.id,
        guildId: channel.guild_id,
        author: { id: '1250000000000000001', username: 'tester' },
        content: '!ping',
      }),
    });
    type Posted = { content: string; message_reference: { message_id: string } | null };
    const replies = async () =>
      (await admin<Posted[]>(`/messages?channel_id=${channel.id}`)).filter(
        (message) => message.message_reference?.message_id === messageId,
      );
    await waitFor(async () => (await replies()).length > 0, {
      description: `the reply to !ping ${messageId}`,
      timeoutMs: 60_000,
    });
    await waitFor(
      () => fleet.botLines().some((line) => line['t'] === 'replied' && line['messageId'] === messageId),
      {
        description: 'the bot to log its reply',
        timeoutMs: 30_000,
      },
    );
    expect((await replies()).map((message) => message.content)).toEqual(['pong']);
  }

  beforeAll(async () => {
    fleet = await Fleet.start({
      bot: `lib-${library === 'core' ? 'core' : 'djs'}`,
      hosts: [
        { id: 'alpha', cores: 1 },
        { id: 'beta', cores: 1 },
        { id: 'gamma', cores: 1, role: 'standby' },
      ],
      shards: SHARDS,
      maxConcurrency: 2,
      guilds: GUILDS,
      leaseMs: 6000,
      hostTimeoutMs: 3000,
      botScript: SCRIPT,
    });
    // Read by the bot at start: CONTROL passes it no environment.
    for (const host of fleet.hosts.values())
      fs.writeFileSync(path.join(host.home, 'fleetbot-library'), library);
    fleet.startMaster();
    channels = (await (await fetch(`${fleet.sim.admin}/channels?limit=${GUILDS}`)).json()) as SimChannel[];
  }, 120_000);

  afterAll(async () => {
    await fleet?.stop();
  }, 120_000);

  it(
    "answers a message and an interaction; each cluster holds exactly its shards' guilds, with the simulator's channels and roles; a SIGKILLed cluster and a dead machine's clusters RESUME with the same guilds",
    { timeout: 400_000 },
    async () => {
      const status = await allReady('every shard ready');
      const caches = await cachesOf(status, `every cluster's ${library} guild cache`);
      const clusters = status.hosts.flatMap((host) => host.clusters);
      expect(channels).toHaveLength(GUILDS);

      // Exactly the guilds of the cluster's shards, each with its channels and roles.
      for (const cluster of clusters) {
        const view = caches.get(cluster.id)!;
        const shardIds = cluster.shards.map((shard) => shard.id);
        expect(view.map((guild) => guild.id)).toEqual(
          channels
            .filter((channel) => shardIds.includes(shardOf(channel.guild_id)))
            .map((channel) => channel.guild_id)
            .sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)),
        );
        for (const guild of view) {
          const general = channels.find((channel) => channel.guild_id === guild.id)!;
          expect(guild.channels.map(([id]) => id)).toContain(general.id);
          expect(guild.roles.map(([id]) => id)).toContain(guild.id); // @everyone has the guild's id
        }
      }
      // Roles as Discord's REST returns them, for one guild of each cluster.
      for (const cluster of clusters) {
        const guild = caches.get(cluster.id)![0]!;
        const fetched = (await (
          await fetch(`${fleet.sim.rest}/guilds/${guild.id}`, { headers: { authorization: `Bot ${TOKEN}` } })
        ).json()) as { roles: Array<{ id: string; name: string }> };
        expect(guild.roles).toEqual(
          fetched.roles
            .map((role): [string, string] => [role.id, role.name])
            .sort((a, b) => (BigInt(a[0]) < BigInt(b[0]) ? -1 : 1)),
        );
      }

      // A message and an interaction are answered through cluster.rest.
      await expectPingAnswered(channels[0]!, '1300000000000000001');
      const { interaction } = await admin<{ interaction: { id: string } }>('/dispatch', {
        t: 'INTERACTION_CREATE',
        d: {
          type: 2,
          version: 1,
          guild_id: channels[1]!.guild_id,
          channel_id: channels[1]!.id,
          channel: { id: channels[1]!.id, type: 0, guild_id: channels[1]!.guild_id },
          data: { id: '1310000000000000001', name: 'ping', type: 1 },
          member: {
            user: { id: '1250000000000000001', username: 'tester', discriminator: '0', avatar: null },
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
          authorizing_integration_owners: { 0: channels[1]!.guild_id },
          context: 0,
        },
      });
      await waitFor(
        async () =>
          (await admin<Array<{ id: string; callback_type: number | null }>>('/interactions')).find(
            (one) => one.id === interaction.id,
          )?.callback_type === 4,
        { description: 'the interaction answered (callback type 4)', timeoutMs: 60_000 },
      );

      // 1. A cluster SIGKILLed: CONTROL restarts it, its shards RESUME, its guilds are back.
      const identifies = (await fleet.state())['identifies'];
      const victim = clustersOf(status, 'alpha')[0]!;
      const { processes } = await pm2List(fleet.host('alpha').home);
      const victimName = (name: unknown) => String(name).endsWith(`-cluster-${victim.id}`);
      const victimProcess = processes.find((proc) => victimName(proc['name']))!;
      expect(victimProcess, JSON.stringify(processes.map((proc) => proc['name']))).toBeDefined();
      process.kill(victimProcess['pid'] as number, 'SIGKILL');
      await waitFor(
        async () => {
          const now = (await pm2List(fleet.host('alpha').home)).processes.find((proc) =>
            victimName(proc['name']),
          );
          return (
            now !== undefined && now['pid'] !== victimProcess['pid'] && now['pm2_env']['status'] === 'online'
          );
        },
        { description: 'CONTROL to restart the killed cluster', timeoutMs: 60_000 },
      );
      const afterRestart = await cachesOf(
        await allReady('every shard ready after the restart'),
        'the caches after the restart',
      );
      expect(afterRestart.get(victim.id)).toEqual(caches.get(victim.id));

      // 2. Machine beta dies: its clusters move to the standby gamma, RESUME, same guilds.
      const moved = clustersOf(status, 'beta').map((cluster) => cluster.id);
      expect(moved.length).toBeGreaterThan(0);
      await fleet.killHost('beta');
      const afterFailover = await allReady('every shard ready with beta dead', (now) =>
        moved.every((id) => clustersOf(now, 'gamma').some((cluster) => cluster.id === id)),
      );
      const movedCaches = await cachesOf(afterFailover, 'the caches of the moved clusters');
      for (const id of moved) expect(movedCaches.get(id)).toEqual(caches.get(id));
      // The moved clusters answer too.
      const onMoved = channels.find((channel) =>
        clustersOf(afterFailover, 'gamma')
          .flatMap((cluster) => cluster.shards.map((shard) => shard.id))
          .includes(shardOf(channel.guild_id)),
      )!;
      await expectPingAnswered(onMoved, '1300000000000000002');

      const state = await fleet.state();
      expect(state['identifies'], 'RESUMEs only: no IDENTIFY after the first start').toBe(identifies);
      expectFleetInvariants(state);
    },
  );
});
