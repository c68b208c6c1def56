/**
 * `examples/standalone-bot` as a user runs it: the built `run.js`, configured by environment
 * variables (the token by file), against a real nats-server and discord-sim in its own process.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnNode, startDiscordSimProcess, waitFor, type SpawnedProcess } from 'discluster-testing';
import { describe, expect, it } from 'vitest';
import { ClusterIpc } from '../src';
import { uniqueBot } from './helpers';
import { jsonLines, useStandaloneHarness, type JsonLine as Line } from './standaloneHarness';

// Built by `npx tsc -b` (the examples project); `npm test` builds first.
const RUN = path.resolve(__dirname, '..', '..', 'examples', 'dist', 'standalone-bot', 'run.js');
const TOKEN = 'example-bot-token';

const harness = useStandaloneHarness('discluster-example-');

function logged(proc: SpawnedProcess, event: string): Line[] {
  return jsonLines(proc).filter((line) => line['event'] === event);
}

/** A guild id that `(guild_id >> 22) % shardCount` routes to `shardId`. */
const guildOnShard = (shardId: number, shardCount: number): string =>
  String((1_000_000n * BigInt(shardCount) + BigInt(shardId)) << 22n);

describe('examples/standalone-bot', () => {
  it('gets ready, counts messages per guild, answers `stats` over IPC, and exits 0 on SIGTERM', async () => {
    const sim = await startDiscordSimProcess({
      token: TOKEN,
      guilds: 100,
      shards: 2,
      'max-concurrency': 2,
      'identify-window-ms': 200,
    });
    harness.sims.push(sim);
    const tokenFile = path.join(harness.tmp, 'token');
    fs.writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    const bot = uniqueBot('ex');
    const proc = spawnNode(RUN, [], {
      env: {
        DISCORD_TOKEN_FILE: tokenFile,
        DISCORD_API: sim.rest,
        NATS_URL: harness.nats.url,
        DISCLUSTER_BOT: bot,
        CLUSTER_ID: '3',
        IDENTIFY_WINDOW_MS: '200',
      },
    });
    await waitFor(() => logged(proc, 'started').length === 1, {
      timeoutMs: 60_000,
      description: 'the example bot started',
    });
    expect(logged(proc, 'ready')).toEqual([{ event: 'ready', clusterId: 3, shardIds: [0, 1] }]);

    const guilds = [guildOnShard(0, 2), guildOnShard(1, 2)];
    const counts = [3, 2];
    for (const [i, guildId] of guilds.entries()) {
      for (let n = 0; n < counts[i]!; n++) {
        const response = await fetch(`${sim.admin}/dispatch`, {
          method: 'POST',
          body: JSON.stringify({
            t: 'MESSAGE_CREATE',
            d: { id: `${guildId}${n}`, guild_id: guildId, channel_id: guildId, content: 'hi' },
          }),
        });
        expect(response.ok).toBe(true);
      }
    }

    const nc = await harness.connectNats('example-test');
    const ipc = new ClusterIpc({ nc, bot, clusterId: 99, clusterIds: () => [3] });
    await ipc.start();
    const expected = { [guilds[0]!]: 3, [guilds[1]!]: 2 };
    let stats: Line = {};
    await waitFor(
      async () => {
        stats = (await ipc.request(3, 'stats')) as Line;
        return JSON.stringify(stats['messagesByGuild']) === JSON.stringify(expected);
      },
      { description: 'stats counting 3 + 2 messages' },
    );
    expect(stats['clusterId']).toBe(3);
    expect((stats['shards'] as Line[]).map((s) => [s['id'], s['state']])).toEqual([
      [0, 'ready'],
      [1, 'ready'],
    ]);
    ipc.close();

    expect(proc.kill('SIGTERM')).toBe(true);
    expect(await proc.exited).toEqual({ code: 0, signal: null });
    expect(`${proc.lines.join('\n')}${proc.stderr()}`).not.toContain(TOKEN);
    expect(logged(proc, 'error')).toEqual([]);
  });
});
