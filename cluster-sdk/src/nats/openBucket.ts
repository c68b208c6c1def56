import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { DisclusterError, ErrorCode } from 'discluster-protocol';

const CREATE_ATTEMPTS = 3;

/** How a Discluster bucket is created if it does not exist yet. */
export interface BucketSpec {
  readonly name: string;
  /** Stream max_age in ms; 0 for none. */
  readonly ttlMs: number;
  readonly storage: 'file' | 'memory';
  readonly replicas: number;
  readonly description: string;
  /** JetStream request timeout. */
  readonly timeoutMs: number;
}

/** A bound bucket and the TTL it really has (an existing bucket keeps its own configuration). */
export interface OpenBucket {
  readonly kv: KV;
  readonly ttlMs: number;
}

/**
 * Creates the bucket or binds to the existing one (`Kvm.create` never changes an existing
 * bucket's configuration), then reports the TTL it actually has.
 */
export async function openBucket(nc: NatsConnection, spec: BucketSpec): Promise<OpenBucket> {
  const kvm = new Kvm(jetstream(nc, { timeout: spec.timeoutMs }));
  const options = {
    history: 1,
    ttl: spec.ttlMs,
    storage: spec.storage === 'memory' ? ('memory' as const) : ('file' as const),
    replicas: spec.replicas,
    description: spec.description,
  };
  for (let attempt = 1; ; attempt++) {
    try {
      const kv = await kvm.create(spec.name, options);
      const status = await kv.status();
      return { kv, ttlMs: status.ttl };
    } catch (error) {
      // Processes of a fleet start together: two may both find no stream and both add it; the
      // loser gets "subjects overlap". Trying again binds to the winner's bucket.
      if (attempt >= CREATE_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt + Math.random() * 30));
    }
  }
}

/**
 * Throws `DISCLUSTER_ERR_BUCKET_CONFIG_MISMATCH` if an existing bucket's TTL is shorter than
 * `minimumMs`, which would let entries vanish earlier than a promise relies on.
 */
export function requireTtlAtLeast(bucket: OpenBucket, name: string, minimumMs: number, why: string): void {
  if (bucket.ttlMs === 0 || bucket.ttlMs < minimumMs) {
    throw new DisclusterError(
      ErrorCode.BucketConfigMismatch,
      `KV bucket ${name} has a TTL of ${bucket.ttlMs} ms, but ${why} needs at least ${minimumMs} ms. ` +
        'Every process of one bot must use the same identify window and margin; delete the bucket to change them.',
    );
  }
}
