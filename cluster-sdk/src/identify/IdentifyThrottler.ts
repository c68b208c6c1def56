import type { IIdentifyThrottler } from '@discordjs/ws';
import { DisclusterError, ErrorCode } from 'discluster-protocol/errors';

/**
 * Decides when a shard may IDENTIFY: at most one IDENTIFY per rate-limit key
 * (`shard_id % max_concurrency`) per identify window, lower shard ids of a key first.
 * Compatible with @discordjs/ws's `IIdentifyThrottler` (pass it through `buildIdentifyThrottler`).
 */
export interface IdentifyThrottler extends IIdentifyThrottler {
  /**
   * Resolves once `shardId` may send IDENTIFY. Rejects with `DISCLUSTER_ERR_IDENTIFY_ABORTED` as
   * soon as `signal` aborts (the waiter is removed and consumes no slot), or with
   * `DISCLUSTER_ERR_CLOSED` after {@link IdentifyThrottler.close}.
   */
  waitForIdentify(shardId: number, signal: AbortSignal): Promise<void>;
  /** Stops granting; every pending wait rejects with `DISCLUSTER_ERR_CLOSED`. */
  close(): Promise<void>;
}

/** Why a shard is still waiting (besides plain rate limiting), as reported by `waiting` events. */
export type IdentifyWaitReason =
  | {
      readonly kind: 'budget-floor';
      readonly message: string;
      readonly remaining: number;
      readonly floor: number;
      readonly resetAt: number;
    }
  | { readonly kind: 'budget-unknown'; readonly message: string }
  | { readonly kind: 'nats-unavailable'; readonly message: string };

/** The rejection of a wait whose signal aborted. */
export function identifyAbortedError(shardId: number, cause: unknown): DisclusterError {
  return new DisclusterError(
    ErrorCode.IdentifyAborted,
    `Shard ${shardId} stopped waiting to identify: aborted`,
    {
      cause,
    },
  );
}

/** The rejection of a wait on a closed throttler. */
export function throttlerClosedError(shardId: number): DisclusterError {
  return new DisclusterError(
    ErrorCode.Closed,
    `Shard ${shardId} cannot identify: the identify throttler is closed`,
  );
}

/**
 * Runs `fn` once the microtask queue has drained, including the microtasks queued meanwhile: after
 * the code that a just-resolved grant resumes (the caller's IDENTIFY: @discordjs/ws writes it to its
 * socket synchronously in those microtasks), but before the event loop runs any other I/O or timer
 * callback, however busy it is. The throttlers count a key's window from here. A caller that sends
 * IDENTIFY only after further I/O gets the window counted from its grant instead.
 */
export function afterGrantedIdentify(fn: () => void): void {
  queueMicrotask(() => process.nextTick(fn));
}
