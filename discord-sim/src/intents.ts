/** Gateway intent bits (Discord's "List of Intents"). */
export const Intent = {
  Guilds: 1 << 0,
  GuildMembers: 1 << 1,
  GuildModeration: 1 << 2,
  GuildExpressions: 1 << 3,
  GuildIntegrations: 1 << 4,
  GuildWebhooks: 1 << 5,
  GuildInvites: 1 << 6,
  GuildVoiceStates: 1 << 7,
  GuildPresences: 1 << 8,
  GuildMessages: 1 << 9,
  GuildMessageReactions: 1 << 10,
  GuildMessageTyping: 1 << 11,
  DirectMessages: 1 << 12,
  DirectMessageReactions: 1 << 13,
  DirectMessageTyping: 1 << 14,
  MessageContent: 1 << 15,
  GuildScheduledEvents: 1 << 16,
  AutoModerationConfiguration: 1 << 20,
  AutoModerationExecution: 1 << 21,
  GuildMessagePolls: 1 << 24,
  DirectMessagePolls: 1 << 25,
} as const;

export const ALL_INTENTS: number = Object.values(Intent).reduce((mask, bit) => mask | bit, 0);

export const PRIVILEGED_INTENTS: number = Intent.GuildMembers | Intent.GuildPresences | Intent.MessageContent;

/** Bits outside the documented set make an IDENTIFY invalid (4013). */
export function hasUnknownIntentBits(intents: number): boolean {
  return (intents & ~ALL_INTENTS) !== 0 || intents < 0;
}

/** Intent a guild event needs, or a DM event needs, keyed by event name. Events not listed are always sent. */
const GUILD_EVENT_INTENTS: Readonly<Record<string, number>> = {
  GUILD_CREATE: Intent.Guilds,
  GUILD_UPDATE: Intent.Guilds,
  GUILD_DELETE: Intent.Guilds,
  GUILD_ROLE_CREATE: Intent.Guilds,
  GUILD_ROLE_UPDATE: Intent.Guilds,
  GUILD_ROLE_DELETE: Intent.Guilds,
  CHANNEL_CREATE: Intent.Guilds,
  CHANNEL_UPDATE: Intent.Guilds,
  CHANNEL_DELETE: Intent.Guilds,
  CHANNEL_PINS_UPDATE: Intent.Guilds,
  THREAD_CREATE: Intent.Guilds,
  THREAD_UPDATE: Intent.Guilds,
  THREAD_DELETE: Intent.Guilds,
  THREAD_LIST_SYNC: Intent.Guilds,
  THREAD_MEMBER_UPDATE: Intent.Guilds,
  STAGE_INSTANCE_CREATE: Intent.Guilds,
  STAGE_INSTANCE_UPDATE: Intent.Guilds,
  STAGE_INSTANCE_DELETE: Intent.Guilds,
  GUILD_MEMBER_ADD: Intent.GuildMembers,
  GUILD_MEMBER_UPDATE: Intent.GuildMembers,
  GUILD_MEMBER_REMOVE: Intent.GuildMembers,
  THREAD_MEMBERS_UPDATE: Intent.GuildMembers,
  GUILD_AUDIT_LOG_ENTRY_CREATE: Intent.GuildModeration,
  GUILD_BAN_ADD: Intent.GuildModeration,
  GUILD_BAN_REMOVE: Intent.GuildModeration,
  GUILD_EMOJIS_UPDATE: Intent.GuildExpressions,
  GUILD_STICKERS_UPDATE: Intent.GuildExpressions,
  GUILD_INTEGRATIONS_UPDATE: Intent.GuildIntegrations,
  INTEGRATION_CREATE: Intent.GuildIntegrations,
  INTEGRATION_UPDATE: Intent.GuildIntegrations,
  INTEGRATION_DELETE: Intent.GuildIntegrations,
  WEBHOOKS_UPDATE: Intent.GuildWebhooks,
  INVITE_CREATE: Intent.GuildInvites,
  INVITE_DELETE: Intent.GuildInvites,
  VOICE_STATE_UPDATE: Intent.GuildVoiceStates,
  PRESENCE_UPDATE: Intent.GuildPresences,
  MESSAGE_CREATE: Intent.GuildMessages,
  MESSAGE_UPDATE: Intent.GuildMessages,
  MESSAGE_DELETE: Intent.GuildMessages,
  MESSAGE_DELETE_BULK: Intent.GuildMessages,
  MESSAGE_REACTION_ADD: Intent.GuildMessageReactions,
  MESSAGE_REACTION_REMOVE: Intent.GuildMessageReactions,
  MESSAGE_REACTION_REMOVE_ALL: Intent.GuildMessageReactions,
  MESSAGE_REACTION_REMOVE_EMOJI: Intent.GuildMessageReactions,
  TYPING_START: Intent.GuildMessageTyping,
  GUILD_SCHEDULED_EVENT_CREATE: Intent.GuildScheduledEvents,
  GUILD_SCHEDULED_EVENT_UPDATE: Intent.GuildScheduledEvents,
  GUILD_SCHEDULED_EVENT_DELETE: Intent.GuildScheduledEvents,
  AUTO_MODERATION_RULE_CREATE: Intent.AutoModerationConfiguration,
  AUTO_MODERATION_RULE_UPDATE: Intent.AutoModerationConfiguration,
  AUTO_MODERATION_RULE_DELETE: Intent.AutoModerationConfiguration,
  AUTO_MODERATION_ACTION_EXECUTION: Intent.AutoModerationExecution,
  MESSAGE_POLL_VOTE_ADD: Intent.GuildMessagePolls,
  MESSAGE_POLL_VOTE_REMOVE: Intent.GuildMessagePolls,
};

const DIRECT_EVENT_INTENTS: Readonly<Record<string, number>> = {
  MESSAGE_CREATE: Intent.DirectMessages,
  MESSAGE_UPDATE: Intent.DirectMessages,
  MESSAGE_DELETE: Intent.DirectMessages,
  CHANNEL_PINS_UPDATE: Intent.DirectMessages,
  MESSAGE_REACTION_ADD: Intent.DirectMessageReactions,
  MESSAGE_REACTION_REMOVE: Intent.DirectMessageReactions,
  MESSAGE_REACTION_REMOVE_ALL: Intent.DirectMessageReactions,
  MESSAGE_REACTION_REMOVE_EMOJI: Intent.DirectMessageReactions,
  TYPING_START: Intent.DirectMessageTyping,
  MESSAGE_POLL_VOTE_ADD: Intent.DirectMessagePolls,
  MESSAGE_POLL_VOTE_REMOVE: Intent.DirectMessagePolls,
};

/** The intent bit an event needs (0 when it is sent regardless of intents). */
export function intentForEvent(eventName: string, inGuild: boolean): number {
  return (inGuild ? GUILD_EVENT_INTENTS[eventName] : DIRECT_EVENT_INTENTS[eventName]) ?? 0;
}

/** Message events whose content fields are emptied for sessions without MESSAGE_CONTENT. */
export const MESSAGE_CONTENT_EVENTS: ReadonlySet<string> = new Set(['MESSAGE_CREATE', 'MESSAGE_UPDATE']);
