import { z } from 'zod';

/**
 * The failure branch every reply of the protocol shares (fleet, handover, IPC and operator
 * replies): a `WireError` whose `code` is an `ErrorCode`.
 */
export const ErrorReplySchema = z.object({
  v: z.literal(1),
  ok: z.literal(false),
  error: z.object({ code: z.string().min(1).max(128), message: z.string().max(4096) }),
});
export type ErrorReply = z.infer<typeof ErrorReplySchema>;

/**
 * A reply schema: `{ v: 1, ok: true, ...success }` or an {@link ErrorReplySchema}, told apart by
 * `ok`. Every request/reply of the protocol answers this way.
 */
export function replySchema<S extends z.ZodRawShape>(success: S) {
  return z.discriminatedUnion('ok', [
    z.object({ v: z.literal(1), ok: z.literal(true), ...success }),
    ErrorReplySchema,
  ]);
}
