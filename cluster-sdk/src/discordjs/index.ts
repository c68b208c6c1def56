/**
 * `discluster-sdk/discord.js`: a discord.js `Client` on a cluster's shards. Loaded only by bots that
 * import this subpath; discord.js is an optional peer dependency of the SDK.
 */
export { createDiscordJsClient } from './createDiscordJsClient.js';
export type { DiscordJsClientOptions } from './createDiscordJsClient.js';
export { ClusterShardingStrategy } from './ClusterShardingStrategy.js';
