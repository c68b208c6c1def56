import { botUserObject } from '../botUser';
import type { ChannelKind, GuildStore } from '../guilds';
import { isSnowflake } from '../snowflake';

/** A channel as REST sees it: a generated one, or one a dispatched event mentioned. */
export interface ResolvedChannel {
  readonly id: string;
  readonly guildId: string | null;
  readonly kind: ChannelKind;
}

const MAX_LEARNED = 100_000;

/**
 * What exists for REST: the generated guilds with their channels, the bot and the traffic author
 * (members of every guild), plus guilds, channels and users that admin-dispatched events mention, so
 * a bot can answer an injected event. Anything else is unknown (404 with Discord's code).
 */
export class World {
  private readonly learnedChannels = new Map<string, string | null>();
  private readonly learnedGuilds = new Set<string>();
  /** user id → guild ids it was seen in. */
  private readonly learnedUsers = new Map<string, Set<string>>();
  private readonly channelEdits = new Map<string, Record<string, unknown>>();

  public constructor(
    public readonly guilds: GuildStore,
    public readonly botUserId: string,
    private readonly everywhereUsers: readonly string[],
  ) {}

  public botUser(): Record<string, unknown> {
    return botUserObject(this.botUserId);
  }

  public channel(id: string): ResolvedChannel | null {
    const generated = this.guilds.channelOf(id);
    if (generated) return { id, guildId: this.guilds.id(generated.index), kind: generated.kind };
    if (!this.learnedChannels.has(id)) return null;
    return { id, guildId: this.learnedChannels.get(id) ?? null, kind: 'general' };
  }

  public channelObject(channel: ResolvedChannel): Record<string, unknown> {
    const generated = this.guilds.channelOf(channel.id);
    const base = generated
      ? this.guilds.channel(generated.index, generated.kind, this.botUserId)
      : {
          id: channel.id,
          type: channel.guildId === null ? 1 : 0,
          name: 'channel',
          position: 0,
          permission_overwrites: [],
          nsfw: false,
          parent_id: null,
          topic: null,
          rate_limit_per_user: 0,
        };
    return {
      ...base,
      ...(channel.guildId === null ? {} : { guild_id: channel.guildId }),
      ...this.channelEdits.get(channel.id),
    };
  }

  public editChannel(id: string, fields: Record<string, unknown>): void {
    this.channelEdits.set(id, { ...this.channelEdits.get(id), ...fields });
  }

  /** A generated guild's index, -1 for a learned guild, null when unknown. */
  public guild(id: string): number | null {
    const index = this.guilds.indexOfGuild(id);
    if (index !== null) return index;
    return this.learnedGuilds.has(id) ? -1 : null;
  }

  public membership(guildId: string, userId: string): 'member' | 'not-member' | 'unknown-user' {
    if (userId === this.botUserId || this.everywhereUsers.includes(userId)) return 'member';
    const guilds = this.learnedUsers.get(userId);
    if (!guilds) return 'unknown-user';
    return guilds.has(guildId) ? 'member' : 'not-member';
  }

  public user(userId: string): Record<string, unknown> {
    if (userId === this.botUserId) return this.botUser();
    return {
      id: userId,
      username: `user-${userId.slice(-6)}`,
      discriminator: '0',
      global_name: null,
      avatar: null,
    };
  }

  /** Learns the guild, channel and users an admin-dispatched event mentions. */
  public learn(data: Record<string, unknown>): void {
    if (this.learnedChannels.size + this.learnedGuilds.size + this.learnedUsers.size > MAX_LEARNED) return;
    const guildId = isSnowflake(data['guild_id']) ? data['guild_id'] : null;
    if (guildId !== null && this.guilds.indexOfGuild(guildId) === null) this.learnedGuilds.add(guildId);
    const channel = data['channel'] as { id?: unknown } | undefined;
    const channelId = isSnowflake(data['channel_id']) ? data['channel_id'] : channel?.id;
    if (isSnowflake(channelId) && !this.guilds.channelOf(channelId))
      this.learnedChannels.set(channelId, guildId);
    const member = data['member'] as { user?: { id?: unknown } } | undefined;
    for (const candidate of [
      (data['author'] as { id?: unknown } | undefined)?.id,
      (data['user'] as { id?: unknown } | undefined)?.id,
      member?.user?.id,
    ]) {
      if (!isSnowflake(candidate)) continue;
      let guilds = this.learnedUsers.get(candidate);
      if (!guilds) this.learnedUsers.set(candidate, (guilds = new Set()));
      if (guildId !== null) guilds.add(guildId);
    }
  }
}
