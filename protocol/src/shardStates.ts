import { z } from 'zod';

/**
 * The one list of shard states, in the order the status page's legend lists them; what each means,
 * as `discluster status` shows it:
 * - `idle`: not started, or stopped.
 * - `waiting`: waiting for its turn to IDENTIFY (rate-limit bucket, or the daily budget floor).
 * - `identifying`: IDENTIFY sent, waiting for READY.
 * - `resuming`: RESUME of a stored session under way.
 * - `ready`: serving events.
 * - `disconnected`: the socket dropped; the gateway client is reconnecting.
 * - `fenced`: closed on purpose because this process lost NATS, or CONTROL could not renew the
 *   shard leases (another owner may take over).
 */
export const SHARD_STATES = [
  'idle',
  'waiting',
  'identifying',
  'resuming',
  'ready',
  'disconnected',
  'fenced',
] as const;

/** One of {@link SHARD_STATES}. */
export type ShardState = (typeof SHARD_STATES)[number];

/** Validates a {@link ShardState} in every message that carries one. */
export const ShardStateSchema = z.enum(SHARD_STATES);
