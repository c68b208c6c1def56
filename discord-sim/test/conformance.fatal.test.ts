/**
 * Conformance: each fatal gateway close code reaches @discordjs/ws as its documented `error`, and
 * the shard stays down — no reconnect, no further IDENTIFY spent.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocketShardStatus } from '@discordjs/ws';
import { GatewayIntentBits } from 'discord-api-types/v10';
import { afterEach, describe, expect, it } from 'vitest';
import type { DiscordSimOptions } from '../src';
import { Harness, waitFor, type ManagerOptions } from './djs-harness';

// @discordjs/ws waits 500 ms before any reconnect; three times that shows it is not coming back.
const QUIET_MS = 1500;

let harness = new Harness();
afterEach(async () => {
  await harness.cleanup();
  harness = new Harness();
});

interface FatalCase {
  code: number;
  error: string;
  sim?: Partial<DiscordSimOptions>;
  manager?: Partial<ManagerOptions>;
  shardCount?: number;
}

const FATAL_ON_CONNECT: FatalCase[] = [
  // REST still takes the sim's token (from the REST client); only IDENTIFY carries the wrong one.
  { code: 4004, error: 'Authentication failed', manager: { token: 'not-the-bot-token' } },
  { code: 4010, error: 'Invalid shard', sim: { largeBotShardFactor: 2 }, shardCount: 3 },
  { code: 4011, error: 'Sharding is required', sim: { guilds: 100, maxGuildsPerShard: 10 } },
  { code: 4012, error: 'Used an invalid API version', manager: { version: '8' } },
  { code: 4013, error: 'Used invalid intents', manager: { intents: GatewayIntentBits.Guilds | (1 << 22) } },
  {
    code: 4014,
    error: 'Used disallowed intents',
    sim: { allowedPrivilegedIntents: 0 },
    manager: { intents: GatewayIntentBits.Guilds | GatewayIntentBits.GuildMembers },
  },
];

describe('fatal close codes on connect', () => {
  it.each(FATAL_ON_CONNECT)(
    '$code → error "$error", the shard does not reconnect',
    async ({ code, error, sim: simOptions, manager, shardCount = 1 }) => {
      const sim = await harness.sim({ guilds: 20, shards: shardCount, ...simOptions });
      const client = harness.manager(sim, { intents: GatewayIntentBits.Guilds, shardCount, ...manager });
      // connect() only settles on READY, which never comes here.
      client.connect().catch(() => {});

      await waitFor(() => client.received.errors.length >= shardCount, `${shardCount} error event(s)`);
      const first = await sim.state();
      await sleep(QUIET_MS);
      const later = await sim.state();

      expect(client.received.errors.map(({ error: e }) => e.message)).toEqual(Array(shardCount).fill(error));
      expect(client.received.errors.map(({ shardId }) => shardId).sort()).toEqual([
        ...Array(shardCount).keys(),
      ]);
      expect(client.received.closed.map(({ code: closed }) => closed)).toEqual(Array(shardCount).fill(code));
      expect(later.serverCloses[String(code)]).toBe(shardCount);
      expect(later.identifies).toBe(0);
      expect(later.identifies).toBe(first.identifies);
      // One connection per shard, ever: nobody dialled again.
      expect(later.connectionsOpened).toBe(shardCount);
      expect(later.connectionsOpened).toBe(first.connectionsOpened);
      expect(later.liveSessions).toEqual([]);
      expect(later.sessionStartRemaining).toBe(1000);
      expect((later as unknown as { rest: { unauthorized: number } }).rest.unauthorized).toBe(0);
      expect([...(await client.manager.fetchStatus()).values()]).toEqual(
        Array(shardCount).fill(WebSocketShardStatus.Idle),
      );
      expect(client.received.ready.size).toBe(0);
    },
  );
});

describe('fatal close codes on a live session (admin close)', () => {
  it.each([
    { code: 4004, error: 'Authentication failed' },
    { code: 4010, error: 'Invalid shard' },
    { code: 4011, error: 'Sharding is required' },
    { code: 4012, error: 'Used an invalid API version' },
    { code: 4013, error: 'Used invalid intents' },
    { code: 4014, error: 'Used disallowed intents' },
  ])('POST /shards/0/close?code=$code → error "$error", the shard stays down', async ({ code, error }) => {
    const sim = await harness.sim({ guilds: 20, shards: 2 });
    const client = harness.manager(sim, { intents: GatewayIntentBits.Guilds, shardCount: 2 });
    await client.connect();
    const before = await sim.state();
    expect(before.identifies).toBe(2);

    expect(await sim.post(`/shards/0/close?code=${code}`)).toEqual({ closed: 1, code });
    await waitFor(() => client.received.errors.length >= 1, 'error event');
    await sleep(QUIET_MS);
    const later = await sim.state();

    expect(client.received.errors.map(({ shardId, error: e }) => [shardId, e.message])).toEqual([[0, error]]);
    expect(later.identifies).toBe(before.identifies);
    expect(later.resumes).toBe(before.resumes);
    expect(later.connectionsOpened).toBe(before.connectionsOpened);
    expect(later.liveSessions.map((live) => live.shard)).toEqual([[1, 2]]);
    // A fatal close ends the session too: only shard 1's remains.
    expect((later as unknown as { sessions: number }).sessions).toBe(1);
    const status = await client.manager.fetchStatus();
    expect([status.get(0), status.get(1)]).toEqual([WebSocketShardStatus.Idle, WebSocketShardStatus.Ready]);
  });
});
