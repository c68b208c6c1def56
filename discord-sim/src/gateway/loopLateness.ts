/** How often the lateness clock ticks: the finest lateness it can tell apart from none. */
const TICK_MS = 5;

/**
 * How late this process may be reading what it reads now. The simulator stamps an IDENTIFY when
 * its event loop handles it; a message that reached the socket while the loop was busy, or while
 * the process was not scheduled at all (a shared CPU), waited unread until then. A timer that
 * ticks every few ms tells how long the loop has been unavailable: a message read now can have
 * arrived no earlier than the tick before the latest one (after that tick the loop polled its
 * sockets). Discord's servers never share the bot's CPU; this lets the referee say when its own
 * clock, not the client, is in doubt.
 */
export class LoopLateness {
  private lastTick = performance.now();
  private tickBefore = this.lastTick;
  private readonly timer: NodeJS.Timeout;

  public constructor() {
    this.timer = setInterval(() => {
      this.tickBefore = this.lastTick;
      this.lastTick = performance.now();
    }, TICK_MS);
    this.timer.unref();
  }

  /** The longest a message handled now may have waited unread, in ms. */
  public readLatenessMs(now = performance.now()): number {
    return Math.max(0, now - this.tickBefore);
  }

  public stop(): void {
    clearInterval(this.timer);
  }
}
