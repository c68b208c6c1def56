import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { openBucket, setBucketTtl, type OpenBucket } from 'discluster-runtime';
import type { Logger } from './logger.js';

/** How long MASTER waits for JetStream to answer a request about a bucket. */
export const BUCKET_REQUEST_TIMEOUT_MS = 10_000;

/**
 * Opens (creating if needed) a KV bucket whose TTL MASTER owns, and sets the TTL to `ttlMs` if an
 * existing bucket has another one. `ttlMs` 0 means no TTL. Not for buckets of leases, whose TTL
 * must never drop below what their holders count on ({@link openLeaseBucket}).
 */
export async function openOwnedBucket(
  nc: NatsConnection,
  name: string,
  ttlMs: number,
  description: string,
  replicas: number,
): Promise<KV> {
  const bucket = await openBucket(nc, {
    name,
    ttlMs,
    description,
    timeoutMs: BUCKET_REQUEST_TIMEOUT_MS,
    replicas,
  });
  if (bucket.ttlMs !== ttlMs) await setBucketTtl(nc, name, ttlMs, BUCKET_REQUEST_TIMEOUT_MS);
  return bucket.kv;
}

/** A bucket of leases of `bot` (the leader lease, the shard leases) as MASTER opens it. */
export interface LeaseBucketOptions {
  readonly nc: NatsConnection;
  readonly bot: string;
  /** The TTL this MASTER wants (ms: `leader_lease_ms`, `lease_ms`); a missing bucket is created with it. */
  readonly ttlMs: number;
  readonly logger: Logger;
  /** `kv_replicas`: a new bucket gets it, an existing one with fewer is raised to it (default 1). */
  readonly replicas?: number;
}

/**
 * Opens (creating with `options.ttlMs` if missing) a bucket of leases, leaving an existing bucket's
 * TTL as it is: when it may change, and how, is for leadership/leaderBucket.ts and
 * leadership/leaseBucketTtl.ts to decide (issue 13 d).
 */
export function openLeaseBucket(
  options: LeaseBucketOptions,
  name: string,
  description: string,
): Promise<OpenBucket> {
  return openBucket(options.nc, {
    name,
    ttlMs: options.ttlMs,
    description,
    timeoutMs: BUCKET_REQUEST_TIMEOUT_MS,
    replicas: options.replicas ?? 1,
  });
}
