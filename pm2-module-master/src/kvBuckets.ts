import { JetStreamApiCodes, JetStreamApiError, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

/** True if a KV compare-and-set (`create`, `update`) lost a race: the key changed meanwhile. */
export function isCasConflict(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
      error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

/**
 * Opens (creating if needed) a KV bucket whose TTL MASTER owns, and sets the TTL to `ttlMs` if an
 * existing bucket has another one (an operator changed `lease_ms`): leases renewed from then on
 * live by the new time. `ttlMs` 0 means no TTL.
 */
export async function openOwnedBucket(
  nc: NatsConnection,
  name: string,
  ttlMs: number,
  description: string,
): Promise<KV> {
  const kvm = new Kvm(jetstream(nc, { timeout: 10_000 }));
  let kv: KV | undefined;
  for (let attempt = 1; !kv; attempt++) {
    try {
      kv = await kvm.create(name, { history: 1, ttl: ttlMs, description });
    } catch (error) {
      // Two processes creating it at once: the loser binds to the winner's bucket next time.
      if (attempt >= 3) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }
  const status = await kv.status();
  if (status.ttl !== ttlMs) {
    const jsm = await jetstreamManager(nc, { timeout: 10_000 });
    // max_age is in nanoseconds.
    await jsm.streams.update(`KV_${name}`, { max_age: ttlMs * 1_000_000 });
  }
  return kv;
}

/** Binds to an existing bucket without creating it (the CLI reads, it never creates). */
export async function openExistingBucket(nc: NatsConnection, name: string): Promise<KV | null> {
  try {
    return await new Kvm(jetstream(nc, { timeout: 5_000 })).open(name);
  } catch {
    return null;
  }
}
