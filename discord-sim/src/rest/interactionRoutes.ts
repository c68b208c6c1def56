import { isSnowflake } from '../snowflake';
import type { BucketSpec } from './buckets';
import { applyEdit, messageFields } from './channelRoutes';
import { alreadyAcknowledged, invalidFormBody, invalidWebhookToken, notSnowflake, unknown } from './errors';
import type { InteractionStore, StoredInteraction } from './interactions';
import { asObject, parseMessage } from './messageBody';
import { messageObject, type MessageStore, type StoredMessage } from './messages';
import type { RouteDef } from './router';
import type { World } from './world';

export const INTERACTION_BUCKETS = {
  callback: { id: 'interaction-callback', limit: 5, periodMs: 1000 },
  followUp: { id: 'webhook-execute', limit: 5, periodMs: 2000 },
  editOriginal: { id: 'webhook-message-edit', limit: 5, periodMs: 2000 },
} as const satisfies Record<string, BucketSpec>;

/** Interaction callback types Discord accepts (PONG … LAUNCH_ACTIVITY). */
const CALLBACK_TYPES = new Set([1, 4, 5, 6, 7, 8, 9, 10, 12]);
const CHANNEL_MESSAGE_WITH_SOURCE = 4;
const DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5;
const LOADING_FLAG = 1 << 7;

/**
 * The interaction endpoints: the callback (accepted once per interaction, within the response window)
 * and the follow-up webhooks that take the application id and the interaction token.
 */
export function interactionRoutes(
  world: World,
  messages: MessageStore,
  interactions: InteractionStore,
  responseWindowMs: number,
): RouteDef[] {
  const webhook = (appId: string, token: string): StoredInteraction => {
    if (!isSnowflake(appId)) throw notSnowflake('webhook_id', appId);
    if (appId !== world.botUserId) throw unknown('webhook');
    const interaction = interactions.getByToken(token);
    if (!interaction) throw invalidWebhookToken();
    // Before the callback there is no webhook to follow up on.
    if (interaction.callbackType === null) throw unknown('webhook');
    return interaction;
  };
  const author = (): Record<string, unknown> => ({ ...world.botUser() });
  const post = (interaction: StoredInteraction, body: unknown, loading: boolean): StoredMessage => {
    const input = loading
      ? parseMessage(body ?? {}, { requireContent: false, path: ['data'] })
      : parseMessage(body, { requireContent: true, path: ['data'] });
    const fields = messageFields(input);
    return messages.create({
      ...fields,
      flags: loading ? fields.flags | LOADING_FLAG : fields.flags,
      channel_id: interaction.channelId ?? interaction.id,
      guild_id: interaction.guildId,
      nonce: null,
      message_reference: null,
      interaction_id: interaction.id,
      webhook_id: world.botUserId,
    });
  };
  const common = { auth: false, interaction: true, body: true } as const;

  return [
    {
      ...common,
      method: 'POST',
      path: /^\/interactions\/([^/]+)\/([^/]+)\/callback$/,
      bucket: INTERACTION_BUCKETS.callback,
      major: (params) => params[0]!,
      handle: ({ params, body, query }) => {
        const [id, token] = params as [string, string];
        if (!isSnowflake(id)) throw notSnowflake('interaction_id', id);
        const interaction = interactions.get(id);
        if (!interaction || interaction.token !== token) throw unknown('interaction');
        if (interaction.callbackType !== null) throw alreadyAcknowledged();
        // Discord forgets an interaction that was not answered in time (3 s).
        if (Date.now() - interaction.createdAt > responseWindowMs) throw unknown('interaction');
        const fields = asObject(body);
        const type = fields['type'];
        if (typeof type !== 'number' || !CALLBACK_TYPES.has(type))
          throw invalidFormBody(
            ['type'],
            'BASE_TYPE_CHOICES',
            `Value must be one of ${[...CALLBACK_TYPES].join(', ')}.`,
          );
        if (fields['data'] !== undefined && fields['data'] !== null) asObject(fields['data'], ['data']);
        let message: StoredMessage | null = null;
        if (type === CHANNEL_MESSAGE_WITH_SOURCE) message = post(interaction, fields['data'], false);
        if (type === DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE) message = post(interaction, fields['data'], true);
        interaction.callbackType = type;
        interaction.originalMessageId = message?.id ?? null;
        if (query.get('with_response') !== 'true') return { status: 204 };
        return {
          status: 200,
          body: {
            interaction: {
              id: interaction.id,
              type: 2,
              activity_instance_id: null,
              response_message_id: message?.id ?? null,
              response_message_loading: type === DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
              response_message_ephemeral: message ? (message.flags & (1 << 6)) !== 0 : false,
            },
            resource: message ? { type, message: messageObject(message, author()) } : { type },
          },
        };
      },
    },
    {
      ...common,
      method: 'POST',
      path: /^\/webhooks\/([^/]+)\/([^/]+)$/,
      bucket: INTERACTION_BUCKETS.followUp,
      major: (params) => `${params[0]}/${params[1]}`,
      handle: ({ params, body }) => {
        const interaction = webhook(params[0]!, params[1]!);
        const input = parseMessage(body, { requireContent: true });
        interaction.followUps++;
        const message = messages.create({
          ...messageFields(input),
          channel_id: interaction.channelId ?? interaction.id,
          guild_id: interaction.guildId,
          nonce: input.nonce ?? null,
          message_reference: input.messageReference ?? null,
          interaction_id: interaction.id,
          webhook_id: world.botUserId,
        });
        // Follow-ups always answer with the message (Discord: `wait` is always true for them).
        return { status: 200, body: messageObject(message, author()) };
      },
    },
    {
      ...common,
      method: 'PATCH',
      path: /^\/webhooks\/([^/]+)\/([^/]+)\/messages\/@original$/,
      bucket: INTERACTION_BUCKETS.editOriginal,
      major: (params) => `${params[0]}/${params[1]}`,
      handle: ({ params, body }) => {
        const interaction = webhook(params[0]!, params[1]!);
        const original =
          interaction.originalMessageId === null ? undefined : messages.get(interaction.originalMessageId);
        if (!original) throw unknown('message');
        applyEdit(original, parseMessage(body, { requireContent: false }));
        original.flags &= ~LOADING_FLAG;
        return { status: 200, body: messageObject(original, author()) };
      },
    },
  ];
}
