/**
 * Issue 17 §4: a cluster's `sourceAddress`. Its gateway sockets (through the relay the gateway and
 * resume URLs point at: @discordjs/ws 2.0.4 takes no socket option) and its REST sockets (undici's
 * `localAddress`, as @discordjs/rest's agent) leave from that address. All of 127.0.0.0/8 is local
 * on Linux, so the simulator on 127.0.0.1 sees them come from 127.0.0.2 without any network setup.
 */
import fs from 'node:fs';
import os from 'node:os';
import { Routes } from 'discord-api-types/v10';
import {
  startDiscordSimProcess,
  startNatsServer,
  waitFor,
  type DiscordSimProcess,
  type NatsServerHandle,
} from 'discluster-testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, connectNats, uniqueBot } from './helpers';
import { gatewayOf, inProcessCluster } from './standaloneHarness';

const TOKEN = 'source-address-TOKEN-91d0c2aa';
const SOURCE = '127.0.0.2';

interface State {
  resumes: number;
  resumeUrlConnections: number;
  liveSessions: Array<{ shard: [number, number]; remoteAddress: string }>;
  rest: { byClient: Record<string, number> };
}

let nats: NatsServerHandle;
let sim: DiscordSimProcess;
const cleanup = new Cleanup();
beforeAll(async () => {
  nats = await startNatsServer();
  sim = await startDiscordSimProcess({
    token: TOKEN,
    guilds: 8,
    shards: 2,
    'max-concurrency': 2,
    'identify-window-ms': 200,
  });
});
afterEach(async () => {
  await cleanup.run();
});
afterAll(async () => {
  await sim?.stop();
  await nats?.stop();
});

const state = async (): Promise<State> => (await sim.state()) as State;
const relayDirs = (): string[] =>
  fs.readdirSync(os.tmpdir()).filter((name) => name.startsWith('discluster-gw-'));

describe('sourceAddress', () => {
  it('binds the gateway sockets, their resumes and cluster.rest to the address; stop removes the relay', async () => {
    const nc = await connectNats(nats.url, 'cluster');
    cleanup.add(() => nc.close());
    const gateway = { ...(await gatewayOf(sim, TOKEN)), api: sim.rest };
    const dirsBefore = relayDirs();
    const cluster = inProcessCluster(
      { token: TOKEN, bot: uniqueBot('srcaddr'), gateway, shardCount: 2, nats: nc, sourceAddress: SOURCE },
      { identifyWindowMs: 200 },
    );
    cluster.on('error', () => undefined);
    cleanup.add(() => cluster.stop());
    await cluster.start();
    await waitFor(async () => (await state()).liveSessions.length === 2, {
      description: 'both shards live',
      timeoutMs: 60_000,
    });
    expect((await state()).liveSessions.map((live) => live.remoteAddress)).toEqual([SOURCE, SOURCE]);

    // A resume goes to the resume URL READY named (the simulator's /resume), through the relay too.
    const before = await state();
    await fetch(`${sim.admin}/shards/all/reconnect`, { method: 'POST' });
    await waitFor(
      async () => {
        const now = await state();
        return now.resumes >= before.resumes + 2 && now.liveSessions.length === 2;
      },
      { description: 'both shards resumed', timeoutMs: 60_000 },
    );
    const after = await state();
    expect(after.resumeUrlConnections).toBeGreaterThanOrEqual(before.resumeUrlConnections + 2);
    expect(after.liveSessions.map((live) => live.remoteAddress)).toEqual([SOURCE, SOURCE]);

    const [channel] = (await (await fetch(`${sim.admin}/channels?limit=1`)).json()) as Array<{ id: string }>;
    const fromTest = after.rest.byClient['127.0.0.1'] ?? 0;
    const fromSource = after.rest.byClient[SOURCE] ?? 0;
    await cluster.rest.post(Routes.channelMessages(channel!.id), { body: { content: 'from my address' } });
    await cluster.rest.get(Routes.channel(channel!.id));
    const rest = (await state()).rest.byClient;
    expect(rest[SOURCE]).toBe(fromSource + 2);
    expect(rest['127.0.0.1'] ?? 0).toBe(fromTest);

    expect(relayDirs().length).toBe(dirsBefore.length + 1);
    await cluster.stop();
    expect(relayDirs()).toEqual(dirsBefore);
  });

  it('refuses a standalone sourceAddress that is not an IP literal, before anything starts', () => {
    expect(() =>
      inProcessCluster({
        token: TOKEN,
        bot: 'srcaddr-bad',
        gateway: {
          url: 'ws://127.0.0.1:1',
          shards: 1,
          session_start_limit: { total: 1, remaining: 1, reset_after: 0, max_concurrency: 1 },
        },
        shardCount: 1,
        nats: { servers: 'nats://127.0.0.1:1' },
        sourceAddress: 'eth0',
      }),
    ).toThrow('Invalid option assignment.sourceAddress: expected an IPv4 or IPv6 address literal');
  });
});
