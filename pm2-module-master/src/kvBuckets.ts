import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { openBucket, setBucketTtl } from 'discluster-protocol';

export { isCasConflict } from 'discluster-protocol';

/**
 * Opens (creating if needed) a KV bucket whose TTL MASTER owns, and sets the TTL to `ttlMs` if an
 * existing bucket has another one (an operator changed `lease_ms`): leases renewed from then on
 * live by the new time. `ttlMs` 0 means no TTL. `replicas` is the `kv_replicas` setting (an existing
 * bucket with fewer is raised to it).
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
