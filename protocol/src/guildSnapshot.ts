import { z } from 'zod';

/**
 * Schemas of the guild snapshot records (the `guilds` bucket, see kv.ts): what a resumed shard
 * hands bot code in place of the READY and GUILD_CREATEs Discord does not send again. Readers
 * validate every record; a mismatch makes the whole shard's snapshot unusable (a partial cache
 * would look complete to a library), never a crash.
 */

const snowflake = z.string().regex(/^\d{1,20}$/);
const shardId = z.number().int().nonnegative();
const shardCount = z.number().int().positive();

/** A channel as GUILD_CREATE carries it: the fields a library keys on, the rest kept as sent. */
const channel = z.looseObject({ id: snowflake, type: z.number().int() });
/** A role as GUILD_CREATE carries it. */
const role = z.looseObject({ id: snowflake, name: z.string() });

/** One guild of a shard's snapshot: the GUILD_CREATE payload as the shard's events left it. */
export const GuildSnapshotGuildSchema = z.object({
  v: z.literal(1),
  shardId,
  shardCount,
  guild: z.looseObject({
    id: snowflake,
    channels: z.array(channel),
    roles: z.array(role),
    members: z.array(z.looseObject({})).optional(),
  }),
});

/** A guild record as stored in KV. */
export type GuildSnapshotGuild = z.infer<typeof GuildSnapshotGuildSchema>;

/**
 * A shard's snapshot manifest: which guilds it holds (a guild record not listed here is stale and
 * ignored; a listed one missing makes the snapshot unusable) and the bot user READY carried.
 */
export const GuildSnapshotManifestSchema = z
  .object({
    v: z.literal(1),
    shardId,
    shardCount,
    /** READY's `user` (a library builds its client user from it). */
    user: z.looseObject({ id: snowflake, username: z.string() }),
    /** READY's `application` (`id`, `flags`), when it had one. */
    application: z.looseObject({ id: snowflake }).nullable(),
    /** Guilds with a record under `<shardCount>.<shardId>.g.<id>`. */
    guilds: z.array(snowflake),
    /** Guilds of the shard that were unavailable (READY listed them, no GUILD_CREATE came). */
    unavailable: z.array(snowflake),
    /** When the writer last changed it (epoch ms, writer's clock; informational). */
    updatedAt: z.number().int().nonnegative(),
  })
  .refine((record) => record.shardId < record.shardCount, {
    message: 'shardId must be below shardCount',
    path: ['shardId'],
  });

/** A snapshot manifest as stored in KV. */
export type GuildSnapshotManifest = z.infer<typeof GuildSnapshotManifestSchema>;
