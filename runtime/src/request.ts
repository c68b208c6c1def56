import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { decodeRecord, encodeRecord } from 'discluster-protocol/schemas';
import type { z } from 'zod';

const encoder = new TextEncoder();

/** Why {@link requestReply} got no usable answer. */
export class NatsRequestError extends Error {
  public constructor(
    /** `unanswered`: no responder, or none within the timeout; `malformed`: the reply failed its schema. */
    public readonly kind: 'unanswered' | 'malformed',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'NatsRequestError';
  }
}

/**
 * One request over NATS: encodes `body` (protocol's codec, JSON), sends it on `subject`, waits up
 * to `timeoutMs` for one reply and validates it with `schema`. Rejects with a
 * {@link NatsRequestError} saying whether nobody answered or the answer was malformed; each caller
 * turns that into its own `DisclusterError`.
 */
export async function requestReply<T>(
  nc: NatsConnection,
  subject: string,
  body: unknown,
  schema: z.ZodType<T>,
  timeoutMs: number,
): Promise<T> {
  let msg: Msg;
  try {
    msg = await nc.request(subject, encoder.encode(encodeRecord(body)), { timeout: timeoutMs });
  } catch (error) {
    throw new NatsRequestError('unanswered', error instanceof Error ? error.message : String(error), {
      cause: error,
    });
  }
  const reply = decodeRecord(schema, msg.data);
  if (!reply.ok) throw new NatsRequestError('malformed', reply.error);
  return reply.value;
}

/** Answers a request with `body`, encoded by protocol's codec (a plain publish has no reply subject: nothing to answer). */
export function respond(msg: Msg, body: unknown): void {
  if (msg.reply) msg.respond(encoder.encode(encodeRecord(body)));
}
