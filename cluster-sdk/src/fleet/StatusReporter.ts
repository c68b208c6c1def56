export interface StatusReporterOptions {
  /** Sends one status report (the caller takes the snapshot at send time). */
  readonly send: () => void;
  /** Least time between two reports caused by changes. */
  readonly coalesceMs: number;
  /** A report is sent at least this often, changed or not (CONTROL's liveness view of the cluster). */
  readonly intervalMs: number;
}

/** Default least time between two change-driven status reports. */
export const STATUS_COALESCE_MS = 250;

/**
 * Paces status reports to CONTROL: a burst of shard state changes (ten shards identifying one
 * after another) becomes one report per `coalesceMs` carrying the latest states, and a periodic
 * report keeps counters (ping, guilds, events) fresh when nothing changes.
 */
export class StatusReporter {
  private pending: NodeJS.Timeout | null = null;
  private periodic: NodeJS.Timeout | null = null;
  private lastSentAt = Number.NEGATIVE_INFINITY;

  public constructor(private readonly options: StatusReporterOptions) {}

  /** Sends a first report now and then periodically. */
  public start(): void {
    this.flush();
    this.periodic = setInterval(() => this.flush(), this.options.intervalMs);
    this.periodic.unref();
  }

  /** Something changed: report it, no sooner than `coalesceMs` after the previous report. */
  public changed(): void {
    if (this.pending || !this.periodic) return;
    const wait = Math.max(0, this.lastSentAt + this.options.coalesceMs - Date.now());
    this.pending = setTimeout(() => this.flush(), wait);
    this.pending.unref();
  }

  /** Sends a report now (and cancels a pending one: this one carries the latest states). */
  public flush(): void {
    if (this.pending) clearTimeout(this.pending);
    this.pending = null;
    this.lastSentAt = Date.now();
    this.options.send();
  }

  public stop(): void {
    if (this.pending) clearTimeout(this.pending);
    if (this.periodic) clearInterval(this.periodic);
    this.pending = null;
    this.periodic = null;
  }
}
