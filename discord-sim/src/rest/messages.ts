import { SnowflakeGenerator } from '../snowflake';

/** A message a bot posted (channel message, webhook follow-up or interaction response). */
export interface StoredMessage {
  readonly id: string;
  readonly channel_id: string;
  readonly guild_id: string | null;
  content: string;
  readonly nonce: string | number | null;
  readonly message_reference: Record<string, unknown> | null;
  embeds: unknown[];
  components: unknown[];
  flags: number;
  readonly timestamp: string;
  edited_timestamp: string | null;
  deleted: boolean;
  /** Set for interaction responses and follow-ups. */
  readonly interaction_id: string | null;
  readonly webhook_id: string | null;
}

/** Bot messages get ids from this worker, so an id alone tells a bot message from a user's. */
export const BOT_MESSAGE_WORKER = 5;

/**
 * Every message bots posted, oldest evicted past `limit`, so tests can count replies by nonce and
 * a long benchmark cannot grow the simulator without bound.
 */
export class MessageStore {
  private readonly messages = new Map<string, StoredMessage>();
  /** `${channel}:${nonce}` → message id, for `enforce_nonce`. */
  private readonly byNonce = new Map<string, string>();
  private readonly ids = new SnowflakeGenerator(BOT_MESSAGE_WORKER);

  public constructor(private readonly limit: number) {}

  public get size(): number {
    return this.messages.size;
  }

  public create(
    fields: Omit<StoredMessage, 'id' | 'timestamp' | 'edited_timestamp' | 'deleted'>,
  ): StoredMessage {
    const message: StoredMessage = {
      ...fields,
      id: this.ids.next(),
      timestamp: new Date().toISOString(),
      edited_timestamp: null,
      deleted: false,
    };
    this.messages.set(message.id, message);
    if (message.nonce !== null) this.byNonce.set(`${message.channel_id}:${message.nonce}`, message.id);
    while (this.messages.size > this.limit) this.evictOldest();
    return message;
  }

  /** A live (not deleted) message, or undefined. */
  public get(id: string): StoredMessage | undefined {
    const message = this.messages.get(id);
    return message && !message.deleted ? message : undefined;
  }

  public findByNonce(channelId: string, nonce: string | number): StoredMessage | undefined {
    const id = this.byNonce.get(`${channelId}:${nonce}`);
    return id === undefined ? undefined : this.get(id);
  }

  /** Messages in posting order; deleted ones stay listed (with `deleted: true`): they were posted. */
  public list(channelId?: string): StoredMessage[] {
    const all = [...this.messages.values()];
    return channelId === undefined ? all : all.filter((m) => m.channel_id === channelId);
  }

  private evictOldest(): void {
    const oldest = this.messages.values().next().value;
    if (!oldest) return;
    this.messages.delete(oldest.id);
    if (oldest.nonce !== null) {
      const key = `${oldest.channel_id}:${oldest.nonce}`;
      if (this.byNonce.get(key) === oldest.id) this.byNonce.delete(key);
    }
  }
}

/** The message object REST returns, shaped as Discord's (type 19 for replies). */
export function messageObject(
  message: StoredMessage,
  author: Record<string, unknown>,
): Record<string, unknown> {
  return {
    id: message.id,
    type: message.message_reference ? 19 : 0,
    channel_id: message.channel_id,
    ...(message.guild_id === null ? {} : { guild_id: message.guild_id }),
    author,
    content: message.content,
    timestamp: message.timestamp,
    edited_timestamp: message.edited_timestamp,
    tts: false,
    mention_everyone: false,
    mentions: [],
    mention_roles: [],
    attachments: [],
    embeds: message.embeds,
    components: message.components,
    pinned: false,
    flags: message.flags,
    ...(message.nonce === null ? {} : { nonce: message.nonce }),
    ...(message.message_reference ? { message_reference: message.message_reference } : {}),
    ...(message.webhook_id === null
      ? {}
      : { webhook_id: message.webhook_id, application_id: message.webhook_id }),
  };
}

/** True for ids the simulator gave bot messages (anything else is treated as a user's message). */
export function isBotMessageId(id: string): boolean {
  return Number((BigInt(id) >> 17n) & 0x1fn) === BOT_MESSAGE_WORKER;
}
