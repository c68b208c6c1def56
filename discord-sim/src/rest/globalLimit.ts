export interface GlobalLimitResult {
  /** Milliseconds until the key's window resets when it is exhausted, else null. */
  readonly retryAfterMs: number | null;
}

/**
 * Discord's global limit: `perSecond` requests per bot token (per IP for requests without one), a
 * one-second fixed window per key that starts at the key's first request.
 */
export class GlobalLimit {
  private readonly windows = new Map<string, { start: number; used: number }>();

  public constructor(private readonly perSecond: number) {}

  public take(key: string, now = Date.now()): GlobalLimitResult {
    let window = this.windows.get(key);
    if (!window || now - window.start >= 1000) {
      // Keys are the one token and client IPs: few, but drop expired ones so the map stays small.
      if (this.windows.size > 1000) this.sweep(now);
      window = { start: now, used: 0 };
      this.windows.set(key, window);
    }
    if (window.used >= this.perSecond) return { retryAfterMs: window.start + 1000 - now };
    window.used++;
    return { retryAfterMs: null };
  }

  private sweep(now: number): void {
    for (const [key, window] of this.windows) if (now - window.start >= 1000) this.windows.delete(key);
  }
}
