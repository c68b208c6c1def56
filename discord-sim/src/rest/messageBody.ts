import { isSnowflake } from '../snowflake';
import { emptyMessage, invalidFormBody, type RestError } from './errors';

/** The message fields the simulator reads from a create, edit, follow-up or callback body. */
export interface MessageInput {
  content?: string;
  nonce?: string | number;
  enforceNonce: boolean;
  embeds?: unknown[];
  components?: unknown[];
  messageReference?: Record<string, unknown>;
  flags?: number;
}

const MAX_CONTENT = 2000;
const MAX_NONCE = 25;
const MAX_EMBEDS = 10;

/** Discord answers a body that is not a JSON object with this. */
export function notAnObject(path: readonly (string | number)[] = []): RestError {
  return invalidFormBody(path, 'DICT_TYPE_CONVERT', 'Only dictionaries may be used in a DictType');
}

export function asObject(value: unknown, path: readonly (string | number)[] = []): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw notAnObject(path);
  return value as Record<string, unknown>;
}

/**
 * Checks a message body the way Discord's form validation does (50035 naming the field), and, when
 * `requireContent`, that something would be posted (50006).
 */
export function parseMessage(
  body: unknown,
  { requireContent, path = [] }: { requireContent: boolean; path?: readonly (string | number)[] },
): MessageInput {
  const fields = asObject(body, path);
  const input: MessageInput = { enforceNonce: fields['enforce_nonce'] === true };
  const content = fields['content'];
  if (content !== undefined && content !== null) {
    if (typeof content !== 'string')
      throw invalidFormBody([...path, 'content'], 'BASE_TYPE_STRING', 'Could not interpret value as string.');
    if (content.length > MAX_CONTENT)
      throw invalidFormBody(
        [...path, 'content'],
        'BASE_TYPE_MAX_LENGTH',
        `Must be ${MAX_CONTENT} or fewer in length.`,
      );
    input.content = content;
  }
  const nonce = fields['nonce'];
  if (nonce !== undefined && nonce !== null) {
    const ok =
      (typeof nonce === 'string' && nonce.length <= MAX_NONCE) ||
      (typeof nonce === 'number' && Number.isSafeInteger(nonce));
    if (!ok)
      throw invalidFormBody(
        [...path, 'nonce'],
        'BASE_TYPE_MAX_LENGTH',
        `Must be an integer or a string of ${MAX_NONCE} or fewer characters.`,
      );
    input.nonce = nonce;
  }
  for (const key of ['embeds', 'components'] as const) {
    const value = fields[key];
    if (value === undefined || value === null) continue;
    if (!Array.isArray(value)) throw invalidFormBody([...path, key], 'BASE_TYPE_ARRAY', 'Must be an array.');
    if (key === 'embeds' && value.length > MAX_EMBEDS)
      throw invalidFormBody(
        [...path, key],
        'BASE_TYPE_MAX_LENGTH',
        `Must be ${MAX_EMBEDS} or fewer in length.`,
      );
    value.forEach((item, i) => asObject(item, [...path, key, i]));
    input[key] = value;
  }
  const reference = fields['message_reference'];
  if (reference !== undefined && reference !== null) {
    const ref = asObject(reference, [...path, 'message_reference']);
    for (const key of ['message_id', 'channel_id', 'guild_id'])
      if (ref[key] !== undefined && !isSnowflake(ref[key]))
        throw invalidFormBody(
          [...path, 'message_reference', key],
          'NUMBER_TYPE_COERCE',
          `Value "${String(ref[key]).slice(0, 64)}" is not snowflake.`,
        );
    input.messageReference = ref;
  }
  const flags = fields['flags'];
  if (flags !== undefined && flags !== null) {
    if (typeof flags !== 'number' || !Number.isSafeInteger(flags) || flags < 0)
      throw invalidFormBody([...path, 'flags'], 'NUMBER_TYPE_COERCE', 'Value is not int.');
    input.flags = flags;
  }
  const hasSomething =
    (input.content?.length ?? 0) > 0 ||
    (input.embeds?.length ?? 0) > 0 ||
    (input.components?.length ?? 0) > 0 ||
    fields['sticker_ids'] !== undefined ||
    fields['poll'] !== undefined;
  if (requireContent && !hasSomething) throw emptyMessage();
  return input;
}
