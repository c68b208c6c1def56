import type { IIdentifyThrottler } from '@discordjs/ws';
import { identifyAbortedError } from './IdentifyThrottler.js';

/**
 * Wraps an identify throttler for @discordjs/ws so that a wait ends only with a grant or with the
 * shard's own abort signal.
 *
 * @discordjs/ws 2.0.4 answers any other rejection of `waitForIdentify` by reconnecting and then
 * sending IDENTIFY anyway, without a slot (promise 1). A throttler rejects for reasons the shard
 * cannot fix by retrying: it was closed, or the NATS connection closed for good (revoked or
 * expired credentials). The shard is held instead, and `onHeld` says why; it waits until
 * whoever owns the cluster closes it (the wait then rejects as aborted, which @discordjs/ws
 * handles quietly).
 */
export function holdOnFailure(
  throttler: Pick<IIdentifyThrottler, 'waitForIdentify'>,
  onHeld: (shardId: number, error: unknown) => void,
): IIdentifyThrottler {
  return {
    async waitForIdentify(shardId: number, signal: AbortSignal): Promise<void> {
      try {
        await throttler.waitForIdentify(shardId, signal);
      } catch (error) {
        if (signal.aborted) throw error;
        onHeld(shardId, error);
        await untilAbort(signal);
        throw identifyAbortedError(shardId, signal.reason);
      }
    },
  };
}

function untilAbort(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}
