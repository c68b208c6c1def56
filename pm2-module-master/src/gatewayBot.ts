import { deadlineSignal } from 'discluster-runtime';
import { DisclusterError, ErrorCode, GatewayBotSchema } from 'discluster-protocol';
import type { z } from 'zod';

export type GatewayBot = z.infer<typeof GatewayBotSchema>;

export interface FetchGatewayOptions {
  /** `discord_api`, e.g. `https://discord.com/api/v10`. */
  readonly api: string;
  readonly token: string;
  /** `rest_global_per_second`: carried to every cluster with the answer (the fleet's REST limit). */
  readonly restGlobalPerSecond?: number;
  readonly signal?: AbortSignal;
  /** Called before each wait, to log progress. */
  readonly onRetry?: (problem: string, waitMs: number, attempt: number) => void;
  /** Longest pause between attempts (default 30 s). */
  readonly maxBackoffMs?: number;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(new DisclusterError(ErrorCode.Closed, 'stopped while waiting for GET /gateway/bot'));
      },
      { once: true },
    );
  });

/** Seconds to wait from a 429: the `Retry-After` header, else the JSON `retry_after`, else 5. */
async function retryAfterMs(response: Response): Promise<number> {
  const header = Number(response.headers.get('retry-after'));
  if (Number.isFinite(header) && header >= 0) return Math.ceil(header * 1000);
  try {
    const body = (await response.json()) as { retry_after?: unknown };
    if (typeof body.retry_after === 'number' && body.retry_after >= 0)
      return Math.ceil(body.retry_after * 1000);
  } catch {
    // No JSON body: fall through to the default.
  }
  return 5_000;
}

/**
 * `GET /gateway/bot` with the bot token: the gateway URL, recommended shard count and identify
 * budget. Retries network errors and 5xx with capped exponential backoff and honours 429
 * `Retry-After`, until it succeeds or `signal` aborts. A 401 is final: the token is wrong, and
 * retrying would not change that (`DISCLUSTER_ERR_TOKEN_REJECTED`).
 */
export async function fetchGatewayBot(options: FetchGatewayOptions): Promise<GatewayBot> {
  const url = `${options.api.replace(/\/+$/, '')}/gateway/bot`;
  const maxBackoff = options.maxBackoffMs ?? 30_000;
  for (let attempt = 1; ; attempt++) {
    let problem: string;
    let waitMs = Math.min(maxBackoff, 500 * 2 ** Math.min(attempt - 1, 10));
    const deadline = deadlineSignal(15_000, options.signal ? [options.signal] : []);
    try {
      const response = await fetch(url, {
        headers: { authorization: `Bot ${options.token}`, 'user-agent': 'DiscordBot (discluster, 0.1)' },
        signal: deadline.signal,
      });
      if (response.status === 401)
        throw new DisclusterError(
          ErrorCode.TokenRejected,
          `Discord rejected the bot token (401 Unauthorized from ${url}): fix the token or token_file setting of discluster-master`,
        );
      if (response.ok) {
        const parsed = GatewayBotSchema.safeParse(await response.json());
        if (parsed.success)
          return {
            ...parsed.data,
            fetchedAt: Date.now(),
            api: options.api,
            ...(options.restGlobalPerSecond === undefined
              ? {}
              : { restGlobalPerSecond: options.restGlobalPerSecond }),
          };
        problem = `unexpected GET /gateway/bot body (${parsed.error.issues[0]?.message ?? 'invalid'})`;
      } else if (response.status === 429) {
        waitMs = await retryAfterMs(response);
        problem = `rate limited (429), retrying after ${waitMs} ms`;
      } else {
        problem = `GET /gateway/bot answered ${response.status}`;
      }
    } catch (error) {
      if (error instanceof DisclusterError) throw error;
      if (options.signal?.aborted)
        throw new DisclusterError(ErrorCode.Closed, 'stopped while fetching GET /gateway/bot');
      problem = `GET /gateway/bot failed: ${error instanceof Error ? error.message : String(error)}`;
    } finally {
      deadline.dispose();
    }
    options.onRetry?.(problem, waitMs, attempt);
    await sleep(waitMs, options.signal);
  }
}

/**
 * The shard count to run: `auto` takes Discord's recommendation, rounded up to a multiple of
 * `max_concurrency` for bots that have one above 1 (Discord requires it for large bots, and it
 * keeps every cluster one whole bucket).
 */
export function resolveShardCount(setting: 'auto' | number, gateway: GatewayBot): number {
  if (setting !== 'auto') return setting;
  const concurrency = gateway.session_start_limit.max_concurrency;
  const recommended = Math.max(1, gateway.shards);
  return concurrency > 1 ? Math.ceil(recommended / concurrency) * concurrency : recommended;
}
