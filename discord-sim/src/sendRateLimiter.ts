/**
 * Sliding-window count of client payloads on one connection (Discord: 120 per 60 s, then 4008).
 * Keeps only the timestamps inside the window, in a fixed ring.
 */
export class SendRateLimiter {
  private readonly stamps: Float64Array;
  private next = 0;
  private count = 0;

  public constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {
    this.stamps = new Float64Array(limit);
  }

  /** Counts one payload; false once it is over the limit for the window. */
  public take(now = Date.now()): boolean {
    if (this.count < this.limit) {
      this.stamps[(this.next + this.count) % this.limit] = now;
      this.count++;
      return true;
    }
    // Ring is full: the oldest stamp leaves only if it is outside the window.
    if (now - this.stamps[this.next]! < this.windowMs) return false;
    this.stamps[this.next] = now;
    this.next = (this.next + 1) % this.limit;
    return true;
  }
}
