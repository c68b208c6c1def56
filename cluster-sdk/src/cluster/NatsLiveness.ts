import type { NatsConnection } from '@nats-io/transport-node';

export interface NatsLivenessOptions {
  /** How long without a successful round trip to NATS before `onLost` fires (see `setLostAfterMs`). */
  readonly lostAfterMs: number;
  /** How often to probe (default: a fifth of `lostAfterMs`, at least 50 ms). */
  readonly probeIntervalMs?: number;
  readonly onLost: () => void;
  readonly onRestored: () => void;
}

/**
 * Decides whether this process can still reach NATS, by round trips rather than by connection
 * events: a link that silently stops forwarding (a cut-off machine) produces no disconnect event
 * for a long time, but it does stop answering pings.
 */
export class NatsLiveness {
  private lastContact = Date.now();
  private lost = false;
  private timer: NodeJS.Timeout | null = null;
  private probing = false;
  private lostAfterMs: number;
  private probeIntervalMs: number;

  public constructor(
    private readonly nc: NatsConnection,
    private readonly options: NatsLivenessOptions,
  ) {
    this.lostAfterMs = options.lostAfterMs;
    this.probeIntervalMs = this.intervalFor(options.lostAfterMs);
  }

  public get isLost(): boolean {
    return this.lost;
  }

  public start(): void {
    this.lastContact = Date.now();
    this.schedule();
  }

  /**
   * Changes the time without contact after which NATS counts as lost (CONTROL's `fenceAfterMs`
   * moved). Takes effect at the next probe: time already spent without contact counts.
   */
  public setLostAfterMs(lostAfterMs: number): void {
    this.lostAfterMs = lostAfterMs;
    const interval = this.intervalFor(lostAfterMs);
    if (interval === this.probeIntervalMs) return;
    this.probeIntervalMs = interval;
    if (this.timer) this.schedule();
  }

  public stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private intervalFor(lostAfterMs: number): number {
    return this.options.probeIntervalMs ?? Math.max(50, Math.floor(lostAfterMs / 5));
  }

  private schedule(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), this.probeIntervalMs);
    this.timer.unref();
  }

  private tick(): void {
    if (!this.lost && Date.now() - this.lastContact > this.lostAfterMs) {
      this.lost = true;
      this.options.onLost();
    }
    if (this.probing || this.nc.isClosed()) return;
    this.probing = true;
    const deadline = new Promise<never>((_, reject) => {
      setTimeout(() => reject(new Error('probe timed out')), this.probeIntervalMs).unref();
    });
    Promise.race([this.nc.flush(), deadline])
      .then(() => {
        this.lastContact = Date.now();
        if (this.lost) {
          this.lost = false;
          this.options.onRestored();
        }
      })
      .catch(() => {
        // No answer: lastContact stays where it was and the next tick decides.
      })
      .finally(() => {
        this.probing = false;
      });
  }
}
