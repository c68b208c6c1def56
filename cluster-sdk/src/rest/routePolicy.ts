import type { RestRouteRecord } from 'discluster-protocol/restRecords';
import type { ObservedBucket, ObservedRateLimit } from './rateLimitHeaders.js';

/**
 * The fleet's shared view of one route's bucket, as pure functions: what a process may do before
 * sending ({@link decideRoute}) and how an answer changes the record ({@link mergeRouteAnswer}).
 * Every process applies them to the record in KV with compare-and-set, so two processes never both
 * take the last request of a window.
 */

export interface RoutePolicyOptions {
  /** Extra wait after a window's reset, for clock and network jitter (like @discordjs/rest's `offset`). */
  readonly offsetMs: number;
  /** How long the process that sends a route's first request holds it before another may try. */
  readonly probeMs: number;
  /** How often a process waiting for someone else's probe looks again. */
  readonly pollMs: number;
}

export type RouteDecision =
  /** Send; write `next` first (null: nothing to reserve, the route has no per-route limit). */
  | { readonly kind: 'send'; readonly next: RestRouteRecord | null }
  /** Wait until then (epoch ms), then decide again on a fresh record. */
  | { readonly kind: 'wait'; readonly until: number };

/** A record for a route nobody has sent to yet. */
export function emptyRouteRecord(): RestRouteRecord {
  return {
    v: 1,
    limit: 0,
    remaining: 0,
    resetAt: 0,
    periodMs: 0,
    confirmed: false,
    unlimited: false,
    probeUntil: 0,
    failures: 0,
    lastStatus: 0,
  };
}

/** What the fleet's record allows a process to do now. */
export function decideRoute(
  record: RestRouteRecord | null,
  now: number,
  options: RoutePolicyOptions,
): RouteDecision {
  const current = record ?? emptyRouteRecord();
  if (current.unlimited) return { kind: 'send', next: null };
  if (current.limit === 0) {
    // Nobody knows the bucket: one request at a time learns it, the others wait for its headers.
    if (current.probeUntil > now)
      return { kind: 'wait', until: Math.min(current.probeUntil, now + options.pollMs) };
    return { kind: 'send', next: { ...current, probeUntil: now + options.probeMs } };
  }
  if (now < current.resetAt) {
    if (current.remaining > 0)
      return { kind: 'send', next: { ...current, remaining: current.remaining - 1 } };
    return { kind: 'wait', until: current.resetAt + options.offsetMs };
  }
  if (now < current.resetAt + options.offsetMs)
    return { kind: 'wait', until: current.resetAt + options.offsetMs };
  // The window is over. If it was only estimated (no answer fixed its reset yet), Discord's may end
  // later: wait one more period for an answer before starting the next one regardless.
  if (!current.confirmed && now < current.resetAt + current.periodMs)
    return { kind: 'wait', until: Math.min(current.resetAt + current.periodMs, now + options.pollMs) };
  return {
    kind: 'send',
    next: {
      ...current,
      remaining: current.limit - 1,
      // At the earliest Discord's window ends one period after our request arrives: an estimate
      // that an answer replaces; until then no further window starts.
      resetAt: now + current.periodMs,
      confirmed: false,
    },
  };
}

/** One answer, as the process that got it saw it. */
export interface RouteAnswer {
  readonly status: number;
  readonly bucket: ObservedBucket | null;
  readonly rateLimited: ObservedRateLimit | null;
  /** Counts towards Discord's invalid-request limit. */
  readonly invalid: boolean;
  /** This request was the one sent to learn the bucket. */
  readonly probe: boolean;
}

/** The record after an answer arrived at `now`. */
export function mergeRouteAnswer(
  record: RestRouteRecord | null,
  answer: RouteAnswer,
  now: number,
): RestRouteRecord {
  const base = record ?? emptyRouteRecord();
  const failures = answer.invalid ? base.failures + 1 : answer.status < 400 ? 0 : base.failures;
  let next: RestRouteRecord = { ...base, failures, lastStatus: answer.status };
  if (answer.probe) next = { ...next, probeUntil: 0 };
  const observed = answer.bucket;
  if (observed) {
    const resetAt = now + observed.resetAfterMs;
    const periodMs = Math.max(base.periodMs, observed.resetAfterMs);
    if (base.limit === 0 || base.unlimited) {
      next = {
        ...next,
        limit: observed.limit,
        remaining: observed.remaining,
        resetAt,
        periodMs,
        confirmed: true,
        unlimited: false,
        probeUntil: 0,
      };
    } else if (resetAt < base.resetAt - base.periodMs / 2) {
      // An answer from a window the fleet has already left: it says nothing about the current one.
      next = { ...next, periodMs };
    } else if (resetAt > base.resetAt + base.periodMs / 2) {
      // A later window than the record knows (it expired early, or Discord reset it): Discord's word.
      next = {
        ...next,
        limit: observed.limit,
        remaining: observed.remaining,
        resetAt,
        periodMs,
        confirmed: true,
      };
    } else {
      next = {
        ...next,
        limit: observed.limit,
        remaining: Math.min(base.remaining, observed.remaining),
        resetAt: Math.max(base.resetAt, resetAt),
        periodMs,
        confirmed: true,
      };
    }
  } else if (answer.status < 400 && base.limit === 0) {
    // A success without bucket headers: this route has no per-route limit.
    next = { ...next, unlimited: true, probeUntil: 0 };
  }
  const limited = answer.rateLimited;
  if (limited && !limited.global && next.limit > 0) {
    next = {
      ...next,
      remaining: 0,
      resetAt: Math.max(next.resetAt, now + limited.retryAfterMs),
      confirmed: true,
    };
  }
  return next;
}
