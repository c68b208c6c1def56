export interface ControlKeepaliveOptions {
  /** The fence time in force, read at every check (CONTROL's `fenceAfterMs` may move it). */
  readonly fenceAfterMs: () => number;
  /** No keepalive for the fence time: called once per silence, with how long it has lasted. */
  readonly onSilent: (silentMs: number) => void;
  /** Monotonic milliseconds (tests may replace it). */
  readonly clock?: () => number;
  /** Wall-clock milliseconds, the clock of a keepalive's `renewedAt` (tests may replace it). */
  readonly wallClock?: () => number;
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
 * a silence it stays quiet until a keepalive that ends it, or until CONTROL vouches for the leases
 * another way ({@link vouched}: a confirmed fence).
 *
 * The silence counts from when CONTROL sent the renewal a keepalive vouches for (its `renewedAt`),
 * not from when this process read it. After a stall (SIGSTOP, a starved core) Node runs due timers
 * before the poll phase that reads the IPC socket, so a silence found by the timer is judged again
 * once what the socket holds has been read: fresh keepalives waiting there end it, stale ones (sent
 * before CONTROL died) do not.
 */
export class ControlKeepalive {
  private readonly clock: () => number;
  private readonly wallClock: () => number;
  private last = 0;
  /** A silence was reported; only a keepalive that ends it re-arms the timer. */
  private reported = false;
  /** The timer found a silence and waits for the IPC socket to be read before judging it. */
  private draining = false;
  private armedValue = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;

  public constructor(private readonly options: ControlKeepaliveOptions) {
    this.clock = options.clock ?? (() => performance.now());
    this.wallClock = options.wallClock ?? (() => Date.now());
  }

  /** True once a keepalive arrived: silence fences from then on. */
  public get armed(): boolean {
    return this.armedValue;
  }

  /**
   * A keepalive arrived, vouching for a renewal sent at `renewedAt` (wall clock; absent: now): arms
   * the watch (the first one) and moves the silence clock to that renewal, never back.
   */
  public received(renewedAt?: number): void {
    if (this.stopped) return;
    const now = this.clock();
    const age = renewedAt === undefined ? 0 : Math.max(0, this.wallClock() - renewedAt);
    if (!this.armedValue || now - age > this.last) this.last = now - age;
    this.armedValue = true;
    const fenceAfterMs = this.options.fenceAfterMs();
    if (this.reported) {
      if (now - this.last >= fenceAfterMs) return; // a stale keepalive: the silence goes on
      this.reported = false;
    }
    if (!this.timer && !this.draining) this.schedule(Math.max(0, fenceAfterMs - (now - this.last)));
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

  private check(socketsRead = false): void {
    if (this.stopped || !this.armedValue || this.reported) return;
    const fenceAfterMs = this.options.fenceAfterMs();
    const silentMs = this.clock() - this.last;
    if (silentMs < fenceAfterMs) {
      this.schedule(fenceAfterMs - silentMs);
      return;
    }
    if (!socketsRead) {
      // Due timers run before the poll phase that reads the IPC socket; an immediate runs after it.
      // Twice, for a message whose read completes in the poll phase that follows.
      this.draining = true;
      setImmediate(() =>
        setImmediate(() => {
          this.draining = false;
          this.check(true);
        }),
      );
      return;
    }
    // No timer until a keepalive that ends the silence (or a vouch): one report per silence.
    this.reported = true;
    this.options.onSilent(Math.round(silentMs));
  }
}
