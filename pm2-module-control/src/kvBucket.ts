import { JetStreamApiCodes, JetStreamApiError, jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

/**
 * Opening a JetStream KV bucket and recognising compare-and-set conflicts. CONTROL keeps its own
 * small copy of these (the SDK has equivalents) because it must not import the SDK.
 */

const CREATE_ATTEMPTS = 3;

/** How the bucket is created when it does not exist yet. */
export interface BucketSpec {
  readonly name: string;
  /** Stream max_age in ms (0: none). */
  readonly ttlMs: number;
  readonly description: string;
  /** JetStream request timeout, in ms. */
  readonly timeoutMs: number;
}

/** A bound bucket and the TTL it really has: an existing bucket keeps its own configuration. */
export interface OpenBucket {
  readonly kv: KV;
  readonly ttlMs: number;
}

/** Creates the bucket or binds to the existing one (`Kvm.create` never changes an existing bucket). */
export async function openBucket(nc: NatsConnection, spec: BucketSpec): Promise<OpenBucket> {
  const kvm = new Kvm(jetstream(nc, { timeout: spec.timeoutMs }));
  for (let attempt = 1; ; attempt++) {
    try {
      const kv = await kvm.create(spec.name, {
        history: 1,
        ttl: spec.ttlMs,
        storage: 'file',
        replicas: 1,
        description: spec.description,
      });
      return { kv, ttlMs: (await kv.status()).ttl };
    } catch (error) {
      // Processes of a fleet start together: two may both find no stream and both add it; the
      // loser gets "subjects overlap", and trying again binds to the winner's bucket.
      if (attempt >= CREATE_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt + Math.random() * 30));
    }
  }
}

/** True if a KV compare-and-set (`create`, `update`, `delete` with `previousSeq`) lost a race. */
export function isCasConflict(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
      error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

/** One line for logs. */
export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
