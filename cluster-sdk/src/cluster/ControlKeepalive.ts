export interface ControlKeepaliveOptions {
  /** The fence time in force, read at every check (CONTROL's `fenceAfterMs` may move it). */
  readonly fenceAfterMs: () => number;
  /** No keepalive for the fence time: called once per silence, with how long it has lasted. */
  readonly onSilent: (silentMs: number) => void;
  /** Monotonic milliseconds (tests may replace it). */
  readonly clock?: () => number;
}

/**
 * Watches CONTROL's `keepalive` messages (fleet mode, Promise 2). CONTROL renews the shards' leases
 * and says so after every renewal round; if CONTROL is down or hung (crash loop, SIGSTOP, killed
 * while pm2 keeps this process running) nobody renews them, they expire, and another host may start
 * these shards. No keepalive for the fence time therefore means: fence.
 *
 * Armed by an assignment that says CONTROL sends keepalives ({@link arm}: the silence clock starts
 * there, so a CONTROL that dies before its first keepalive still fences its clusters), or else by
 * the first keepalive: a CONTROL that predates the message never sends one, and its clusters must
 * not fence for that. Once armed it stays armed for the life of the process.
 *
 * One timer, never one per message: a keepalive only moves the timestamp; when the timer fires it
 * either reports the silence or sleeps again until the newest keepalive's deadline. After reporting
 * a silence it stays quiet until the next keepalive, or until CONTROL vouches for the leases another
 * way ({@link vouched}: a confirmed fence).
 */
export class ControlKeepalive {
  private readonly clock: () => number;
  private last = 0;
  private armedValue = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;

  public constructor(private readonly options: ControlKeepaliveOptions) {
    this.clock = options.clock ?? (() => performance.now());
  }

  /** True once a keepalive arrived: silence fences from then on. */
  public get armed(): boolean {
    return this.armedValue;
  }

  /** A keepalive arrived: arms the watch (the first one) and restarts the silence clock. */
  public received(): void {
    if (this.stopped) return;
    this.armedValue = true;
    this.last = this.clock();
    if (!this.timer) this.schedule(this.options.fenceAfterMs());
  }

  /** CONTROL's assignment promises keepalives: arms the watch, the silence clock starting now. */
  public arm(): void {
    if (!this.armedValue) this.received();
  }

  /**
   * CONTROL vouched for the leases without a keepalive (it confirmed the assignment after a fence):
   * counts as one, if the watch is armed.
   */
  public vouched(): void {
    if (this.armedValue) this.received();
  }

  /** The fence time moved: checks now, then sleeps until the deadline under the new time. */
  public fenceTimeChanged(): void {
    if (!this.timer) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.check();
  }

  public stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      this.check();
    }, ms);
    this.timer.unref();
  }

  private check(): void {
    if (this.stopped || !this.armedValue) return;
    const fenceAfterMs = this.options.fenceAfterMs();
    const silentMs = this.clock() - this.last;
    if (silentMs < fenceAfterMs) {
      this.schedule(fenceAfterMs - silentMs);
      return;
    }
    // No timer until the next keepalive (or vouch): one report per silence.
    this.options.onSilent(Math.round(silentMs));
  }
}
