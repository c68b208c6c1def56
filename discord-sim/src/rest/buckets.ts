import { createHash } from 'node:crypto';

/** One route group's limit; `id` names it, the hash Discord shows is derived from it. */
export interface BucketSpec {
  readonly id: string;
  readonly limit: number;
  readonly periodMs: number;
}

export interface BucketResult {
  /** `X-RateLimit-*` headers for this answer (a 429 adds its own). */
  readonly headers: Record<string, string>;
  /** Milliseconds until the bucket refills when it was empty, else null. */
  readonly retryAfterMs: number | null;
}

interface Window {
  start: number;
  used: number;
  periodMs: number;
}

// Every this many requests, expired windows are dropped so per-channel buckets do not pile up.
const SWEEP_EVERY = 10_000;

/**
 * Per-route buckets keyed by (route group, major parameter), as Discord's are: one hash per route group,
 * one count per channel / guild / webhook. Each is a fixed window that starts at its first request,
 * the model @discordjs/rest and other clients follow from the headers.
 */
export class RouteBuckets {
  private readonly windows = new Map<string, Window>();
  private takes = 0;

  public take(spec: BucketSpec, major: string, now = Date.now()): BucketResult {
    if (++this.takes % SWEEP_EVERY === 0) this.sweep(now);
    const key = `${spec.id}:${major}`;
    let window = this.windows.get(key);
    if (!window || now - window.start >= spec.periodMs) {
      window = { start: now, used: 0, periodMs: spec.periodMs };
      this.windows.set(key, window);
    }
    const resetAt = window.start + spec.periodMs;
    const limited = window.used >= spec.limit;
    if (!limited) window.used++;
    return {
      headers: {
        'x-ratelimit-limit': String(spec.limit),
        'x-ratelimit-remaining': String(spec.limit - window.used),
        'x-ratelimit-reset': (resetAt / 1000).toFixed(3),
        'x-ratelimit-reset-after': ((resetAt - now) / 1000).toFixed(3),
        'x-ratelimit-bucket': bucketHash(spec.id),
      },
      retryAfterMs: limited ? resetAt - now : null,
    };
  }

  private sweep(now: number): void {
    // An expired window behaves exactly like a missing one.
    for (const [key, window] of this.windows)
      if (now - window.start >= window.periodMs) this.windows.delete(key);
  }
}

const hashes = new Map<string, string>();

/** An opaque, stable hash per route group, like Discord's `X-RateLimit-Bucket`. */
export function bucketHash(id: string): string {
  let hash = hashes.get(id);
  if (hash === undefined) {
    hash = createHash('sha256').update(`discord-sim:${id}`).digest('hex').slice(0, 32);
    hashes.set(id, hash);
  }
  return hash;
}
