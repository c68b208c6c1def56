/**
 * Promise 4 (issues 14 §4 and 15 §3): nothing the SDK exposes reveals the bot token when bot code
 * logs it. `util.inspect` (every depth, hidden properties included) and `JSON.stringify` of a
 * running cluster never contain it.
 */
import util from 'node:util';
import type { NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { connectNats, uniqueBot } from './helpers';
import { gatewayOf, inProcessCluster, useNatsAndSim } from './standaloneHarness';

const TOKEN = 'secrecy-test-TOKEN-7f3a91c2';

const env = useNatsAndSim(TOKEN, { guilds: 10, shards: 2, 'max-concurrency': 2, 'identify-window-ms': 200 });

describe('the bot token', () => {
  it('never shows in util.inspect or JSON.stringify of a cluster, before start or while it serves', async () => {
    const gateway = await gatewayOf(env.sim, TOKEN);
    for (const nats_ of ['own connection', 'connection options'] as const) {
      let nc: NatsConnection | null = null;
      const cluster = inProcessCluster(
        {
          token: TOKEN,
          bot: uniqueBot('secret'),
          gateway: { ...gateway, api: env.sim.rest },
          shardCount: 2,
          nats:
            nats_ === 'own connection'
              ? (nc = await connectNats(env.nats.url, 'secrecy'))
              : { servers: env.nats.url },
        },
        { identifyWindowMs: 200 },
      );
      const revealed = (): string[] => {
        const seen: string[] = [];
        if (util.inspect(cluster, { depth: Infinity, showHidden: true }).includes(TOKEN))
          seen.push('inspect');
        if (JSON.stringify(cluster).includes(TOKEN)) seen.push('JSON');
        if (util.inspect(cluster.ipc, { depth: Infinity, showHidden: true }).includes(TOKEN))
          seen.push('ipc');
        return seen;
      };
      expect(revealed(), `${nats_}, before start`).toEqual([]);
      await cluster.start();
      expect(revealed(), `${nats_}, serving`).toEqual([]);
      expect(JSON.parse(JSON.stringify(cluster))).toMatchObject({ clusterId: 0, mode: 'standalone' });
      await cluster.stop();
      await nc?.close();
    }
  });
});
