/**
 * Issue 15: `cluster.rest` on a real cluster (standalone, in this process): authorised once the
 * assignment is known, sent to the assignment's API base, never showing the token.
 */
import util from 'node:util';
import { Routes } from 'discord-api-types/v10';
import {
  startDiscordSimProcess,
  startNatsServer,
  type DiscordSimProcess,
  type NatsServerHandle,
} from 'discluster-testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, connectNats, uniqueBot } from './helpers';
import { gatewayOf, inProcessCluster } from './standaloneHarness';

const TOKEN = 'cluster-rest-TOKEN-5be1c0d4';

let nats: NatsServerHandle;
let sim: DiscordSimProcess;
const cleanup = new Cleanup();
beforeAll(async () => {
  nats = await startNatsServer();
  sim = await startDiscordSimProcess({ token: TOKEN, guilds: 4, shards: 1 });
});
afterEach(async () => {
  await cleanup.run();
});
afterAll(async () => {
  await sim?.stop();
  await nats?.stop();
});

describe('cluster.rest', () => {
  it('posts as the bot once started, to the assignment’s API, and never shows the token', async () => {
    const nc = await connectNats(nats.url, 'cluster');
    cleanup.add(() => nc.close());
    const gateway = { ...(await gatewayOf(sim, TOKEN)), api: sim.rest, restGlobalPerSecond: 20 };
    const cluster = inProcessCluster({
      token: TOKEN,
      bot: uniqueBot('crest'),
      gateway,
      shardCount: 1,
      nats: nc,
    });
    cluster.on('error', () => undefined);
    cleanup.add(() => cluster.stop());

    // Before start(): a clear refusal, not a request to discord.com.
    await expect(cluster.rest.get(Routes.user('@me'))).rejects.toThrow(/token|start\(\)/);

    await cluster.start();
    const [channel] = (await (await fetch(`${sim.admin}/channels?limit=1`)).json()) as Array<{ id: string }>;
    const message = (await cluster.rest.post(Routes.channelMessages(channel!.id), {
      body: { content: 'pong', nonce: 'cluster-rest-1' },
    })) as { id: string; content: string };
    expect(message.content).toBe('pong');
    const stored = (await (await fetch(`${sim.admin}/messages?channel_id=${channel!.id}`)).json()) as Array<{
      nonce: string;
    }>;
    expect(stored.map((m) => m.nonce)).toEqual(['cluster-rest-1']);

    for (const shown of [
      util.inspect(cluster.rest, { depth: Infinity, showHidden: true }),
      util.inspect(cluster, { depth: Infinity, showHidden: true }),
      JSON.stringify(cluster),
    ])
      expect(shown).not.toContain(TOKEN);
  });

  it('a 401 from Discord stops REST and is reported once as a fatal 4004', async () => {
    // REST goes to a second simulator that does not know the token (a token reset, as REST sees it);
    // the shards stay on the first, which does.
    const other = await startDiscordSimProcess({ token: 'another-token', guilds: 1, shards: 1 });
    cleanup.add(() => other.stop());
    const nc = await connectNats(nats.url, 'cluster');
    cleanup.add(() => nc.close());
    const gateway = { ...(await gatewayOf(sim, TOKEN)), api: other.rest };
    const cluster = inProcessCluster({
      token: TOKEN,
      bot: uniqueBot('c401'),
      gateway,
      shardCount: 1,
      nats: nc,
    });
    cluster.on('error', () => undefined);
    const fatal: Array<{ code: number; reason: string }> = [];
    cluster.on('fatal', (close) => fatal.push(close));
    cleanup.add(() => cluster.stop());
    await cluster.start();

    await expect(cluster.rest.get(Routes.user('@me'))).rejects.toMatchObject({ status: 401 });
    await expect(cluster.rest.get(Routes.user('@me'))).rejects.toThrow();
    expect(fatal).toEqual([{ shardId: 0, code: 4004, reason: expect.stringMatching(/401 to a REST call/) }]);
    // One invalid request reached Discord; the second call never left the process.
    const state = await other.state();
    expect((state['rest'] as { invalid: number }).invalid).toBe(1);
    // The shards were not touched: the first simulator still serves them.
    expect(cluster.status().every((shard) => shard.state === 'ready')).toBe(true);
  });
});
