import { JetStreamApiCodes, JetStreamApiError, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { DisclusterError, ErrorCode } from 'discluster-protocol/errors';

/**
 * Opening Discluster's JetStream KV buckets and recognising compare-and-set conflicts: one
 * implementation for the SDK, CONTROL and MASTER (bucket and key names are in discluster-protocol's kv.ts).
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
  /** JetStream replicas (the `kv_replicas` setting); default 1. An existing bucket with fewer is raised. */
  readonly replicas?: number;
}

/** A bound bucket and the TTL and replica count it really has (an existing bucket keeps its own). */
export interface OpenBucket {
  readonly kv: KV;
  readonly ttlMs: number;
  readonly replicas: number;
}

/**
 * Creates the bucket or binds to the existing one (`Kvm.create` never changes an existing
 * bucket's configuration), raises its replicas to `spec.replicas` if it has fewer, then reports
 * the TTL and replicas it actually has.
 */
export async function openBucket(nc: NatsConnection, spec: BucketSpec): Promise<OpenBucket> {
  const kvm = new Kvm(jetstream(nc, { timeout: spec.timeoutMs }));
  const replicas = spec.replicas ?? 1;
  const options = {
    history: 1,
    ttl: spec.ttlMs,
    storage: spec.storage ?? ('file' as const),
    replicas,
    description: spec.description,
  };
  for (let attempt = 1; ; attempt++) {
    let kv: KV;
    try {
      kv = await kvm.create(spec.name, options);
    } catch (error) {
      // Processes of a fleet start together: two may both find no stream and both add it; the
      // loser gets "subjects overlap". Trying again binds to the winner's bucket.
      if (attempt < CREATE_ATTEMPTS) {
        await new Promise((resolve) => setTimeout(resolve, 20 * attempt + Math.random() * 30));
        continue;
      }
      if (replicas === 1) throw error;
      throw replicasError(spec.name, replicas, undefined, error);
    }
    const status = await kv.status();
    const actual = status.replicas;
    // Raise, never lower: a process still on the default 1 (an older one, a standalone tool)
    // must not strip a fleet's redundancy; a bucket with more replicas is only more durable.
    if (actual >= replicas) return { kv, ttlMs: status.ttl, replicas: actual };
    // A lone nats-server accepts num_replicas 3 in an update and still keeps one copy.
    if (status.streamInfo.cluster?.name === undefined) {
      throw replicasError(spec.name, replicas, actual, new Error('the nats-server is not part of a cluster'));
    }
    try {
      const jsm = await jetstreamManager(nc, { timeout: spec.timeoutMs });
      await jsm.streams.update(`KV_${spec.name}`, { num_replicas: replicas });
    } catch (error) {
      throw replicasError(spec.name, replicas, actual, error);
    }
    return { kv, ttlMs: status.ttl, replicas };
  }
}

function replicasError(
  name: string,
  wanted: number,
  actual: number | undefined,
  cause: unknown,
): DisclusterError {
  const what =
    actual === undefined
      ? `could not create KV bucket ${name} with ${wanted} replicas`
      : `KV bucket ${name} has ${actual} replica${actual === 1 ? '' : 's'} but kv_replicas is ${wanted}, and raising it failed`;
  return new DisclusterError(
    ErrorCode.BucketReplicas,
    `${what} (${describeError(cause)}). kv_replicas must not exceed the number of JetStream servers in the ` +
      `NATS cluster (1 on a single nats-server) and they must all be up: set kv_replicas to at most that, or ` +
      `bring the missing servers up${actual === undefined ? '' : `, or raise it by hand: nats stream edit KV_${name} --replicas ${wanted}`}.`,
    { cause },
  );
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
