import type { BucketSpec } from './buckets';
import { noMajor, type RouteDef } from './router';
import type { World } from './world';

export interface GatewayInfo {
  readonly url: () => string;
  readonly bot: () => Record<string, unknown>;
}

export const USERS_ME_BUCKET: BucketSpec = { id: 'users-me', limit: 10, periodMs: 1000 };

/** What a shard manager asks before connecting: `/gateway`, `/gateway/bot`, `/users/@me`. */
export function gatewayRoutes(world: World, gateway: GatewayInfo, gatewayBotBucket: BucketSpec): RouteDef[] {
  const common = { major: noMajor, interaction: false, body: false, method: 'GET' } as const;
  return [
    {
      ...common,
      path: /^\/gateway$/,
      bucket: null,
      auth: false,
      handle: () => ({ status: 200, body: { url: gateway.url() } }),
    },
    {
      ...common,
      path: /^\/gateway\/bot$/,
      bucket: gatewayBotBucket,
      auth: true,
      handle: () => ({ status: 200, body: gateway.bot() }),
    },
    {
      ...common,
      path: /^\/users\/@me$/,
      bucket: USERS_ME_BUCKET,
      auth: true,
      handle: () => ({ status: 200, body: world.botUser() }),
    },
  ];
}
