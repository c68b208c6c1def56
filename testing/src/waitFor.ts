export interface WaitForOptions {
  /** What is being waited for; named in the timeout error so a failure explains itself. */
  description: string;
  /** Liveness bound: how long to keep polling before giving up. Not a performance assertion. */
  timeoutMs?: number;
  /** Pause between polls. */
  intervalMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `predicate` until it returns true. A predicate that throws counts as "not yet"
 * (the thing polled is often not up yet); its last error is reported on timeout.
 */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  options: WaitForOptions,
): Promise<void> {
  const { description, timeoutMs = 10_000, intervalMs = 50 } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await predicate()) return;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) break;
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
  const cause = lastError === undefined ? '' : ` (last error: ${describeError(lastError)})`;
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${description}${cause}`, {
    cause: lastError,
  });
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
