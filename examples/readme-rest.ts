import type { Cluster } from 'discluster-sdk';
import { Routes } from 'discord-api-types/v10';

// cluster.rest is @discordjs/rest's REST: authorised once start() has the assignment, and every
// call stays inside the fleet's shared rate limits.
export async function pong(cluster: Cluster, channelId: string): Promise<void> {
  await cluster.start();
  await cluster.rest.post(Routes.channelMessages(channelId), { body: { content: 'pong' } });
}
