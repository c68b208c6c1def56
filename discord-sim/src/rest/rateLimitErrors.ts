import { RestError } from './errors';

const RATE_LIMITED = 'You are being rate limited.';
/** What Discord's edge answers a banned IP with (discord-api-docs#5810). */
export const BAN_MESSAGE =
  'You are being blocked from accessing our API temporarily due to exceeding our rate limits frequently. ' +
  'Please read our docs at https://discord.com/developers/docs/topics/rate-limits to prevent this moving forward.';

const seconds = (ms: number): number => Math.max(0.001, Math.round(ms) / 1000);

/** A per-route 429: the bucket's headers plus scope `user` and Retry-After (whole seconds, rounded up). */
export function routeLimited(retryAfterMs: number, bucketHeaders: Record<string, string>): RestError {
  return new RestError(
    429,
    { message: RATE_LIMITED, retry_after: seconds(retryAfterMs), global: false },
    {
      ...bucketHeaders,
      'retry-after': String(Math.ceil(retryAfterMs / 1000)),
      'x-ratelimit-scope': 'user',
    },
  );
}

/** A global 429: `X-RateLimit-Global`, scope `global`, no bucket headers. */
export function globalLimited(retryAfterMs: number): RestError {
  return new RestError(
    429,
    { message: RATE_LIMITED, retry_after: seconds(retryAfterMs), global: true },
    {
      'retry-after': String(Math.ceil(retryAfterMs / 1000)),
      'x-ratelimit-global': 'true',
      'x-ratelimit-scope': 'global',
    },
  );
}

/**
 * A request from a banned IP. Discord's edge answers it without X-RateLimit headers (the real answer
 * is Cloudflare's static page, sometimes this JSON, and carries no Retry-After); the simulator sends
 * the JSON with the ban's remaining time so clients back off instead of retrying in a loop.
 */
export function banned(retryAfterMs: number): RestError {
  return new RestError(
    429,
    { message: BAN_MESSAGE, code: 0, retry_after: seconds(retryAfterMs), global: false },
    { 'retry-after': String(Math.ceil(retryAfterMs / 1000)) },
  );
}
