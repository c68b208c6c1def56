/**
 * What CONTROL does when a cluster process exits (promise 5, docs/architecture.md: restarts back off and are
 * capped; every give-up is an event). Pure: the supervisor feeds it facts and obeys the answer.
 *
 * pm2's own autorestart is off for clusters, because pm2 counts "unstable restarts" on its own
 * terms (a 1 s `min_uptime`, a 16-restart window) and would restart a cluster that reported a fatal
 * gateway error. CONTROL decides instead, from this table.
 */

/** Why the process ended, as the supervisor knows it. */
export type ExitKind =
  /** CONTROL (or MASTER through it) asked it to stop: revoke, stop-all, rolling restart. */
  | 'requested'
  /** It reported a fatal gateway close (4004, 4012, 4013, 4014): restarting cannot help. */
  | 'fatal'
  /** Any other exit, clean or not: a cluster is meant to run until told to stop. */
  | 'crashed';

export interface ExitFacts {
  readonly kind: ExitKind;
  /** Did the process report its shards (a `status` message) before exiting? */
  readonly reportedReady: boolean;
  /** How long it ran, in ms. */
  readonly uptimeMs: number;
}

export interface RestartPolicyOptions {
  /** `max_cluster_restarts`: after this many consecutive failed starts, stop trying (0 = never retry one). */
  readonly maxFailedStarts: number;
  /** A start that dies sooner than this (or before reporting) counts as failed. */
  readonly minUptimeMs: number;
  /** First restart delay; doubled per consecutive failed start. */
  readonly baseDelayMs: number;
  /** Cap of the restart delay. */
  readonly maxDelayMs: number;
}

/** Defaults: 1 s, 2 s, 4 s … capped at 30 s; a start must survive 10 s to count as good. */
export const DEFAULT_RESTART_POLICY: Omit<RestartPolicyOptions, 'maxFailedStarts'> = {
  minUptimeMs: 10_000,
  baseDelayMs: 1_000,
  maxDelayMs: 30_000,
};

/** The supervisor's verdict. `failedStarts` is the new consecutive count to remember. */
export type RestartDecision =
  | { readonly action: 'restart'; readonly delayMs: number; readonly failedStarts: number }
  | { readonly action: 'give-up'; readonly attempts: number; readonly reason: string }
  | { readonly action: 'stop'; readonly reason: string };

/** A start failed if the process never reported its shards or died within `minUptimeMs`. */
export function isFailedStart(exit: ExitFacts, options: RestartPolicyOptions): boolean {
  return !exit.reportedReady || exit.uptimeMs < options.minUptimeMs;
}

/** Decides what follows an exit, given how many starts in a row had failed before this one. */
export function decideOnExit(
  exit: ExitFacts,
  failedStartsBefore: number,
  options: RestartPolicyOptions,
): RestartDecision {
  switch (exit.kind) {
    case 'requested':
      return { action: 'stop', reason: 'stopped on request' };
    case 'fatal':
      // MASTER stops the fleet on the fatal event; a restart would only repeat the close code.
      return { action: 'stop', reason: 'fatal gateway error reported' };
    case 'crashed': {
      const failedStarts = isFailedStart(exit, options) ? failedStartsBefore + 1 : 0;
      if (failedStarts > 0 && failedStarts >= options.maxFailedStarts) {
        return {
          action: 'give-up',
          attempts: failedStarts,
          reason: `failed to start ${failedStarts} time(s) in a row (exited ${
            exit.reportedReady ? `after ${exit.uptimeMs} ms` : 'before reporting ready'
          })`,
        };
      }
      return { action: 'restart', delayMs: backoffDelay(failedStarts, options), failedStarts };
    }
  }
}

/** `baseDelayMs * 2^(failedStarts-1)`, capped; a crash after a good start waits `baseDelayMs`. */
export function backoffDelay(failedStarts: number, options: RestartPolicyOptions): number {
  const exponent = Math.max(0, failedStarts - 1);
  return Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.min(exponent, 30));
}
