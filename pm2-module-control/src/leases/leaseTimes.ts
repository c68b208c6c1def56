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
 * Renewals every TTL/6, each request bounded by TTL/10, a failed round retried after TTL/20: a lost
 * request or two (a NATS restart, a dropped packet) is repaired well inside the fence time (TTL/2),
 * instead of waiting for the next round while the fence clock runs.
 */
export function leaseTimes(ttlMs: number): LeaseTimes {
  return {
    ttlMs,
    fenceAfterMs: Math.max(100, Math.floor(ttlMs / 2)),
    renewEveryMs: Math.max(25, Math.floor(ttlMs / 6)),
    retryMs: Math.max(25, Math.floor(ttlMs / 20)),
    // The fence check runs on its own timer: a renewal stuck on a dead link must not delay it.
    checkEveryMs: Math.max(25, Math.min(1_000, Math.floor(ttlMs / 10))),
    pollMs: Math.max(100, Math.min(1_000, Math.floor(ttlMs / 8))),
    requestTimeoutMs: requestTimeout(ttlMs),
  };
}

/**
 * KV request timeout: short enough that a renewal round on a dead link, and its retry, end well
 * before the fence time (TTL/2).
 */
export function requestTimeout(ttlMs: number): number {
  return Math.max(250, Math.min(2_000, Math.floor(ttlMs / 10)));
}
