// bench/sdk/dispatch-client.mjs as the peer benchmarks use it: one process holding shards as a bare
// `@discordjs/ws` WebSocketManager ("bare") or a standalone discluster-sdk `Cluster` ("cluster").
import path from 'node:path';
import { forkChild, here, stopChild } from '../sdk/common.mjs';
import { sleep } from './log.mjs';
import { SIM_TOKEN } from './sim.mjs';

const CLIENT = path.join(here, 'dispatch-client.mjs');

/**
 * Starts a client process for shards 0..shards-1 and resolves once every shard is READY and every
 * guild of its READY arrived. `gateway` is the simulator's GET /gateway/bot; `natsUrl` and `bot` are
 * for the cluster variant.
 */
export async function startDispatchClient(
  variant,
  { gateway, natsUrl, bot, shards, intents, identifyWindowMs, readyTimeoutMs = 300_000 },
) {
  const child = forkChild(CLIENT, [variant], `${variant} client`);
  const stop = () => stopChild(child);
  try {
    await child.waitFor((m) => m?.hello, 30_000, 'hello');
    const shardIds = Array.from({ length: shards }, (_, i) => i);
    await child.send({
      cmd: 'start',
      config: {
        token: SIM_TOKEN,
        intents,
        compression: 'zlib-stream',
        shardIds,
        shardCount: shards,
        identifyWindowMs,
        gateway,
        natsUrl,
        assignment: {
          clusterId: 0,
          shardIds,
          shardCount: shards,
          clusterIds: [0],
          bot,
          token: SIM_TOKEN,
          gateway,
        },
      },
    });
    const started = await child.waitFor((m) => m?.started || m?.startError, 60_000, 'start');
    if (started.startError) throw new Error(`${variant} client: ${started.startError}`);
    const stats = async () => (await child.request({ cmd: 'stats' })).stats;
    let last;
    for (const deadline = Date.now() + readyTimeoutMs; ;) {
      last = await stats();
      if (last.readyShards === shards && last.guildsReceived >= last.guildsExpected) break;
      if (Date.now() > deadline)
        throw new Error(`${variant} client: not ready with every guild within ${readyTimeoutMs} ms`);
      await sleep(200);
    }
    return {
      child,
      pid: child.pid,
      guildsReceived: last.guildsReceived,
      stats,
      traffic: async (id) => (await stats()).traffic[id],
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
