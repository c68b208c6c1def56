/**
 * Measurements for the README (issue 16 §3), not limits: bytes stored per guild of discord-sim's
 * GUILD_CREATE shape, time to write and to read back (validated) a 2,000-guild shard, and the
 * dispatch-path cost of following events. Prints numbers; asserts only correctness.
 */
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { GuildStore } from '../../discord-sim/src/guilds';
import { GuildSnapshotStore } from '../src';
import { GuildSnapshotRecorder } from '../src/cache/GuildSnapshotRecorder';
import { ShardGuildModel } from '../src/cache/ShardGuildModel';
import { connectNats, uniqueBot } from './helpers';
import { useNatsAndSim } from './standaloneHarness';

const GUILDS = 2000;
const BOT_USER = '1100000000000000001';
const env = useNatsAndSim('scale-token', { guilds: 1, shards: 1 });

describe('guild snapshot measurements', () => {
  it('2,000 guilds on one shard: bytes per guild, write and rehydrate time, dispatch-path cost', async () => {
    const nc = await connectNats(env.nats.url, 'scale');
    try {
      const sim = new GuildStore(GUILDS, 3);
      const store = await GuildSnapshotStore.create(nc, {
        bot: uniqueBot('scale'),
        shardCount: 1,
        replicas: 1,
        timeoutMs: 10_000,
      });
      const recorder = new GuildSnapshotRecorder(store, {
        shardIds: [0],
        flushIntervalMs: 3_600_000,
        members: false,
        onDebug: () => undefined,
        onError: (error) => {
          throw error;
        },
      });
      const user = { id: BOT_USER, username: 'discord-sim', discriminator: '0', bot: true };
      const guilds = Array.from({ length: GUILDS }, (_, i) =>
        sim.guildCreate(i, BOT_USER, new Date(0).toISOString()),
      );
      recorder.observe('READY', { user, guilds: guilds.map((g) => ({ id: g['id'], unavailable: true })) }, 0);
      const applyStart = performance.now();
      for (const guild of guilds) recorder.observe('GUILD_CREATE', guild, 0);
      const applyMs = performance.now() - applyStart;

      const writeStart = performance.now();
      await recorder.close();
      const writeMs = performance.now() - writeStart;
      const bytesPerGuild = recorder.bytesWritten / recorder.guildsWritten;

      const loadStart = performance.now();
      const load = await store.load(0);
      const loadMs = performance.now() - loadStart;
      expect(load.kind).toBe('ok');
      if (load.kind !== 'ok') return;
      expect(load.snapshot.guilds).toHaveLength(GUILDS);

      // Dispatch path: events a snapshot ignores (MESSAGE_CREATE) and ones it follows (CHANNEL_UPDATE).
      const model = new ShardGuildModel(false);
      model.restore({ user, application: null }, load.snapshot.guilds, []);
      const message = { id: '1', guild_id: guilds[0]!['id'], channel_id: '2', content: 'x' };
      const channel = {
        ...(guilds[0]!['channels'] as Array<Record<string, unknown>>)[0]!,
        guild_id: guilds[0]!['id'],
      };
      const n = 1_000_000;
      let t = performance.now();
      for (let i = 0; i < n; i++) model.apply('MESSAGE_CREATE', message);
      const ignoredNs = ((performance.now() - t) * 1e6) / n;
      t = performance.now();
      for (let i = 0; i < n; i++) model.apply('CHANNEL_UPDATE', channel);
      const followedNs = ((performance.now() - t) * 1e6) / n;

      console.log(
        JSON.stringify({
          guilds: GUILDS,
          bytesPerGuild: Math.round(bytesPerGuild),
          applyGuildCreatesMs: Math.round(applyMs),
          writeMs: Math.round(writeMs),
          rehydrateMs: Math.round(loadMs),
          ignoredEventNs: Math.round(ignoredNs),
          followedEventNs: Math.round(followedNs),
        }),
      );
    } finally {
      await nc.close();
    }
  });
});
