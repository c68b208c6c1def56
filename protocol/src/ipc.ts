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
