import { DISCORD_EPOCH, makeSnowflake } from './snowflake';

/**
 * Deterministic PRNG (mulberry32), so a seed reproduces the same guild ids. Numbers in [0, 1).
 * discluster-testing re-exports it for property-style tests.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * Each guild's text channels: `general` (the bot may do everything it does in the sim), `read-only`
 * (an overwrite denies it SEND_MESSAGES: 403 50013 on posting) and `hidden` (an overwrite denies
 * VIEW_CHANNEL: 403 50001 on every route). The snowflake's worker field tells them apart.
 */
export const CHANNEL_KINDS = ['general', 'read-only', 'hidden'] as const;
export type ChannelKind = (typeof CHANNEL_KINDS)[number];
const CHANNEL_WORKER: Readonly<Record<ChannelKind, number>> = { general: 1, 'read-only': 3, hidden: 4 };
const VIEW_CHANNEL = 1n << 10n;
const SEND_MESSAGES = 1n << 11n;
const MANAGE_CHANNELS = 1n << 4n;

// Guild creation times start here (2018) and step forward, so ids are unique and increasing.
const FIRST_GUILD_OFFSET_MS = 100_000_000_000;
const OFFSET_STEP_MS = 1000;

/**
 * The bot's guilds. Only the id's timestamp part is stored per guild: `(id >> 22)` is that
 * offset, so routing a guild to a shard is `offset % shardCount` without BigInt maths.
 */
export class GuildStore {
  private readonly offsets: number[] = [];
  private readonly ids: string[] = [];
  private readonly memberCounts: number[] = [];
  private readonly random: () => number;
  /** shardCount → guild indices per shard id, built on first use. */
  private readonly byShardCount = new Map<number, number[][]>();

  public constructor(count: number, seed: number) {
    this.random = seededRandom(seed);
    this.add(count);
  }

  public get size(): number {
    return this.ids.length;
  }

  /** Adds guilds (the bot joined them); returns their indices. */
  public add(count: number): number[] {
    const added: number[] = [];
    for (let i = 0; i < count; i++) {
      const index = this.ids.length;
      const offset =
        FIRST_GUILD_OFFSET_MS + index * OFFSET_STEP_MS + Math.floor(this.random() * OFFSET_STEP_MS);
      this.offsets.push(offset);
      this.ids.push(makeSnowflake(DISCORD_EPOCH + offset, 0, 0, index & 0xfff));
      this.memberCounts.push(2 + Math.floor(this.random() * 5000));
      for (const [shardCount, shards] of this.byShardCount) shards[offset % shardCount]!.push(index);
      added.push(index);
    }
    return added;
  }

  public id(index: number): string {
    return this.ids[index]!;
  }

  public shardOf(index: number, shardCount: number): number {
    return this.offsets[index]! % shardCount;
  }

  /** Indices of the guilds that `(guild_id >> 22) % shardCount` routes to `shardId`. */
  public guildsOfShard(shardId: number, shardCount: number): readonly number[] {
    let shards = this.byShardCount.get(shardCount);
    if (!shards) {
      shards = Array.from({ length: shardCount }, () => [] as number[]);
      for (let index = 0; index < this.offsets.length; index++)
        shards[this.offsets[index]! % shardCount]!.push(index);
      this.byShardCount.set(shardCount, shards);
    }
    return shards[shardId] ?? [];
  }

  /** A text channel of the guild, derived from the guild id so nothing extra is stored. */
  public channelId(index: number, kind: ChannelKind = 'general'): string {
    return makeSnowflake(DISCORD_EPOCH + this.offsets[index]!, CHANNEL_WORKER[kind], 0, index & 0xfff);
  }

  /** The index of a generated guild, or null for any other id. */
  public indexOfGuild(id: string): number | null {
    const parts = this.decode(id);
    return parts && parts.worker === 0 ? parts.index : null;
  }

  /** The guild and kind of a generated channel, or null for any other id. */
  public channelOf(id: string): { index: number; kind: ChannelKind } | null {
    const parts = this.decode(id);
    if (!parts) return null;
    const kind = CHANNEL_KINDS.find((k) => CHANNEL_WORKER[k] === parts.worker);
    return kind === undefined ? null : { index: parts.index, kind };
  }

  /** Inverts the id scheme: offset → index, then checks every field so a foreign id never matches. */
  private decode(id: string): { index: number; worker: number } | null {
    let value: bigint;
    try {
      value = BigInt(id);
    } catch {
      return null;
    }
    const offset = Number(value >> 22n);
    const index = Math.floor((offset - FIRST_GUILD_OFFSET_MS) / OFFSET_STEP_MS);
    if (index < 0 || index >= this.offsets.length || this.offsets[index] !== offset) return null;
    if (((value >> 12n) & 0x1fn) !== 0n || Number(value & 0xfffn) !== (index & 0xfff)) return null;
    return { index, worker: Number((value >> 17n) & 0x1fn) };
  }

  /** A guild channel object as REST and GUILD_CREATE carry it (`guild_id` only on REST). */
  public channel(index: number, kind: ChannelKind, botUserId: string): Record<string, unknown> {
    const guildId = this.ids[index]!;
    const overwrites =
      kind === 'general'
        ? // Lets the bot edit this channel (its @everyone permissions lack MANAGE_CHANNELS).
          [{ id: botUserId, type: 1, allow: String(MANAGE_CHANNELS), deny: '0' }]
        : [
            {
              id: guildId,
              type: 0,
              allow: '0',
              deny: String(kind === 'hidden' ? VIEW_CHANNEL : SEND_MESSAGES),
            },
          ];
    return {
      id: this.channelId(index, kind),
      type: 0,
      name: kind,
      position: CHANNEL_KINDS.indexOf(kind),
      permission_overwrites: overwrites,
      nsfw: false,
      parent_id: null,
      topic: null,
      rate_limit_per_user: 0,
    };
  }

  /** A GUILD_CREATE payload: the fields discord.js and @discordjs/ws users read, kept small for scale. */
  public guildCreate(index: number, botUserId: string, joinedAt: string): Record<string, unknown> {
    const id = this.ids[index]!;
    const memberCount = this.memberCounts[index]!;
    return {
      id,
      name: `Simulated Guild ${index}`,
      icon: null,
      splash: null,
      discovery_splash: null,
      owner_id: botUserId,
      afk_channel_id: null,
      afk_timeout: 300,
      verification_level: 0,
      default_message_notifications: 0,
      explicit_content_filter: 0,
      roles: [
        {
          id,
          name: '@everyone',
          color: 0,
          hoist: false,
          position: 0,
          permissions: '1071698660929',
          managed: false,
          mentionable: false,
          flags: 0,
        },
      ],
      emojis: [],
      features: [],
      mfa_level: 0,
      application_id: null,
      system_channel_id: null,
      system_channel_flags: 0,
      rules_channel_id: null,
      vanity_url_code: null,
      description: null,
      banner: null,
      premium_tier: 0,
      preferred_locale: 'en-US',
      public_updates_channel_id: null,
      nsfw_level: 0,
      premium_progress_bar_enabled: false,
      stickers: [],
      joined_at: joinedAt,
      large: memberCount > 250,
      unavailable: false,
      member_count: memberCount,
      voice_states: [],
      members: [],
      channels: CHANNEL_KINDS.map((kind) => this.channel(index, kind, botUserId)),
      threads: [],
      presences: [],
      stage_instances: [],
      guild_scheduled_events: [],
      soundboard_sounds: [],
    };
  }
}
