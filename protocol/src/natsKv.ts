import { JetStreamApiCodes, JetStreamApiError, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { DisclusterError, ErrorCode } from './errors.js';

/**
 * Opening Discluster's JetStream KV buckets and recognising compare-and-set conflicts: one
 * implementation for the SDK, CONTROL and MASTER (bucket and key names are in kv.ts).
 */

const CREATE_ATTEMPTS = 3;

/** How a bucket is created if it does not exist yet. */
export interface BucketSpec {
  readonly name: string;
  /** Stream max_age in ms; 0 for none. */
  readonly ttlMs: number;
  readonly description: string;
  /** JetStream request timeout, in ms. */
  readonly timeoutMs: number;
  /** Default `file`. */
  readonly storage?: 'file' | 'memory';
  /** Default 1. */
  readonly replicas?: number;
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
    storage: spec.storage ?? ('file' as const),
    replicas: spec.replicas ?? 1,
    description: spec.description,
  };
  for (let attempt = 1; ; attempt++) {
    try {
      const kv = await kvm.create(spec.name, options);
      return { kv, ttlMs: (await kv.status()).ttl };
    } catch (error) {
      // Processes of a fleet start together: two may both find no stream and both add it; the
      // loser gets "subjects overlap". Trying again binds to the winner's bucket.
      if (attempt >= CREATE_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt + Math.random() * 30));
    }
  }
}

/** KV buckets keep their duplicate window within their TTL, at most two minutes (as `Kvm.create` sets it). */
const MAX_DUPLICATE_WINDOW_MS = 120_000;

/**
 * Sets an existing bucket's TTL (the owner of a setting such as MASTER's `lease_ms` changed it).
 * It applies to every entry at once, each living by the new TTL from its last write.
 */
export async function setBucketTtl(
  nc: NatsConnection,
  name: string,
  ttlMs: number,
  timeoutMs: number,
): Promise<void> {
  const jsm = await jetstreamManager(nc, { timeout: timeoutMs });
  // The server refuses a max age below the duplicate window, which creation set to the old TTL.
  const windowMs = ttlMs > 0 ? Math.min(ttlMs, MAX_DUPLICATE_WINDOW_MS) : MAX_DUPLICATE_WINDOW_MS;
  await jsm.streams.update(`KV_${name}`, {
    max_age: ttlMs * 1_000_000, // nanoseconds
    duplicate_window: windowMs * 1_000_000,
  });
}

/** Binds to an existing bucket without creating it; null if there is none (readers never create). */
export async function openExistingBucket(
  nc: NatsConnection,
  name: string,
  timeoutMs: number,
): Promise<KV | null> {
  try {
    return await new Kvm(jetstream(nc, { timeout: timeoutMs })).open(name);
  } catch {
    return null;
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

/** True if a KV compare-and-set (`create`, `update`, `put`/`delete` with `previousSeq`) lost a race. */
export function isCasConflict(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
      error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

/** A one-line description of any thrown value, for logs and debug events. */
export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
