import { isSnowflake } from '../snowflake';
import type { BucketSpec } from './buckets';
import { notSnowflake, unknown } from './errors';
import { firstParam, type RouteDef } from './router';
import type { World } from './world';

export const GUILD_BUCKETS = {
  getGuild: { id: 'guild-get', limit: 10, periodMs: 1000 },
  getMember: { id: 'member-get', limit: 10, periodMs: 1000 },
} as const satisfies Record<string, BucketSpec>;

// Fields of GUILD_CREATE that only the gateway sends; the REST guild object has none of them.
const GATEWAY_ONLY = [
  'joined_at',
  'large',
  'unavailable',
  'member_count',
  'voice_states',
  'members',
  'channels',
  'threads',
  'presences',
  'stage_instances',
  'guild_scheduled_events',
  'soundboard_sounds',
];

/** `GET /guilds/{id}` and `GET /guilds/{id}/members/{uid}`. */
export function guildRoutes(world: World, joinedAt: string): RouteDef[] {
  const guildIndex = (id: string): number => {
    if (!isSnowflake(id)) throw notSnowflake('guild_id', id);
    const index = world.guild(id);
    if (index === null) throw unknown('guild');
    return index;
  };
  const common = { major: firstParam, auth: true, interaction: false, body: false } as const;
  return [
    {
      ...common,
      method: 'GET',
      path: /^\/guilds\/([^/]+)$/,
      bucket: GUILD_BUCKETS.getGuild,
      handle: ({ params }) => {
        const id = params[0]!;
        const index = guildIndex(id);
        if (index < 0)
          return {
            status: 200,
            body: { id, name: 'Guild', icon: null, owner_id: world.botUserId, roles: [], features: [] },
          };
        const guild = world.guilds.guildCreate(index, world.botUserId, joinedAt);
        for (const key of GATEWAY_ONLY) delete guild[key];
        return { status: 200, body: guild };
      },
    },
    {
      ...common,
      method: 'GET',
      path: /^\/guilds\/([^/]+)\/members\/([^/]+)$/,
      bucket: GUILD_BUCKETS.getMember,
      handle: ({ params }) => {
        const guildId = params[0]!;
        guildIndex(guildId);
        const userId = params[1]!;
        if (!isSnowflake(userId)) throw notSnowflake('user_id', userId);
        const membership = world.membership(guildId, userId);
        if (membership === 'unknown-user') throw unknown('user');
        if (membership === 'not-member') throw unknown('member');
        return {
          status: 200,
          body: {
            user: world.user(userId),
            nick: null,
            avatar: null,
            roles: [],
            joined_at: joinedAt,
            premium_since: null,
            deaf: false,
            mute: false,
            flags: 0,
            pending: false,
          },
        };
      },
    },
  ];
}
