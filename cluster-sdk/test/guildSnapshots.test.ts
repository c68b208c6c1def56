/**
 * Issue 16 §3, caches across a resume: a standalone cluster process (the built SDK, as a bot runs
 * it) serves, is SIGKILLed or stopped, and a new process RESUMEs its shards with 0 identifies. The
 * new process must hand bot code the shards' guilds (restored READY + GUILD_CREATEs) before any
 * live event, and its status must count them. Real nats-server and discord-sim processes.
 */
import { Kvm } from '@nats-io/kv';
import { jetstream } from '@nats-io/jetstream';
import {
  guildSnapshotBucket,
  guildSnapshotGuildKey,
  guildSnapshotManifestKey,
  GuildSnapshotManifestSchema,
  decodeRecord,
} from 'discluster-protocol';
import { waitFor, type SpawnedProcess } from 'discluster-testing';
import { describe, expect, it } from 'vitest';
import { GuildStore } from '../../discord-sim/src/guilds';
import type { ClusterAssignment } from '../src';
import { uniqueBot } from './helpers';
import { simDispatch, simState } from './simAdmin';
import {
  GUILD_MESSAGES_INTENT,
  GUILDS_INTENT,
  jsonLines,
  startSimWithGateway,
  startStandaloneCluster,
  useStandaloneHarness,
  type JsonLine as Line,
} from './standaloneHarness';

const TOKEN = 'guild-snapshot-test-token';
const SEED = 11;
const GUILDS = 60;
const SHARD_COUNT = 2;
const SHARDS = [0, 1];

const harness = useStandaloneHarness('discluster-snapshots-');

interface Fleet {
  readonly admin: string;
  readonly bot: string;
  readonly gateway: ClusterAssignment['gateway'];
}

async function startFleet(): Promise<Fleet> {
  const { sim, gateway } = await startSimWithGateway(harness.sims, TOKEN, {
    guilds: GUILDS,
    shards: SHARD_COUNT,
    'max-concurrency': SHARD_COUNT,
    'identify-window-ms': 200,
    seed: SEED,
  });
  return { admin: sim.admin, bot: uniqueBot('gs'), gateway: gateway as ClusterAssignment['gateway'] };
}

function startProcess(fleet: Fleet, name: string): SpawnedProcess {
  return startStandaloneCluster(harness.tmp, `${fleet.bot}-${name}`, {
    intents: GUILDS_INTENT | GUILD_MESSAGES_INTENT,
    natsUrl: harness.nats.url,
    identifyWindowMs: 200,
    identifySafetyMarginMs: 100,
    sessionFlushIntervalMs: 100,
    guildSnapshots: { flushIntervalMs: 100 },
    guildEvents: true,
    assignment: {
      clusterId: 0,
      clusterIds: [0],
      shardIds: SHARDS,
      shardCount: SHARD_COUNT,
      bot: fleet.bot,
      token: TOKEN,
      gateway: fleet.gateway,
    },
  });
}

const lines = (proc: SpawnedProcess, type: string): Line[] =>
  jsonLines(proc).filter((line) => line['type'] === type);

async function snapshotKv(fleet: Fleet): Promise<Awaited<ReturnType<Kvm['open']>>> {
  const nc = await harness.connectNats('gs-test');
  return new Kvm(jetstream(nc)).open(guildSnapshotBucket(fleet.bot));
}

/** The simulator's guild ids per shard, computed independently (same count and seed). */
function simGuildIds(shardId: number): string[] {
  const store = new GuildStore(GUILDS, SEED);
  return store.guildsOfShard(shardId, SHARD_COUNT).map((index) => store.id(index));
}

/** Serves until every shard's snapshot is written, then returns what the simulator sent. */
async function serveAndSnapshot(fleet: Fleet): Promise<{ first: SpawnedProcess; sent: Map<string, Line> }> {
  const first = startProcess(fleet, 'first');
  await waitFor(() => lines(first, 'ready').length > 0, { timeoutMs: 60_000, description: 'first ready' });
  const kv = await snapshotKv(fleet);
  await waitFor(
    async () => {
      for (const shardId of SHARDS) {
        const entry = await kv.get(guildSnapshotManifestKey(SHARD_COUNT, shardId));
        if (!entry || entry.operation !== 'PUT') return false;
        const manifest = decodeRecord(GuildSnapshotManifestSchema, entry.value);
        if (!manifest.ok || manifest.value.guilds.length !== simGuildIds(shardId).length) return false;
      }
      return true;
    },
    { description: 'snapshot manifests of both shards list every guild' },
  );
  const sent = new Map(lines(first, 'guildCreate').map((line) => [String(line['id']), line]));
  return { first, sent };
}

/** One live MESSAGE_CREATE per shard (a guild's second); waits until `proc` received both. */
async function sendLiveMessages(fleet: Fleet, proc: SpawnedProcess): Promise<void> {
  for (const shardId of SHARDS) {
    const guildId = simGuildIds(shardId)[1]!;
    await simDispatch(fleet, 'MESSAGE_CREATE', {
      id: guildId,
      guild_id: guildId,
      channel_id: guildId,
      nonce: `live-${shardId}`,
      content: 'x',
    });
  }
  await waitFor(() => lines(proc, 'message').length === 2, {
    timeoutMs: 60_000,
    description: 'live messages',
  });
}

describe('guild snapshots: caches across a resume', () => {
  it('SIGKILL, restart, RESUME with 0 identifies: restored guilds (channels, roles) first, status counts them', async () => {
    const fleet = await startFleet();
    const { first, sent } = await serveAndSnapshot(fleet);
    expect(lines(first, 'guildCreate').every((line) => line['restored'] === false)).toBe(true);

    // An incremental change after the guild loading: a channel created in a guild of shard 1.
    const changedGuild = simGuildIds(1)[0]!;
    const added = {
      id: String(((BigInt(changedGuild) >> 22n) << 22n) + (9n << 17n)),
      type: 0,
      name: 'added',
      position: 9,
    };
    await simDispatch(fleet, 'CHANNEL_CREATE', { ...added, guild_id: changedGuild });
    const kv = await snapshotKv(fleet);
    await waitFor(
      async () => {
        const entry = await kv.get(guildSnapshotGuildKey(SHARD_COUNT, 1, changedGuild));
        return entry !== null && entry.string().includes('"added"');
      },
      { description: 'the created channel reached the snapshot' },
    );
    const identifies = (await simState(fleet))['identifies'] as number;
    expect(identifies).toBe(2);

    first.kill('SIGKILL');
    await first.exited;
    const second = startProcess(fleet, 'second');
    await waitFor(() => lines(second, 'started').length > 0, {
      timeoutMs: 60_000,
      description: 'second started',
    });
    // Live events injected after the restart: one per shard.
    await sendLiveMessages(fleet, second);
    expect(
      lines(second, 'resumed')
        .map((line) => line['shardId'])
        .sort(),
    ).toEqual(SHARDS);
    const state = await simState(fleet);
    expect(state['identifies']).toBe(identifies);
    expect(lines(second, 'error')).toEqual([]);

    const all = jsonLines(second);
    for (const shardId of SHARDS) {
      const readyAt = all.findIndex((l) => l['type'] === 'guildReady' && l['shardId'] === shardId);
      const creates = all.filter((l) => l['type'] === 'guildCreate' && l['shardId'] === shardId);
      const messageAt = all.findIndex((l) => l['type'] === 'message' && l['shardId'] === shardId);
      expect(readyAt).toBeGreaterThanOrEqual(0);
      expect(all[readyAt]!['restored']).toBe(true);
      expect(all[readyAt]!['guilds']).toBe(simGuildIds(shardId).length);
      // Exactly the simulator's guilds of this shard, each once, all restored, before the live event.
      expect(creates.map((l) => l['id']).sort()).toEqual(simGuildIds(shardId).sort());
      expect(creates.every((l) => l['restored'] === true)).toBe(true);
      const lastCreateAt = all.lastIndexOf(creates[creates.length - 1]!);
      expect(readyAt).toBeLessThan(all.indexOf(creates[0]!));
      expect(lastCreateAt).toBeLessThan(messageAt);
      // Channels and roles as the simulator sent them (plus the channel created afterwards).
      for (const create of creates) {
        const original = sent.get(String(create['id']))!;
        const channels = [...(original['channels'] as Line[])];
        if (create['id'] === changedGuild) channels.push(added);
        expect(create['channels']).toEqual(channels);
        expect(create['roles']).toEqual(original['roles']);
      }
    }
    // The status read at the first live event counts the restored guilds.
    const status = lines(second, 'status')[0]!['shards'] as Array<{ id: number; guilds: number }>;
    for (const shardId of SHARDS)
      expect(status.find((shard) => shard.id === shardId)!.guilds).toBe(simGuildIds(shardId).length);
  });

  it('a corrupt snapshot record: nothing restored, an error line, shards serve', async () => {
    const fleet = await startFleet();
    const { first } = await serveAndSnapshot(fleet);
    first.kill('SIGTERM');
    expect(await first.exited).toEqual({ code: 0, signal: null });
    const kv = await snapshotKv(fleet);
    await kv.put(guildSnapshotGuildKey(SHARD_COUNT, 0, simGuildIds(0)[0]!), '{"v":1,"guild":"not a guild"}');

    const second = startProcess(fleet, 'second');
    await waitFor(() => lines(second, 'ready').length > 0, {
      timeoutMs: 60_000,
      description: 'second ready',
    });
    await sendLiveMessages(fleet, second);
    expect((await simState(fleet))['identifies']).toBe(2);
    const errors = lines(second, 'error').map((line) => String(line['message']));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/guild snapshot of shard 0 unusable/);
    // Shard 0 restores nothing; shard 1's snapshot is intact and restored.
    const creates = lines(second, 'guildCreate');
    expect(creates.filter((line) => line['shardId'] === 0)).toEqual([]);
    expect(lines(second, 'guildReady').filter((line) => line['shardId'] === 0)).toEqual([]);
    expect(
      creates
        .filter((line) => line['shardId'] === 1)
        .map((line) => line['id'])
        .sort(),
    ).toEqual(simGuildIds(1).sort());
  });
});
