import { z } from 'zod';

/**
 * Records of the fleet's shared REST limits, in the bucket named by `restBucket`. Every process of
 * a bot reads and compare-and-sets them; a record that fails its schema is treated as absent.
 */

const epochMs = z.number().int().nonnegative();
const count = z.number().int().nonnegative();

/** One slot of the global limit (`restGlobalSlotKey`): the time a request was last sent on it. */
export const RestGlobalSlotRecordSchema = z.object({ v: z.literal(1), at: epochMs });
export type RestGlobalSlotRecord = z.infer<typeof RestGlobalSlotRecordSchema>;

/**
 * What the fleet knows of one route and major parameter (`restRouteKey`): Discord's bucket as its
 * headers described it, how much of the current window the fleet has reserved, and whether the route
 * keeps failing (401/403/429 in a row).
 */
export const RestRouteRecordSchema = z.object({
  v: z.literal(1),
  /** Requests per window (`X-RateLimit-Limit`); 0 while nobody has seen the headers yet. */
  limit: count,
  /** Requests the fleet may still start in the current window. */
  remaining: count,
  /** When the current window ends (epoch ms, this fleet's clock). */
  resetAt: epochMs,
  /** The longest window seen: how long a new window is assumed to last until a response says. */
  periodMs: count,
  /** A response of the current window has fixed `resetAt` (else it is an estimate). */
  confirmed: z.boolean(),
  /** Discord sent no rate-limit headers: only the global limit applies. */
  unlimited: z.boolean(),
  /** One process is sending the first request to learn the bucket, until then (epoch ms; 0: none). */
  probeUntil: epochMs,
  /** Invalid answers (401, 403, 429) in a row. */
  failures: count,
  /** HTTP status of the last answer (0: none yet). */
  lastStatus: count,
});
export type RestRouteRecord = z.infer<typeof RestRouteRecordSchema>;

/** The fleet's invalid requests in one 10-minute window (`restInvalidKey`). */
export const RestInvalidCountRecordSchema = z.object({ v: z.literal(1), count });
export type RestInvalidCountRecord = z.infer<typeof RestInvalidCountRecordSchema>;

/** Written once by the process that saw Discord answer 401 to the token (`restTokenRejectedKey`). */
export const RestTokenRejectedRecordSchema = z.object({
  v: z.literal(1),
  at: epochMs,
  instanceId: z.string().min(1).max(64),
  /**
   * A short hash of the rejected token (never the token): after the operator sets a new token, the
   * fleet does not stop on the old token's record.
   */
  tokenTag: z.string().min(1).max(64),
});
export type RestTokenRejectedRecord = z.infer<typeof RestTokenRejectedRecordSchema>;
