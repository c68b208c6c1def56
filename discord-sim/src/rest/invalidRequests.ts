/** Discord counts invalid requests over 10 minutes. */
export const INVALID_REQUEST_WINDOW_MS = 600_000;
const SLOT_MS = 1000;

interface Counter {
  /** Counts per one-second slot, oldest first: a sliding 10-minute window without a timestamp per request. */
  slots: Array<{ slot: number; count: number }>;
  total: number;
  bannedUntil: number;
}

/**
 * The invalid request limit ("Cloudflare bans"): 401, 403 and 429 answers (except 429s of scope
 * `shared`) are counted per client IP over 10 minutes; reaching `limit` bans that IP for `banMs`,
 * during which every request is refused. A ban clears the IP's count, so it starts afresh afterwards.
 */
export class InvalidRequests {
  private readonly counters = new Map<string, Counter>();
  public bans = 0;

  public constructor(
    private readonly limit: number,
    private readonly banMs: number,
  ) {}

  /** Milliseconds the IP stays banned, or null when it may make requests. */
  public bannedFor(ip: string, now = Date.now()): number | null {
    const counter = this.counters.get(ip);
    if (!counter || counter.bannedUntil <= now) return null;
    return counter.bannedUntil - now;
  }

  /** Counts one invalid request; returns true when it starts a ban. */
  public record(ip: string, now = Date.now()): boolean {
    let counter = this.counters.get(ip);
    if (!counter) this.counters.set(ip, (counter = { slots: [], total: 0, bannedUntil: 0 }));
    const slot = Math.floor(now / SLOT_MS);
    const oldest = slot - INVALID_REQUEST_WINDOW_MS / SLOT_MS;
    while (counter.slots.length > 0 && counter.slots[0]!.slot <= oldest)
      counter.total -= counter.slots.shift()!.count;
    const last = counter.slots[counter.slots.length - 1];
    if (last?.slot === slot) last.count++;
    else counter.slots.push({ slot, count: 1 });
    counter.total++;
    if (counter.total < this.limit) return false;
    counter.bannedUntil = now + this.banMs;
    counter.slots = [];
    counter.total = 0;
    this.bans++;
    return true;
  }
}
