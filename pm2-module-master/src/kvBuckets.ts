import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { openBucket, setBucketTtl } from 'discluster-runtime';

/**
 * Opens (creating if needed) a KV bucket whose TTL MASTER owns, and sets the TTL to `ttlMs` if an
 * existing bucket has another one. `ttlMs` 0 means no TTL. Not for buckets of leases, whose TTL
 * must never drop below what their holders count on (leaderBucket.ts, leaseBucketTtl.ts).
 */
export async function openOwnedBucket(
  nc: NatsConnection,
  name: string,
  ttlMs: number,
  description: string,
  replicas: number,
): Promise<KV> {
  const bucket = await openBucket(nc, { name, ttlMs, description, timeoutMs: 10_000, replicas });
  if (bucket.ttlMs !== ttlMs) await setBucketTtl(nc, name, ttlMs, 10_000);
  return bucket.kv;
}
