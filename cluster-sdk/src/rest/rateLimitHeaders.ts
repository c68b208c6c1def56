/** The headers of a response, as @discordjs/rest's `ResponseLike` carries them. */
export interface HeadersLike {
  get(name: string): string | null;
}

/** A per-route bucket as one answer described it. */
export interface ObservedBucket {
  /** `X-RateLimit-Bucket`, when Discord sent one. */
  readonly bucket: string | null;
  readonly limit: number;
  readonly remaining: number;
  /** `X-RateLimit-Reset-After` in ms: relative, so the two clocks never need to agree. */
  readonly resetAfterMs: number;
}

/** A 429 as its headers described it. */
export interface ObservedRateLimit {
  readonly retryAfterMs: number;
  readonly global: boolean;
  /** `X-RateLimit-Scope`: `user` (ours), `global`, or `shared` (a resource's, not counted as invalid). */
  readonly scope: string;
}

function finite(text: string | null): number | null {
  if (text === null || text.trim() === '') return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

/** The bucket headers of an answer; null when it has none or they do not parse. */
export function readBucket(headers: HeadersLike): ObservedBucket | null {
  const limit = finite(headers.get('x-ratelimit-limit'));
  const remaining = finite(headers.get('x-ratelimit-remaining'));
  const resetAfter = finite(headers.get('x-ratelimit-reset-after'));
  if (limit === null || remaining === null || resetAfter === null) return null;
  if (limit < 1 || remaining < 0 || resetAfter < 0) return null;
  return {
    bucket: headers.get('x-ratelimit-bucket'),
    limit: Math.floor(limit),
    remaining: Math.min(Math.floor(remaining), Math.floor(limit)),
    resetAfterMs: Math.ceil(resetAfter * 1000),
  };
}

/** What a 429 says; null for any other status. */
export function readRateLimited(status: number, headers: HeadersLike): ObservedRateLimit | null {
  if (status !== 429) return null;
  const retryAfter = finite(headers.get('retry-after')) ?? 1;
  const global = headers.get('x-ratelimit-global') === 'true';
  return {
    retryAfterMs: Math.ceil(retryAfter * 1000),
    global,
    scope: headers.get('x-ratelimit-scope') ?? (global ? 'global' : 'user'),
  };
}

/**
 * Whether Discord counts the answer towards the invalid-request limit that gets an IP banned:
 * 401, 403, and 429 except those of a `shared` resource limit.
 */
export function isInvalidRequest(status: number, rateLimited: ObservedRateLimit | null): boolean {
  if (status === 401 || status === 403) return true;
  return status === 429 && rateLimited?.scope !== 'shared';
}
