import type { ClusterRun, ShardStatus } from '../clusters/clusterRun.js';
import type { Logger } from '../logger.js';
import type { ProcessTable } from '../pm2/processTable.js';
import { WATCH_TICK_MS, hungFor, newReportWatch, recordReport, shardStates } from './reportSilence.js';

export interface HangWatchdogOptions {
  readonly table: ProcessTable;
  readonly logger: Logger;
  /** Monotonic milliseconds. */
  readonly clock: () => number;
  /** Ends a hung cluster process by pid. */
  readonly killProcess: (pid: number) => void;
  /** The clusters to watch, by process name. */
  readonly runs: () => Iterable<[string, ClusterRun]>;
}

/**
 * The hung-cluster watchdog (reportSilence.ts has the arithmetic): a cluster process that stopped
 * reporting for several of its report intervals while pm2 still sees it online has a blocked event
 * loop. It is SIGKILLed (a blocked loop never runs a SIGINT handler, and pm2 would wait
 * `kill_timeout` for nothing); its exit then goes through the restart policy like any crash, and
 * the new process RESUMEs the shards. Skipped while CONTROL itself was too busy to read the pm2 bus.
 */
export class HangWatchdog {
  private timer: NodeJS.Timeout | undefined;
  private lastTick = 0;

  public constructor(private readonly options: HangWatchdogOptions) {}

  public start(): void {
    this.lastTick = this.options.clock();
    this.timer = setInterval(() => this.check(), WATCH_TICK_MS);
    this.timer.unref();
  }

  public stop(): void {
    clearInterval(this.timer);
  }

  /** A status report of the cluster's running process. */
  public reported(run: ClusterRun, shards: readonly ShardStatus[]): void {
    recordReport(run.watch, shardStates(shards), this.options.clock());
  }

  /** A new process of the cluster is online, or its process exited: the old one's reports say nothing. */
  public forget(run: ClusterRun): void {
    run.watch = newReportWatch();
    run.killing = false;
  }

  private check(): void {
    const now = this.options.clock();
    const late = now - this.lastTick > WATCH_TICK_MS * 4;
    this.lastTick = now;
    // CONTROL's own loop stalled: reports may be waiting unread on the bus, so silence proves nothing.
    if (late) return;
    for (const [name, run] of this.options.runs()) {
      if (run.killing || run.stopping || run.restartRequested || run.state !== 'online') continue;
      const hung = hungFor(run.watch, now);
      if (hung) void this.kill(name, run, hung.limitMs);
    }
  }

  private async kill(name: string, run: ClusterRun, limitMs: number): Promise<void> {
    const { clock, logger } = this.options;
    run.killing = true;
    const watch = run.watch;
    try {
      const proc = await this.options.table.find(name);
      // A pm2 daemon that was itself stalled answers the list late and forwards the reports it held
      // meanwhile: give them one tick to arrive before deciding.
      await new Promise((resolve) => setTimeout(resolve, WATCH_TICK_MS));
      const pid: unknown = proc?.['pid'];
      const silentMs = clock() - (watch.lastAt ?? clock());
      // Re-checked after the pm2 call: a report came, the process was replaced, or it is being stopped.
      if (
        run.watch !== watch ||
        silentMs < limitMs ||
        // Stopped meanwhile, or CONTROL is closing (close() aborts every run).
        run.abort.signal.aborted ||
        run.stopping ||
        run.restartRequested ||
        proc?.['pm2_env']?.['status'] !== 'online' ||
        typeof pid !== 'number' ||
        pid <= 0
      ) {
        run.killing = false;
        return;
      }
      logger.error(
        {
          name,
          pid,
          silentMs: Math.round(silentMs),
          limitMs,
          reportIntervalMs: Math.round(watch.longestGapMs),
        },
        'cluster stopped reporting (event loop blocked?): killing it; it restarts and resumes its shards',
      );
      this.options.killProcess(pid);
    } catch (error) {
      run.killing = false;
      logger.error({ err: error, name }, 'could not kill the silent cluster');
    }
  }
}
