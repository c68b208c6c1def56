import type { GatewayDispatchPayload } from 'discord-api-types/v10';
import type { ShardState } from './ShardStatus.js';

/** A fatal gateway close: the shard stays down and the fleet should stop. */
export interface FatalShardClose {
  readonly shardId: number;
  readonly code: number;
  readonly reason: string;
}

/** Events of `Cluster`. */
export interface ClusterEvents {
  /** A gateway dispatch (`{op, t, s, d}`) of one of this cluster's shards. */
  dispatch: [packet: GatewayDispatchPayload, shardId: number];
  /** Every shard of this cluster is serving (emitted again after recovering from a fence). */
  ready: [];
  /** A shard's heartbeat was acknowledged after `latencyMs` (also `status()[i].ping`). */
  heartbeat: [shardId: number, latencyMs: number];
  /** A shard changed state. */
  shardState: [shardId: number, state: ShardState, previous: ShardState];
  /** A shard keeps waiting to identify for a reason other than the rate limit (e.g. the budget floor). */
  waiting: [shardId: number, reason: string];
  /** A shard closed with a fatal code and will not reconnect (in a fleet, CONTROL is told too). */
  fatal: [close: FatalShardClose];
  /**
   * Shards closed (resumably) so another owner can take over: NATS was unreachable for
   * `fenceAfterMs`, or, in a fleet, CONTROL ordered a fence because it could not renew their leases.
   */
  fenced: [];
  /** The assignment still holds after a fence (and NATS answers): shards reconnect (and RESUME). */
  unfenced: [];
  /**
   * After a fence, the assignment was not confirmed (CONTROL answered `confirmed: false`, or
   * `confirmAssignment` resolved false): the shards stay closed. In a fleet the process waits for
   * CONTROL's `shutdown`.
   */
  revoked: [];
  /**
   * Something failed that the cluster survived (a listener, a NATS write, a malformed message).
   * Without a listener these are written to stderr instead of crashing the process.
   */
  error: [error: Error];
  /** Diagnostics. Never contains the token. */
  debug: [message: string];
}
