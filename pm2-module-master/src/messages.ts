import type { Msg } from '@nats-io/transport-node';
import type { z } from 'zod';

const decoder = new TextDecoder();

/** Parses a NATS message as JSON against `schema`; throws with the first problem(s) found. */
export function parseMessage<S extends z.ZodType>(
  msg: Msg,
  schema: S,
  describe: (error: z.ZodError) => string = (error) => error.issues[0]?.message ?? 'invalid',
): z.output<S> {
  const parsed = schema.safeParse(JSON.parse(decoder.decode(msg.data)));
  if (!parsed.success) throw new Error(describe(parsed.error));
  return parsed.data;
}
