/** The author of a {@link userMessage}: a user, not a bot. */
export interface MessageAuthor {
  readonly id: string;
  readonly username: string;
  readonly global_name?: string | null;
}

/** What a {@link userMessage} is made of. */
export interface UserMessageInput {
  readonly id: string;
  readonly channelId: string;
  readonly guildId: string;
  readonly author: MessageAuthor;
  readonly content: string;
  readonly nonce?: string;
  /** ISO time; default now. */
  readonly timestamp?: string;
}

/**
 * A MESSAGE_CREATE's `d` as Discord sends it for a user's message in a guild: every field
 * discord.js and @discordjs/core read of one. The simulator's traffic, the demo's questions and
 * tests that dispatch a message build it here.
 */
export function userMessage(input: UserMessageInput): Record<string, unknown> {
  const timestamp = input.timestamp ?? new Date().toISOString();
  return {
    id: input.id,
    type: 0,
    channel_id: input.channelId,
    guild_id: input.guildId,
    author: {
      id: input.author.id,
      username: input.author.username,
      discriminator: '0',
      global_name: input.author.global_name ?? null,
      avatar: null,
    },
    member: { roles: [], joined_at: timestamp, deaf: false, mute: false, flags: 0 },
    content: input.content,
    timestamp,
    edited_timestamp: null,
    tts: false,
    mention_everyone: false,
    mentions: [],
    mention_roles: [],
    attachments: [],
    embeds: [],
    pinned: false,
    ...(input.nonce === undefined ? {} : { nonce: input.nonce }),
  };
}
