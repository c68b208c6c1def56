import { isSnowflake } from '../snowflake';
import type { BucketSpec } from './buckets';
import {
  cannotEditOthersMessage,
  invalidFormBody,
  missingAccess,
  missingPermissions,
  notSnowflake,
  unknown,
  unknownEmoji,
  type RestError,
} from './errors';
import { asObject, parseMessage, type MessageInput } from './messageBody';
import { isBotMessageId, messageObject, type MessageStore, type StoredMessage } from './messages';
import { firstParam, type RouteDef } from './router';
import type { ResolvedChannel, World } from './world';

// Discord publishes no per-route numbers except message create (5 / 5 s per channel, also the edit
// limit bots see); the others are the values bots commonly observe, documented in the README.
export const CHANNEL_BUCKETS = {
  getChannel: { id: 'channel-get', limit: 10, periodMs: 1000 },
  patchChannel: { id: 'channel-patch', limit: 5, periodMs: 5000 },
  createMessage: { id: 'message-create', limit: 5, periodMs: 5000 },
  editMessage: { id: 'message-edit', limit: 5, periodMs: 5000 },
  deleteMessage: { id: 'message-delete', limit: 5, periodMs: 1000 },
  addReaction: { id: 'reaction-add', limit: 1, periodMs: 250 },
} as const satisfies Record<string, BucketSpec>;

const ID = '([^/]+)';
// Unicode emoji, or a custom one as name:id.
const CUSTOM_EMOJI = /^[\w~-]{2,32}:\d{17,20}$/;
const UNICODE_EMOJI = /^\P{ASCII}{1,32}$/u;

/** Channels, messages and reactions: what a bot replying to messages uses. */
export function channelRoutes(world: World, messages: MessageStore): RouteDef[] {
  const channelOf = (id: string, { post = false, manage = false } = {}): ResolvedChannel => {
    if (!isSnowflake(id)) throw notSnowflake('channel_id', id);
    const channel = world.channel(id);
    if (!channel) throw unknown('channel');
    if (channel.kind === 'hidden') throw missingAccess();
    if ((post || manage) && channel.kind === 'read-only') throw missingPermissions();
    return channel;
  };
  // `othersDenied`: what touching someone else's message (a valid id the bot did not send) answers.
  const botMessage = (
    channel: ResolvedChannel,
    id: string,
    othersDenied?: () => RestError,
  ): StoredMessage => {
    if (!isSnowflake(id)) throw notSnowflake('message_id', id);
    if (othersDenied && !isBotMessageId(id)) throw othersDenied();
    const message = isBotMessageId(id) ? messages.get(id) : undefined;
    if (!message || message.channel_id !== channel.id) throw unknown('message');
    return message;
  };
  const view = (message: StoredMessage): Record<string, unknown> => messageObject(message, world.botUser());
  const common = { major: firstParam, auth: true, interaction: false } as const;

  return [
    {
      ...common,
      method: 'GET',
      path: new RegExp(`^/channels/${ID}$`),
      bucket: CHANNEL_BUCKETS.getChannel,
      body: false,
      handle: ({ params }) => ({ status: 200, body: world.channelObject(channelOf(params[0]!)) }),
    },
    {
      ...common,
      method: 'PATCH',
      path: new RegExp(`^/channels/${ID}$`),
      bucket: CHANNEL_BUCKETS.patchChannel,
      body: true,
      handle: ({ params, body }) => {
        const channel = channelOf(params[0]!, { manage: true });
        world.editChannel(channel.id, parseChannelEdit(body));
        return { status: 200, body: world.channelObject(channel) };
      },
    },
    {
      ...common,
      method: 'POST',
      path: new RegExp(`^/channels/${ID}/messages$`),
      bucket: CHANNEL_BUCKETS.createMessage,
      body: true,
      handle: ({ params, body }) => {
        const channel = channelOf(params[0]!, { post: true });
        const input = parseMessage(body, { requireContent: true });
        // enforce_nonce: Discord answers a repeated nonce with the message it already created.
        const existing =
          input.enforceNonce && input.nonce !== undefined
            ? messages.findByNonce(channel.id, input.nonce)
            : undefined;
        if (existing) return { status: 200, body: view(existing) };
        const message = messages.create({
          ...messageFields(input),
          channel_id: channel.id,
          guild_id: channel.guildId,
          nonce: input.nonce ?? null,
          message_reference: input.messageReference ?? null,
          interaction_id: null,
          webhook_id: null,
        });
        return { status: 200, body: view(message) };
      },
    },
    {
      ...common,
      method: 'PATCH',
      path: new RegExp(`^/channels/${ID}/messages/${ID}$`),
      bucket: CHANNEL_BUCKETS.editMessage,
      body: true,
      handle: ({ params, body }) => {
        const channel = channelOf(params[0]!);
        const message = botMessage(channel, params[1]!, cannotEditOthersMessage);
        applyEdit(message, parseMessage(body, { requireContent: false }));
        return { status: 200, body: view(message) };
      },
    },
    {
      ...common,
      method: 'DELETE',
      path: new RegExp(`^/channels/${ID}/messages/${ID}$`),
      bucket: CHANNEL_BUCKETS.deleteMessage,
      body: false,
      handle: ({ params }) => {
        const channel = channelOf(params[0]!);
        // Deleting someone else's message needs MANAGE_MESSAGES, which the bot's role lacks.
        botMessage(channel, params[1]!, missingPermissions).deleted = true;
        return { status: 204 };
      },
    },
    {
      ...common,
      method: 'PUT',
      path: new RegExp(`^/channels/${ID}/messages/${ID}/reactions/${ID}/@me$`),
      bucket: CHANNEL_BUCKETS.addReaction,
      body: false,
      handle: ({ params }) => {
        const channel = channelOf(params[0]!);
        // A bot message must exist; user messages are not stored, so any other id is taken as one.
        if (!isSnowflake(params[1]) || isBotMessageId(params[1])) botMessage(channel, params[1]!);
        const emoji = params[2]!;
        if (!CUSTOM_EMOJI.test(emoji) && !UNICODE_EMOJI.test(emoji)) throw unknownEmoji();
        return { status: 204 };
      },
    },
  ];
}

export function messageFields(
  input: MessageInput,
): Pick<StoredMessage, 'content' | 'embeds' | 'components' | 'flags'> {
  return {
    content: input.content ?? '',
    embeds: input.embeds ?? [],
    components: input.components ?? [],
    flags: input.flags ?? 0,
  };
}

export function applyEdit(message: StoredMessage, input: MessageInput): void {
  if (input.content !== undefined) message.content = input.content;
  if (input.embeds !== undefined) message.embeds = input.embeds;
  if (input.components !== undefined) message.components = input.components;
  if (input.flags !== undefined) message.flags = input.flags;
  message.edited_timestamp = new Date().toISOString();
}

function parseChannelEdit(body: unknown): Record<string, unknown> {
  const fields = asObject(body);
  const edit: Record<string, unknown> = {};
  const name = fields['name'];
  if (name !== undefined) {
    if (typeof name !== 'string' || name.length < 1 || name.length > 100)
      throw invalidFormBody(['name'], 'BASE_TYPE_BAD_LENGTH', 'Must be between 1 and 100 in length.');
    edit['name'] = name;
  }
  const topic = fields['topic'];
  if (topic !== undefined) {
    if (topic !== null && (typeof topic !== 'string' || topic.length > 1024))
      throw invalidFormBody(['topic'], 'BASE_TYPE_MAX_LENGTH', 'Must be 1024 or fewer in length.');
    edit['topic'] = topic;
  }
  const nsfw = fields['nsfw'];
  if (nsfw !== undefined) {
    if (typeof nsfw !== 'boolean')
      throw invalidFormBody(['nsfw'], 'BASE_TYPE_BOOLEAN', 'Must be either true or false.');
    edit['nsfw'] = nsfw;
  }
  const slowmode = fields['rate_limit_per_user'];
  if (slowmode !== undefined) {
    if (typeof slowmode !== 'number' || !Number.isInteger(slowmode) || slowmode < 0 || slowmode > 21_600)
      throw invalidFormBody(
        ['rate_limit_per_user'],
        'NUMBER_TYPE_MAX',
        'int value should be between 0 and 21600.',
      );
    edit['rate_limit_per_user'] = slowmode;
  }
  return edit;
}
