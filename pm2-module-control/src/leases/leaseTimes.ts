/**
 * Every period of the lease keeper, derived from the lease bucket's TTL (the lease time). MASTER
 * may change the TTL at run time (`lease_ms`), so the keeper derives them again whenever it sees
 * another TTL (leaseKeeper.ts).
 */
export interface LeaseTimes {
  /** The lease time: the bucket's TTL (stream max_age). */
  readonly ttlMs: number;
  /** Renewals failed for this long: the cluster fences, before the lease can expire. */
  readonly fenceAfterMs: number;
  /** Renewal round period. */
  readonly renewEveryMs: number;
  /** A failed renewal round is tried again after this, not a whole period later. */
  readonly retryMs: number;
  /** Fence check period; also how often the bucket's TTL is read again. */
  readonly checkEveryMs: number;
  /** How often a shard held by another host is looked at again. */
  readonly pollMs: number;
  /** Bound of each KV request. */
  readonly requestTimeoutMs: number;
}

/**
 * Renewals every TTL/8, each request bounded by TTL/10 (at most 1 s), a failed round retried after
 * TTL/20 (at most 0.5 s). What decides whether a NATS stall fences a host is the stall it outlasts:
 * the fence time minus one renewal period, one request timeout and one retry
 * ({@link toleratedStallMs}): 6 s at a 20 s lease, 9.75 s at 30 s. With the earlier TTL/6, TTL/10
 * (2 s) and TTL/20 (1.5 s) a 30 s lease outlasted 6.5 s, and a NATS node kill whose KV stall was
 * 6.2 s on a busy machine fenced two clusters.
 */
export function leaseTimes(ttlMs: number): LeaseTimes {
  return {
    ttlMs,
    fenceAfterMs: Math.max(100, Math.floor(ttlMs / 2)),
    renewEveryMs: Math.max(25, Math.floor(ttlMs / 8)),
    retryMs: Math.max(25, Math.min(500, Math.floor(ttlMs / 20))),
    // The fence check runs on its own timer: a renewal stuck on a dead link must not delay it.
    checkEveryMs: Math.max(25, Math.min(1_000, Math.floor(ttlMs / 10))),
    pollMs: Math.max(100, Math.min(1_000, Math.floor(ttlMs / 8))),
    requestTimeoutMs: requestTimeout(ttlMs),
  };
}

/**
 * The longest NATS stall (no KV write succeeds) that starts right after a renewal and still ends
 * with a renewal before the fence time: the fence time minus a renewal period, the request that
 * was lost in the stall and the pause before its retry.
 */
export function toleratedStallMs(times: LeaseTimes): number {
  return times.fenceAfterMs - times.renewEveryMs - times.requestTimeoutMs - times.retryMs;
}

/**
 * KV request timeout: short enough that a renewal round on a dead link, and its retry, end well
 * before the fence time (TTL/2); 1 s at most, as a JetStream write answers in milliseconds.
 */
export function requestTimeout(ttlMs: number): number {
  return Math.max(250, Math.min(1_000, Math.floor(ttlMs / 10)));
}
