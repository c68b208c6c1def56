import type { APIGatewaySessionStartLimit } from 'discord-api-types/v10';
import { DisclusterError, ErrorCode } from 'discluster-protocol/errors';
import { DEFAULT_BOT, validateBotNamespace } from 'discluster-protocol/kv';
import { integerOption, oneOfOption } from '../util/validate.js';

/** Discord's identify window: `max_concurrency` IDENTIFYs per this many ms. */
export const DISCORD_IDENTIFY_WINDOW_MS = 5000;

// nats-server refuses a stream max_age below 100 ms.
const MIN_BUCKET_TTL_MS = 100;
const MIN_NATS_SAFETY_MARGIN_MS = 10;

/**
 * The default safety margin added to the identify window: `max(25 ms, 2% of the window)`
 * (100 ms for Discord's 5 s). The throttlers count a key's window from when the IDENTIFY has been
 * sent (NatsIdentifyThrottler re-stamps the slot right after it), so the margin is left for what
 * happens after the send: how much later Discord reads one IDENTIFY than the next (network
 * jitter, a busy receiver), which would otherwise let two IDENTIFYs of one key arrive closer than
 * the window.
 */
export function defaultSafetyMarginMs(windowMs: number): number {
  return Math.max(25, Math.ceil(windowMs * 0.02));
}

/** Discord's bucket formula: the rate-limit key of a shard. */
export function rateLimitKey(shardId: number, maxConcurrency: number): number {
  return shardId % maxConcurrency;
}

/** Options of {@link LocalIdentifyThrottler} besides concurrency and window. */
export interface LocalIdentifyThrottlerOptions {
  /**
   * Extra spacing between two grants of one key.
   *
   * @defaultValue {@link defaultSafetyMarginMs}(windowMs)
   */
  safetyMarginMs?: number;
}

/** Options {@link NatsIdentifyThrottler} cannot do without. */
export interface RequiredNatsIdentifyThrottlerOptions {
  /** Total shard count of the fleet (waiters are ordered among shards of one count). */
  shardCount: number;
  /** `session_start_limit.max_concurrency`: number of rate-limit keys. */
  maxConcurrency: number;
}

/** Options of {@link NatsIdentifyThrottler} that have defaults ({@link DefaultNatsIdentifyThrottlerOptions}). */
export interface OptionalNatsIdentifyThrottlerOptions {
  /** Bot namespace (the `bot` setting); buckets are per namespace. */
  bot: string;
  /** One IDENTIFY per rate-limit key per this many ms. */
  windowMs: number;
  /**
   * Added to the window for the slot bucket's TTL; `null` means {@link defaultSafetyMarginMs}. A
   * slot whose taking took longer than this is given back unused (the guarantee that holds even if
   * the re-stamp after the IDENTIFY is lost). At least 10 ms.
   */
  safetyMarginMs: number | null;
  /** A shard identifies only if `remaining - 1 >= budgetFloor`; otherwise it waits and says why. */
  budgetFloor: number;
  /** TTL of waiter announcements (refreshed every third of it); `null` means `clamp(3 × window, 1 s, 15 s)`. */
  waiterTtlMs: number | null;
  /**
   * A new waiter announces itself, then waits this long before its first try, so shards that ask at
   * about the same time in different processes see each other and the lowest id goes first;
   * `null` means `clamp(window / 10, 10 ms, 250 ms)`.
   */
  orderingDelayMs: number | null;
  /** Shortest pause between two polls of a busy slot. */
  minPollMs: number;
  /** Pause between budget checks while the budget is at its floor; `null` means `clamp(window, 100 ms, 5 s)`. */
  budgetPollMs: number | null;
  /** First pause after a NATS error; doubles up to {@link OptionalNatsIdentifyThrottlerOptions.retryMaxMs}. */
  retryInitialMs: number;
  /** Longest pause between retries after NATS errors. */
  retryMaxMs: number;
  /** JetStream storage for the buckets ('file' keeps slots across a nats-server restart). */
  storage: 'file' | 'memory';
  /** JetStream replicas for the buckets (use 3 on a NATS cluster). */
  replicas: number;
  /** Timeout of one JetStream request. */
  requestTimeoutMs: number;
  /**
   * Fetches fresh `session_start_limit` data (e.g. `GET /gateway/bot`) when the budget is unknown or
   * at its floor past its reset time; `null` means wait for someone to call `updateBudget`.
   */
  sessionStartLimitSource: (() => Promise<APIGatewaySessionStartLimit>) | null;
  /** Calls to `sessionStartLimitSource` are at least this far apart. */
  budgetRefreshIntervalMs: number;
}

/** Defaults of {@link OptionalNatsIdentifyThrottlerOptions}. */
export const DefaultNatsIdentifyThrottlerOptions = {
  bot: DEFAULT_BOT,
  windowMs: DISCORD_IDENTIFY_WINDOW_MS,
  safetyMarginMs: null,
  budgetFloor: 10,
  waiterTtlMs: null,
  orderingDelayMs: null,
  minPollMs: 10,
  budgetPollMs: null,
  retryInitialMs: 100,
  retryMaxMs: 5000,
  storage: 'file',
  replicas: 1,
  requestTimeoutMs: 5000,
  sessionStartLimitSource: null,
  budgetRefreshIntervalMs: 60_000,
} as const satisfies OptionalNatsIdentifyThrottlerOptions;

/** What {@link NatsIdentifyThrottler.create} accepts. */
export type NatsIdentifyThrottlerOptions = RequiredNatsIdentifyThrottlerOptions &
  Partial<OptionalNatsIdentifyThrottlerOptions>;

/** Options after defaults and validation; every derived value is filled in. */
export interface ResolvedNatsIdentifyThrottlerOptions
  extends RequiredNatsIdentifyThrottlerOptions, OptionalNatsIdentifyThrottlerOptions {
  readonly safetyMarginMs: number;
  readonly waiterTtlMs: number;
  readonly orderingDelayMs: number;
  readonly budgetPollMs: number;
  /** TTL of the slot bucket: window + margin. */
  readonly slotTtlMs: number;
}

const clamp = (value: number, min: number, max: number): number => Math.min(max, Math.max(min, value));

/** Applies defaults and validates; throws `DISCLUSTER_ERR_INVALID_OPTION` naming the bad option. */
export function resolveNatsIdentifyThrottlerOptions(
  options: NatsIdentifyThrottlerOptions,
): Readonly<ResolvedNatsIdentifyThrottlerOptions> {
  const merged = { ...DefaultNatsIdentifyThrottlerOptions, ...options };
  integerOption('shardCount', merged.shardCount, 1);
  integerOption('maxConcurrency', merged.maxConcurrency, 1);
  validateBotNamespace(merged.bot);
  const windowMs = integerOption('windowMs', merged.windowMs, 1);
  // A grant must land within the margin of taking its slot; below this, round trips alone would
  // make every attempt give its slot back.
  const safetyMarginMs = integerOption(
    'safetyMarginMs',
    merged.safetyMarginMs ?? defaultSafetyMarginMs(windowMs),
    MIN_NATS_SAFETY_MARGIN_MS,
  );
  const slotTtlMs = windowMs + safetyMarginMs;
  if (slotTtlMs < MIN_BUCKET_TTL_MS) {
    throw new DisclusterError(
      ErrorCode.InvalidOption,
      `Invalid option windowMs: windowMs + safetyMarginMs is ${slotTtlMs} ms, but nats-server needs a bucket TTL of at least ${MIN_BUCKET_TTL_MS} ms`,
    );
  }
  const waiterTtlMs = integerOption(
    'waiterTtlMs',
    merged.waiterTtlMs ?? clamp(3 * windowMs, 1000, 15_000),
    MIN_BUCKET_TTL_MS,
  );
  const orderingDelayMs = integerOption(
    'orderingDelayMs',
    merged.orderingDelayMs ?? clamp(Math.round(windowMs / 10), 10, 250),
    0,
  );
  integerOption('budgetFloor', merged.budgetFloor, 0);
  integerOption('minPollMs', merged.minPollMs, 1);
  const budgetPollMs = integerOption('budgetPollMs', merged.budgetPollMs ?? clamp(windowMs, 100, 5000), 1);
  integerOption('retryInitialMs', merged.retryInitialMs, 1);
  integerOption('retryMaxMs', merged.retryMaxMs, merged.retryInitialMs);
  oneOfOption('storage', merged.storage, ['file', 'memory']);
  integerOption('replicas', merged.replicas, 1, 5);
  integerOption('requestTimeoutMs', merged.requestTimeoutMs, 1);
  integerOption('budgetRefreshIntervalMs', merged.budgetRefreshIntervalMs, 0);
  return Object.freeze({ ...merged, safetyMarginMs, waiterTtlMs, orderingDelayMs, budgetPollMs, slotTtlMs });
}
