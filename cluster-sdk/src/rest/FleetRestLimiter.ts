import { createHash, randomUUID } from 'node:crypto';
import type { RESTOptions, ResponseLike } from '@discordjs/rest';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { DisclusterError, ErrorCode } from 'discluster-protocol/errors';
import { restBucket } from 'discluster-protocol/kv';
import { describeError, openBucket } from 'discluster-runtime';
import { delay } from '../util/delay.js';
import { GlobalSlots, LATE_TOLERANCE_MS, type GlobalClaim } from './GlobalSlots.js';
import { reportingWriteTime } from './writeTime.js';
import { InvalidRequestCount } from './InvalidRequestCount.js';
import { invalidRequestVerdict } from './invalidRequestPolicy.js';
import { discordRest } from './lazyModules.js';
import { LocalGlobalSlots } from './LocalGlobalSlots.js';
import { isInvalidRequest, readBucket, readRateLimited } from './rateLimitHeaders.js';
import { restRouteOf, type RestRoute } from './restRoute.js';
import { RouteLimits, type RouteReservation } from './RouteLimits.js';
import { TokenRejection } from './TokenRejection.js';

/** @discordjs/rest's `makeRequest` seam. */
export type MakeRequest = RESTOptions['makeRequest'];
type RequestInitLike = Parameters<MakeRequest>[1];

/** What a {@link FleetRestLimiter} needs; everything but `bot`, `token` and `processes` has a default. */
export interface FleetRestLimiterOptions {
  readonly bot: string;
  /** Only hashed (to tell a rejected token from a new one), never stored or sent. */
  readonly token: string;
  /** The fleet's global limit (`rest_global_per_second`). Default 50. */
  readonly globalPerSecond?: number;
  /** Processes that share the limit: each takes 1/processes of it while NATS cannot be reached. */
  readonly processes: number;
  /** Invalid requests per 10 minutes at which Discord bans the IP. Default 10,000. */
  readonly invalidRequestLimit?: number;
  /** JetStream replicas of the bucket (`kv_replicas`). Default 1. */
  readonly replicas?: number;
  /** Margin added to each global slot's second, for network jitter. Default 30 ms. */
  readonly globalMarginMs?: number;
  /** Wait added after a route's reset. Default 50 ms (as @discordjs/rest). */
  readonly offsetMs?: number;
  /** JetStream request timeout. Default 2,000 ms. */
  readonly requestTimeoutMs?: number;
  /** The fetch that really sends. Default @discordjs/rest's own. */
  readonly send?: MakeRequest;
  /** Discord answered 401; `first` is true in exactly one process of the fleet. */
  readonly onTokenRejected?: (first: boolean) => void;
  /** Alert-worthy: the limiter fell back to the local share, or refused requests. */
  readonly onWarn?: (message: string) => void;
  readonly onDebug?: (message: string) => void;
}

// A claim older than this is not used: the slot could be claimed again a spacing after it.
const STALE_CLAIM_MS = 500;
// The most a global slot is claimed ahead of when it frees up (see chooseGlobalSlot).
const MAX_CLAIM_LEAD_MS = 50;
// After a NATS failure, the local share is used this long before NATS is tried again.
const DEGRADED_MS = 5_000;
// A refusal is logged at most this often per route, so a failing loop cannot flood the log.
const REFUSAL_LOG_MS = 60_000;
const NEVER = new AbortController().signal;

/**
 * Discluster's fleet-wide REST limits, plugged into @discordjs/rest as its `makeRequest`: every
 * call first reserves room in its route's shared bucket and one of the fleet's global slots, then
 * sends, then tells the fleet what Discord's headers said. Invalid answers are counted fleet-wide
 * and a 401 stops REST in every process. If NATS cannot be reached, the process falls back to its
 * share of the global limit (and @discordjs/rest's own per-route handling): slower, never unlimited.
 */
export class FleetRestLimiter {
  readonly #send: MakeRequest;
  // Private (#) like everything that came with the token: util.inspect must not reach it.
  readonly #options: Omit<FleetRestLimiterOptions, 'token'>;
  private readonly instanceId = randomUUID().replaceAll('-', '').slice(0, 16);
  private readonly local: LocalGlobalSlots;
  private readonly invalidLimit: number;
  private degradedUntil = 0;
  /** Reports of answers still being written to the fleet (see makeRequest). */
  private readonly background = new Set<Promise<void>>();
  /** How long a request takes from its global claim to being ready to send: the claim's lead. */
  private claimLeadMs = 0;
  private readonly refusalsLogged = new Map<string, number>();
  private closed = false;

  private constructor(
    options: Omit<FleetRestLimiterOptions, 'token'>,
    private readonly slots: GlobalSlots,
    private readonly routes: RouteLimits,
    private readonly invalid: InvalidRequestCount,
    private readonly token: TokenRejection,
  ) {
    this.#options = options;
    this.#send = options.send ?? ((url, init) => discordRest().DefaultRestOptions.makeRequest(url, init));
    const perSecond = options.globalPerSecond ?? 50;
    this.local = new LocalGlobalSlots(
      perSecond / Math.max(1, options.processes),
      1000 + (options.globalMarginMs ?? 30),
    );
    this.invalidLimit = options.invalidRequestLimit ?? 10_000;
  }

  /** Opens (or creates) the bot's REST bucket and starts watching the global slots and the token. */
  public static async open(nc: NatsConnection, options: FleetRestLimiterOptions): Promise<FleetRestLimiter> {
    const perSecond = options.globalPerSecond ?? 50;
    if (!Number.isSafeInteger(perSecond) || perSecond < 1)
      throw new DisclusterError(
        ErrorCode.InvalidOption,
        `rest_global_per_second must be a positive integer, got ${String(perSecond)}`,
      );
    const bucket = await openBucket(nc, {
      name: restBucket(options.bot),
      ttlMs: 30 * 60_000,
      description: "Discluster's shared REST rate limits: global slots, route buckets, invalid requests",
      timeoutMs: options.requestTimeoutMs ?? 2_000,
      replicas: options.replicas ?? 1,
      // Tens of writes a second of state that is worth nothing after a minute: memory, not disk.
      // A nats-server restart forgets it; the fleet then relearns the buckets from their headers.
      storage: 'memory',
    });
    const kv: KV = bucket.kv;
    const tokenTag = createHash('sha256')
      .update(`discluster-rest-token:${options.token}`)
      .digest('base64url')
      .slice(0, 16);
    let limiter: FleetRestLimiter | null = null;
    const slots = new GlobalSlots(kv, perSecond, 1000 + (options.globalMarginMs ?? 30), (message) =>
      options.onDebug?.(message),
    );
    const routes = new RouteLimits(kv, { offsetMs: options.offsetMs ?? 50, probeMs: 10_000, pollMs: 50 });
    const token = new TokenRejection(kv, tokenTag, () =>
      limiter?.debug('the bot token was rejected (401): REST is stopped'),
    );
    const { token: _token, ...withoutToken } = options;
    limiter = new FleetRestLimiter(withoutToken, slots, routes, new InvalidRequestCount(kv, 1_000), token);
    await Promise.all([slots.start(), token.start()]);
    return limiter;
  }

  /** @discordjs/rest's `makeRequest`: limits, sends, reports. */
  public readonly makeRequest: MakeRequest = async (
    url: string,
    init: RequestInitLike,
  ): Promise<ResponseLike> => {
    const signal = init.signal ?? NEVER;
    const route = restRouteOf(init.method ?? 'GET', url);
    if (this.closed)
      throw new DisclusterError(ErrorCode.Closed, 'cluster.rest is closed (the cluster stopped)');
    if (this.token.rejected) throw tokenRejectedError();
    let reservation: RouteReservation | null = null;
    let claim: GlobalClaim | null = null;
    for (;;) {
      ({ reservation, claim } = await this.reserve(route, signal));
      if (claim) {
        const readyAt = Date.now();
        // Learn the lead (smoothed, bounded), then wait for the slot's time: never send before it.
        const took = Math.min(MAX_CLAIM_LEAD_MS, Math.max(0, readyAt - claim.claimedAt));
        this.claimLeadMs += (took - this.claimLeadMs) / 8;
        if (claim.at > readyAt) await delay(claim.at - readyAt, signal);
      }
      // Stalled past the route's window (a starved process): the window it counted in is over, and
      // the next one's count may be spent by others. Take a place in the next one instead.
      if (reservation && Date.now() >= reservation.validUntil) continue;
      break;
    }
    let sendInit = init;
    if (claim) {
      // The slot counts from the real send: now, or when undici writes the headers if that is later.
      const sentAt = this.datedClaim(claim);
      sentAt(Date.now());
      sendInit = { ...init, dispatcher: reportingWriteTime(init.dispatcher, sentAt) };
    }
    // Checked again after the waits: another process may have met a 401 meanwhile.
    if (this.token.rejected) throw tokenRejectedError();
    let response: ResponseLike;
    try {
      response = await this.#send(url, sendInit);
    } catch (error) {
      if (reservation) await this.fleetStep(signal, () => this.routes.abandon(reservation), undefined);
      throw error;
    }
    const reported = this.afterAnswer(route, reservation, response);
    // A plain success that learned nothing new is told to the fleet in the background: the caller
    // has its answer one round trip sooner. A probe (others wait for its headers), a failure and a
    // rate limit are told before the caller goes on.
    if (response.status < 300 && !reservation?.probe) this.track(reported);
    else await reported;
    return response;
  };

  /**
   * Reports of when the claimed request really left, in order: each one later than the slot's time
   * by more than {@link LATE_TOLERANCE_MS} moves the slot there (see GlobalSlots.sentLate).
   */
  private datedClaim(claim: GlobalClaim): (sentAt: number) => void {
    let current: Promise<GlobalClaim | null> = Promise.resolve(claim);
    return (sentAt) => {
      current = current.then((latest) =>
        latest && sentAt > latest.at + LATE_TOLERANCE_MS ? this.slots.sentLate(latest, sentAt) : latest,
      );
    };
  }

  /** Keeps a background report from going unhandled, and lets close() wait for the last ones. */
  private track(work: Promise<void>): void {
    this.background.add(work);
    void work
      .catch((error: unknown) => this.debug(`REST: a report to the fleet failed: ${describeError(error)}`))
      .finally(() => this.background.delete(work));
  }

  /** Discord answered 401 to the token, here or in another process of the fleet: REST is stopped. */
  public get tokenRejected(): boolean {
    return this.token.rejected;
  }

  public close(): void {
    this.closed = true;
    this.slots.close();
    this.token.close();
  }

  /** Never shows the token's hash or options: `util.inspect(cluster.rest)` goes through here too. */
  public toJSON(): unknown {
    return { globalPerSecond: this.#options.globalPerSecond ?? 50, degraded: this.degraded };
  }

  private get degraded(): boolean {
    return Date.now() < this.degradedUntil;
  }

  /** One global slot: the fleet's (null when NATS failed and the local share was taken instead). */
  /**
   * Admission, a global slot and the route's window, in that order. The global slot is claimed as
   * the request is sent, and the route's window reserved right after it: a request never waits
   * between reserving and sending, so it cannot carry its reservation into the next window. A slot
   * taken for a route that filled up meanwhile is lost, which only ever makes the fleet slower.
   */
  private async reserve(
    route: RestRoute,
    signal: AbortSignal,
  ): Promise<{ reservation: RouteReservation | null; claim: GlobalClaim | null }> {
    for (;;) {
      const coordinated = await this.fleetStep(signal, () => this.admit(route, signal), false);
      let claim = route.globalExempt ? null : await this.takeGlobal(signal);
      let reservation: RouteReservation | null = null;
      if (coordinated) {
        const reserved = await this.fleetStep(signal, () => this.routes.tryReserve(route), undefined);
        if (reserved === null) continue; // Another process took the window's last request.
        reservation = reserved ?? null; // undefined: NATS failed, @discordjs/rest's own limits apply.
      }
      // Stalled for half a second or more since the claim: the slot may be claimed again soon, so
      // this request takes a new one (its route reservation stays valid, checked below).
      if (claim && Date.now() - claim.at > STALE_CLAIM_MS) claim = await this.takeGlobal(signal);
      if (reservation && Date.now() >= reservation.validUntil) continue;
      return { reservation, claim };
    }
  }

  private takeGlobal(signal: AbortSignal): Promise<GlobalClaim | null> {
    return this.fleetStep(
      signal,
      () => this.slots.take(signal, this.claimLeadMs),
      null,
      async () => {
        await this.local.take(signal);
        return null;
      },
    );
  }

  /** The invalid-request policy, then room in the route's shared bucket; true once there is. */
  private async admit(route: RestRoute, signal: AbortSignal): Promise<boolean> {
    const verdict = invalidRequestVerdict(
      await this.invalid.fleetCount(),
      this.invalidLimit,
      await this.routes.failuresOf(route),
    );
    if (verdict.kind === 'refuse') throw this.refused(route, verdict.why);
    if (verdict.kind === 'delay') await delay(verdict.ms, signal);
    await this.routes.waitForRoom(route, signal);
    return true;
  }

  private async afterAnswer(
    route: RestRoute,
    reservation: RouteReservation | null,
    response: ResponseLike,
  ): Promise<void> {
    const rateLimited = readRateLimited(response.status, response.headers);
    const invalid = isInvalidRequest(response.status, rateLimited);
    if (rateLimited?.global)
      this.#options.onWarn?.(
        `REST: Discord answered a global 429 on ${route.template} (retry after ${rateLimited.retryAfterMs} ms); the fleet's global limit may be set above the bot's real one`,
      );
    if (reservation) {
      const answer = { status: response.status, bucket: readBucket(response.headers), rateLimited, invalid };
      await this.fleetStep(NEVER, () => this.routes.report(reservation, answer), undefined);
    }
    if (invalid)
      await this.invalid
        .add()
        .catch((error: unknown) =>
          this.debug(`invalid request not counted fleet-wide: ${describeError(error)}`),
        );
    if (response.status === 401 && !this.token.rejected) {
      const first = await this.token.reject(this.instanceId);
      if (first)
        this.#options.onWarn?.(
          'REST: Discord answered 401: the bot token is invalid (reset?). REST is stopped fleet-wide; set a new token and restart the fleet.',
        );
      this.#options.onTokenRejected?.(first);
    }
  }

  /**
   * Runs one step against NATS. If NATS fails (or failed less than DEGRADED_MS ago), the step is
   * skipped for `fallback`'s result: the local share for the global limit, nothing for the others.
   */
  private async fleetStep<T>(
    signal: AbortSignal,
    step: () => Promise<T>,
    skipped: T,
    fallback?: () => Promise<T>,
  ): Promise<T> {
    if (!this.degraded) {
      try {
        return await step();
      } catch (error) {
        // Refusals and a given-up request are answers, not NATS failures.
        if (error instanceof DisclusterError || signal.aborted) throw error;
        // Closing: a report still in flight meets the closed connection; nothing to warn about.
        if (this.closed) return skipped;
        this.degradedUntil = Date.now() + DEGRADED_MS;
        this.#options.onWarn?.(
          `REST: the fleet's shared limits in NATS cannot be reached (${describeError(error)}); this process uses its local share of ${this.local.perSecond} requests/s for ${DEGRADED_MS / 1000} s, then tries again`,
        );
      }
    }
    return fallback ? fallback() : skipped;
  }

  private refused(route: RestRoute, why: string): DisclusterError {
    const key = `${route.template} ${route.major}`;
    const now = Date.now();
    if (now - (this.refusalsLogged.get(key) ?? 0) >= REFUSAL_LOG_MS) {
      this.refusalsLogged.set(key, now);
      if (this.refusalsLogged.size > 1000) this.refusalsLogged.clear();
      this.#options.onWarn?.(
        `${ErrorCode.RestInvalidRequests}: REST requests to ${route.template} (${route.major}) are refused before sending: ${why}. Fix the permissions or the code that keeps making them.`,
      );
    }
    return new DisclusterError(
      ErrorCode.RestInvalidRequests,
      `Refused before sending ${route.template} (${route.major}): ${why}. Discluster stops requests that keep failing so Discord does not ban the bot's IP; fix the permissions or the code, the count falls within 10 minutes.`,
    );
  }

  private debug(message: string): void {
    this.#options.onDebug?.(message);
  }
}

function tokenRejectedError(): DisclusterError {
  return new DisclusterError(
    ErrorCode.TokenRejected,
    'Discord rejected the bot token (401): REST is stopped in the whole fleet. Set a new token and restart the fleet.',
  );
}
