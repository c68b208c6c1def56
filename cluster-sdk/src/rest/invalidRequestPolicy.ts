/**
 * Discord (Cloudflare) bans an IP for about an hour after 10,000 invalid requests (401, 403, 429) in
 * 10 minutes. The fleet counts its own together and, long before that, slows and then refuses the
 * requests that keep failing: a bot with a permission bug loses those calls, not all of REST.
 */

/** Fractions of the limit at which each step starts. */
export const INVALID_REQUEST_STEPS = {
  /** Routes that failed last time wait before they are tried again. */
  slowFailing: 0.1,
  /** Routes that failed 3 times in a row are refused. */
  refuseRepeatedFailures: 0.25,
  /** Routes whose last answer was invalid are refused. */
  refuseFailing: 0.5,
  /** Every request is refused until the count falls. */
  refuseAll: 0.8,
} as const;

export type InvalidRequestVerdict =
  | { readonly kind: 'allow' }
  | { readonly kind: 'delay'; readonly ms: number }
  | { readonly kind: 'refuse'; readonly why: string };

/**
 * What to do with a request to a route that failed `routeFailures` times in a row, when the fleet
 * made `fleetInvalid` invalid requests in the last 10 minutes of the `limit` that gets it banned.
 */
export function invalidRequestVerdict(
  fleetInvalid: number,
  limit: number,
  routeFailures: number,
): InvalidRequestVerdict {
  const share = fleetInvalid / Math.max(1, limit);
  const counted = `the fleet made ${fleetInvalid} invalid requests (401/403/429) in the last 10 minutes; Discord bans the IP at ${limit}`;
  if (share >= INVALID_REQUEST_STEPS.refuseAll)
    return { kind: 'refuse', why: `${counted}, so every request is refused until the count falls` };
  if (routeFailures >= 1 && share >= INVALID_REQUEST_STEPS.refuseFailing)
    return { kind: 'refuse', why: `${counted}, and this route's last answer was invalid` };
  if (routeFailures >= 3 && share >= INVALID_REQUEST_STEPS.refuseRepeatedFailures)
    return { kind: 'refuse', why: `${counted}, and this route failed ${routeFailures} times in a row` };
  if (routeFailures >= 1 && share >= INVALID_REQUEST_STEPS.slowFailing)
    return { kind: 'delay', ms: Math.min(10_000, 250 * 2 ** Math.min(6, routeFailures - 1)) };
  return { kind: 'allow' };
}
