/**
 * Issue 14 §4: `buildIdentifyThrottler` and `buildSessionStore` are seams like @discordjs/ws's
 * `build*` options. A cluster built with its own throttler and store runs its shards through them
 * (against a real discord-sim and nats-server), and a second cluster on the same store RESUMEs.
 */
import type { SessionInfo } from '@discordjs/ws';
import { describe, expect, it } from 'vitest';
import { LocalIdentifyThrottler, type ClusterBuildContext, type ClusterSessionStore } from '../src';
import { uniqueBot } from './helpers';
import { gatewayOf, inProcessCluster, useNatsAndSim } from './standaloneHarness';

const TOKEN = 'seams-test-token';

const env = useNatsAndSim(TOKEN, { guilds: 20, shards: 4, 'max-concurrency': 2, 'identify-window-ms': 200 });

/** Sessions in a Map: what a bot might keep in Redis instead. */
class MapSessionStore implements ClusterSessionStore {
  public constructor(public readonly sessions: Map<number, SessionInfo>) {}
  public async retrieveSessionInfo(shardId: number): Promise<SessionInfo | null> {
    return this.sessions.get(shardId) ?? null;
  }
  public updateSessionInfo(shardId: number, info: SessionInfo | null): void {
    if (info) this.sessions.set(shardId, info);
    else this.sessions.delete(shardId);
  }
  public async close(): Promise<void> {}
}

describe('Cluster build seams', () => {
  it('runs its shards through the built throttler and session store; a new cluster resumes from that store', async () => {
    const gateway = await gatewayOf(env.sim, TOKEN);
    const bot = uniqueBot('seams');
    const sessions = new Map<number, SessionInfo>();
    const waits: number[] = [];
    const contexts: ClusterBuildContext[] = [];
    const cluster = () =>
      inProcessCluster(
        { token: TOKEN, bot, gateway, shardCount: 4, nats: { servers: env.nats.url } },
        {
          buildIdentifyThrottler: async (context) => {
            contexts.push(context);
            const local = new LocalIdentifyThrottler(2, 200, { safetyMarginMs: 50 });
            return {
              waitForIdentify: (shardId, signal) => {
                waits.push(shardId);
                return local.waitForIdentify(shardId, signal);
              },
              close: () => local.close(),
            };
          },
          buildSessionStore: async () => new MapSessionStore(sessions),
        },
      );

    const first = cluster();
    await first.start();
    expect(waits.sort()).toEqual([0, 1, 2, 3]);
    expect([...sessions.keys()].sort()).toEqual([0, 1, 2, 3]);
    // The seams get the assignment without the token.
    expect(JSON.stringify(contexts[0]?.assignment)).not.toContain(TOKEN);
    expect(contexts[0]?.assignment).toMatchObject({ clusterId: 0, shardCount: 4, bot });
    const before = await env.sim.state();
    await first.stop();

    const second = cluster();
    await second.start();
    const after = await env.sim.state();
    expect(after['identifies']).toBe(before['identifies']);
    expect(after['resumes'] - before['resumes']).toBe(4);
    expect(waits).toHaveLength(4);
    await second.stop();
  });
});
