import { z } from 'zod';
import { replySchema } from './reply.js';

/**
 * Cluster-to-cluster messages. Event names are free text chosen by bot code, so they travel in the
 * payload, never in the subject. `data` is any JSON value.
 */

/** Longest event or request name. */
export const MAX_IPC_NAME_LENGTH = 128;

const name = z.string().min(1).max(MAX_IPC_NAME_LENGTH);
const clusterId = z.number().int().nonnegative();

/** An event or a request: who sent it, its name and its data. */
export const IpcEnvelopeSchema = z.object({
  v: z.literal(1),
  name,
  from: clusterId,
  data: z.unknown(),
});
export type IpcEnvelope = z.infer<typeof IpcEnvelopeSchema>;

/** The answer to a request: the handler's value, or an error with a stable code. */
export const IpcReplySchema = replySchema({ value: z.unknown() });
export type IpcReply = z.infer<typeof IpcReplySchema>;

// ---- precompiled checks for the IPC hot path ---------------------------------------------------
//
// Every IPC message read is validated. The checks below accept exactly what the zod schemas above
// accept (protocol/test/ipcParse.test.ts compares them on generated values) and return the same
// output: the known keys only. They exist because a request crosses two validations (the request
// and its reply) and zod's generic parse costs more than the rest of the call's JavaScript.

/** Code points in `text`, as zod measures a string's length: a valid surrogate pair counts once. */
function codePoints(text: string): number {
  let count = text.length;
  for (let i = 0; i < text.length - 1; i++) {
    if ((text.charCodeAt(i) & 0xfc00) === 0xd800 && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      count--;
      i++;
    }
  }
  return count;
}

function isStringWithin(value: unknown, min: number, max: number): value is string {
  if (typeof value !== 'string' || value.length < min) return false;
  // A code point is one or two UTF-16 units: only a string longer than `max` units needs counting.
  return value.length <= max || (value.length <= 2 * max && codePoints(value) <= max);
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `IpcEnvelopeSchema.safeParse(value)`, precompiled: the envelope (known keys only) or null. */
export function parseIpcEnvelope(value: unknown): IpcEnvelope | null {
  if (!isPlainRecord(value) || value['v'] !== 1 || !('data' in value)) return null;
  const { name: n, from } = value;
  if (!isStringWithin(n, 1, MAX_IPC_NAME_LENGTH)) return null;
  if (typeof from !== 'number' || !Number.isSafeInteger(from) || from < 0) return null;
  return { v: 1, name: n, from, data: value['data'] };
}

/** `IpcReplySchema.safeParse(value)`, precompiled: the reply (known keys only) or null. */
export function parseIpcReply(value: unknown): IpcReply | null {
  if (!isPlainRecord(value) || value['v'] !== 1) return null;
  if (value['ok'] === true) return 'value' in value ? { v: 1, ok: true, value: value['value'] } : null;
  if (value['ok'] !== false) return null;
  const error = value['error'];
  if (!isPlainRecord(error)) return null;
  const { code, message } = error;
  if (!isStringWithin(code, 1, 128) || !isStringWithin(message, 0, 4096)) return null;
  return { v: 1, ok: false, error: { code, message } };
}
