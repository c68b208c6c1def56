/**
 * The hung-cluster watchdog's arithmetic (promise 5, docs/architecture.md; hangWatchdog.ts acts on it). A cluster
 * reports its shards to CONTROL over pm2 IPC on every shard state change (coalesced) and at least
 * every `statusIntervalMs` (SDK option, default 5000) whether anything changed or not. A process
 * whose event loop is blocked (an endless loop, a synchronous call that never returns) sends
 * nothing, while pm2 still sees it `online` and its gateway sockets stay open without being read:
 * its shards are dead but nobody restarts them.
 *
 * CONTROL is not told the cluster's interval; it learns it per process: the longest gap between two
 * consecutive reports. Reports that carry the same shard states as the one before are periodic ones
 * (a change-driven report carries a change), so once two such reports came in a row the longest gap
 * holds at least one whole report interval, and the watch is armed. From then on a process silent
 * for {@link SILENCE_FACTOR} times that gap (and at least {@link MIN_SILENCE_MS}) is hung.
 */

/** A cluster silent for this many of its report intervals is hung. */
export const SILENCE_FACTOR = 3;
/**
 * Never less silence than this before a cluster counts as hung: with a short report interval, a
 * loaded machine's scheduling and pm2 bus jitter would otherwise pass for silence.
 */
export const MIN_SILENCE_MS = 5_000;
/** How often the watchdog checks the clusters. */
export const WATCH_TICK_MS = 250;

/** What the watchdog knows of the reports of one cluster process. */
export interface ReportWatch {
  /** When the last report arrived (monotonic ms); undefined before the first. */
  lastAt: number | undefined;
  /** Longest gap seen between two consecutive reports: the learned report interval. */
  longestGapMs: number;
  /** Shard states of the last report (`id:state,…`). */
  lastStates: string | undefined;
  /** The last report carried the same states as the one before it (a periodic report). */
  lastUnchanged: boolean;
  /** Two periodic reports came in a row: {@link longestGapMs} covers a whole report interval. */
  armed: boolean;
}

export function newReportWatch(): ReportWatch {
  return { lastAt: undefined, longestGapMs: 0, lastStates: undefined, lastUnchanged: false, armed: false };
}

/** Records one status report of the process; `states` is {@link shardStates} of its shards. */
export function recordReport(watch: ReportWatch, states: string, now: number): void {
  if (watch.lastAt !== undefined) {
    watch.longestGapMs = Math.max(watch.longestGapMs, now - watch.lastAt);
    const unchanged = states === watch.lastStates;
    if (unchanged && watch.lastUnchanged) watch.armed = true;
    watch.lastUnchanged = unchanged;
  }
  watch.lastAt = now;
  watch.lastStates = states;
}

/** The part of a report that tells a change-driven report from a periodic one. */
export function shardStates(shards: readonly { readonly id: number; readonly state: string }[]): string {
  return shards.map((shard) => `${shard.id}:${shard.state}`).join(',');
}

/** How long the process may stay silent, or null while the watch is not armed. */
export function silenceLimitMs(watch: ReportWatch): number | null {
  if (!watch.armed) return null;
  return Math.max(MIN_SILENCE_MS, Math.ceil(SILENCE_FACTOR * watch.longestGapMs));
}

/** The silence so far and its limit if the process is hung now, else null. */
export function hungFor(watch: ReportWatch, now: number): { silentMs: number; limitMs: number } | null {
  const limitMs = silenceLimitMs(watch);
  if (limitMs === null || watch.lastAt === undefined) return null;
  const silentMs = now - watch.lastAt;
  return silentMs >= limitMs ? { silentMs, limitMs } : null;
}
