/**
 * Runs the standalone bot. It starts nothing else: a nats-server and a gateway (discord-sim, or
 * Discord) must already be running. Configuration comes from the environment:
 *
 * | variable              | required | meaning                                                                 |
 * | --------------------- | -------- | ----------------------------------------------------------------------- |
 * | `DISCORD_TOKEN_FILE`  | yes      | path of a file holding the bot token (never put the token itself in env) |
 * | `DISCORD_API`         | no       | REST base URL; default `https://discord.com/api/v10`; discord-sim prints its `rest` URL |
 * | `NATS_URL`            | no       | default `nats://127.0.0.1:4222`                                         |
 * | `DISCLUSTER_BOT`      | no       | bot namespace for NATS subjects and KV buckets; default `default`       |
 * | `CLUSTER_ID`          | no       | this cluster's id; default `0`                                          |
 * | `CLUSTER_IDS`         | no       | every cluster id, comma-separated (whom `requestAll` asks); default `CLUSTER_ID` |
 * | `SHARD_COUNT`         | no       | total shards; default `shards` from GET /gateway/bot                    |
 * | `SHARD_IDS`           | no       | this cluster's shards, comma-separated; default all of them             |
 * | `IDENTIFY_WINDOW_MS`  | no       | only against discord-sim started with a shorter `--identify-window-ms`  |
 *
 * Build with `npx tsc -b` at the repository root, then `node examples/dist/standalone-bot/run.js`.
 */
import { readFileSync } from 'node:fs';
import type { APIGatewayBotInfo } from 'discord-api-types/v10';
import { startBot } from './bot';

function integerList(name: string, fallback: number[]): number[] {
  const text = process.env[name];
  if (text === undefined || text.trim() === '') return fallback;
  return text.split(',').map((part) => {
    const value = Number(part.trim());
    if (!Number.isSafeInteger(value) || value < 0)
      throw new Error(`${name}: "${part}" is not a whole number ≥ 0`);
    return value;
  });
}

function integer(name: string, fallback: number): number {
  const [value] = integerList(name, [fallback]);
  return value ?? fallback;
}

async function main(): Promise<void> {
  const tokenFile = process.env['DISCORD_TOKEN_FILE'];
  if (!tokenFile) throw new Error('DISCORD_TOKEN_FILE must name a file holding the bot token');
  const token = readFileSync(tokenFile, 'utf8').trim();
  const api = process.env['DISCORD_API'] ?? 'https://discord.com/api/v10';
  const response = await fetch(`${api}/gateway/bot`, { headers: { authorization: `Bot ${token}` } });
  if (!response.ok) throw new Error(`GET ${api}/gateway/bot answered HTTP ${response.status}`);
  const gateway = (await response.json()) as APIGatewayBotInfo;

  const shardCount = integer('SHARD_COUNT', gateway.shards);
  const clusterId = integer('CLUSTER_ID', 0);
  const windowText = process.env['IDENTIFY_WINDOW_MS'];
  await startBot({
    natsUrl: process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222',
    assignment: {
      clusterId,
      clusterIds: integerList('CLUSTER_IDS', [clusterId]),
      shardCount,
      shardIds: integerList(
        'SHARD_IDS',
        Array.from({ length: shardCount }, (_, id) => id),
      ),
      bot: process.env['DISCLUSTER_BOT'] ?? 'default',
      token,
      gateway,
    },
    ...(windowText ? { identifyWindowMs: integer('IDENTIFY_WINDOW_MS', 5000) } : {}),
  });
}

main().catch((error: unknown) => {
  // Messages only: a stack or an options dump could carry the token.
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
  process.exit(1);
});
