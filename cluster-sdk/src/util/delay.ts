import type { Notifier } from './Notifier.js';

/**
 * Sleeps `ms`, waking early (resolving) when `wake` is notified, and rejecting with
 * `signal.reason` as soon as `signal` aborts. The timer and listeners are always removed.
 */
export function delay(ms: number, signal: AbortSignal, wake?: Notifier): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const finish = (error?: unknown): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      removeWake?.();
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = (): void => finish(signal.reason ?? new Error('aborted'));
    const timer = setTimeout(() => finish(), Math.max(0, ms));
    signal.addEventListener('abort', onAbort, { once: true });
    const removeWake = wake?.once(() => finish());
  });
}

/**
 * Resolves or rejects like `promise`, but rejects with `signal.reason` as soon as `signal`
 * aborts. The operation itself keeps running: pass `onLateResult` to undo its effect if it
 * succeeds after the caller stopped waiting.
 */
export function untilAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  onLateResult?: (value: T) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let abandoned = false;
    const onAbort = (): void => {
      abandoned = true;
      reject(signal.reason);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (abandoned) onLateResult?.(value);
        else resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (!abandoned) reject(error);
      },
    );
  });
}
