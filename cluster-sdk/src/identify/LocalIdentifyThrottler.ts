import { DisclusterError, ErrorCode } from 'discluster-protocol/errors';
import { integerOption } from '../util/validate.js';
import {
  afterGrantedIdentify,
  identifyAbortedError,
  throttlerClosedError,
  type IdentifyThrottler,
} from './IdentifyThrottler.js';
import {
  DISCORD_IDENTIFY_WINDOW_MS,
  defaultSafetyMarginMs,
  rateLimitKey,
  type LocalIdentifyThrottlerOptions,
} from './options.js';

interface Waiter {
  readonly shardId: number;
  readonly grant: () => void;
  readonly fail: (error: Error) => void;
}

interface KeyState {
  /** Sorted by shard id (stable for equal ids). */
  readonly waiters: Waiter[];
  lastGrantAt: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * An in-process {@link IdentifyThrottler}: one grant per rate-limit key per `windowMs + margin`
 * (counted from when the grant's IDENTIFY has been sent, see {@link afterGrantedIdentify}), lowest
 * waiting shard id of a key first. Enough for a single process; fleets use
 * {@link NatsIdentifyThrottler}.
 */
export class LocalIdentifyThrottler implements IdentifyThrottler {
  /** Spacing between two grants of one key: window + safety margin. */
  public readonly spacingMs: number;
  private readonly keys = new Map<number, KeyState>();
  private closed = false;

  /**
   * @param maxConcurrency - `session_start_limit.max_concurrency`
   * @param windowMs - the identify window
   */
  public constructor(
    public readonly maxConcurrency: number,
    public readonly windowMs: number = DISCORD_IDENTIFY_WINDOW_MS,
    options: LocalIdentifyThrottlerOptions = {},
  ) {
    integerOption('maxConcurrency', maxConcurrency, 1);
    integerOption('windowMs', windowMs, 1);
    const margin = integerOption(
      'safetyMarginMs',
      options.safetyMarginMs ?? defaultSafetyMarginMs(windowMs),
      0,
    );
    this.spacingMs = windowMs + margin;
  }

  /** {@inheritDoc IdentifyThrottler.waitForIdentify} */
  public waitForIdentify(shardId: number, signal: AbortSignal): Promise<void> {
    if (!Number.isSafeInteger(shardId) || shardId < 0) {
      return Promise.reject(
        new DisclusterError(
          ErrorCode.InvalidShard,
          `shard id must be a non-negative integer, got ${shardId}`,
        ),
      );
    }
    if (this.closed) return Promise.reject(throttlerClosedError(shardId));
    if (signal.aborted) return Promise.reject(identifyAbortedError(shardId, signal.reason));
    const key = rateLimitKey(shardId, this.maxConcurrency);
    const state = this.stateOf(key);
    return new Promise<void>((resolve, reject) => {
      const settle = (error?: Error): void => {
        signal.removeEventListener('abort', onAbort);
        const index = state.waiters.indexOf(waiter);
        if (index >= 0) state.waiters.splice(index, 1);
        if (error) reject(error);
        else resolve();
      };
      const onAbort = (): void => {
        settle(identifyAbortedError(shardId, signal.reason));
        this.schedule(key, state);
      };
      const waiter: Waiter = { shardId, grant: () => settle(), fail: (error) => settle(error) };
      // Insert after every waiter with a lower or equal id: lowest id first, FIFO among equals.
      const at = state.waiters.findIndex((other) => other.shardId > shardId);
      state.waiters.splice(at < 0 ? state.waiters.length : at, 0, waiter);
      signal.addEventListener('abort', onAbort, { once: true });
      this.schedule(key, state);
    });
  }

  /** {@inheritDoc IdentifyThrottler.close} */
  public close(): Promise<void> {
    this.closed = true;
    for (const state of this.keys.values()) clearTimeout(state.timer);
    for (const state of this.keys.values()) {
      for (const waiter of [...state.waiters]) waiter.fail(throttlerClosedError(waiter.shardId));
    }
    this.keys.clear();
    return Promise.resolve();
  }

  private stateOf(key: number): KeyState {
    let state = this.keys.get(key);
    if (!state) {
      state = { waiters: [], lastGrantAt: Number.NEGATIVE_INFINITY, timer: undefined };
      this.keys.set(key, state);
    }
    return state;
  }

  /**
   * Arms one timer per key for its next grant. Even a due grant waits for a timer tick, so shards
   * asking in the same tick are all queued and the lowest id goes first.
   */
  private schedule(key: number, state: KeyState): void {
    if (state.timer !== undefined || state.waiters.length === 0 || this.closed) return;
    state.timer = setTimeout(
      () => {
        state.timer = undefined;
        const now = performance.now();
        // Timers may fire a fraction of a millisecond early, and a grant's time may have moved on
        // since the timer was armed (see below): never grant before the spacing.
        if (now >= state.lastGrantAt + this.spacingMs) {
          const head = state.waiters[0];
          if (head) {
            state.lastGrantAt = now;
            head.grant();
            // The caller sends IDENTIFY in the microtasks that follow the grant; if its process
            // stalled in between, the spacing runs from the send, not from the grant.
            afterGrantedIdentify(() => {
              state.lastGrantAt = Math.max(state.lastGrantAt, performance.now());
            });
          }
        }
        this.schedule(key, state);
      },
      Math.max(0, Math.ceil(state.lastGrantAt + this.spacingMs - performance.now())),
    );
  }
}
