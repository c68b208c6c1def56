import { z } from 'zod';
import { replySchema } from './reply.js';

/**
 * The reshard handover (issue 7), MASTER → each cluster process directly over NATS
 * (`handoverSubjects(bot).cluster(clusterId)`, request/reply). Every step is idempotent, so a MASTER
 * that took over midway simply runs the steps again:
 *
 * 1. `record` (old generation): keep the key of every event delivered to bot code from now on.
 * 2. `buffer` (new generation): hold every event instead of dropping it (standby drops them).
 * 3. `cutover` (old generation): deliver nothing more; write the recorded keys to the handover
 *    bucket (`handoverKey(reshardId, clusterId, n)` chunks, then `count`).
 * 4. `go-live` (new generation): read the keys of `oldClusterIds`, deliver the held events the old
 *    generation did not deliver, in order, and serve from then on; an event the old generation
 *    delivered that reaches this cluster late is dropped as well.
 * 5. `abort` (either): back to normal (old: deliver again; new: standby), for a rolled-back reshard.
 */

const clusterId = z.number().int().nonnegative();
const reshardId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);

export const HandoverStepSchema = z.enum(['record', 'buffer', 'cutover', 'go-live', 'abort']);
export type HandoverStep = z.infer<typeof HandoverStepSchema>;

export const HandoverRequestSchema = z.object({
  v: z.literal(1),
  reshardId,
  step: HandoverStepSchema,
  /** `go-live`: the old clusters whose delivered keys this cluster must subtract. */
  oldClusterIds: z.array(clusterId).max(100_000).optional(),
});
export type HandoverRequest = z.infer<typeof HandoverRequestSchema>;

export const HandoverReplySchema = replySchema({
  clusterId,
  step: HandoverStepSchema,
  /** `cutover`: keys written. `go-live`: held events delivered. */
  events: z.number().int().nonnegative(),
  /** `go-live`: held events dropped because the old generation had delivered them. */
  duplicates: z.number().int().nonnegative(),
});
export type HandoverReply = z.infer<typeof HandoverReplySchema>;

/** One chunk of delivered event keys in the handover bucket. */
export const HandoverChunkSchema = z.object({
  v: z.literal(1),
  keys: z.array(z.string().min(1).max(64)).max(100_000),
});

/** Written after the chunks: how many there are. */
export const HandoverCountSchema = z.object({
  v: z.literal(1),
  chunks: z.number().int().nonnegative(),
  keys: z.number().int().nonnegative(),
});
