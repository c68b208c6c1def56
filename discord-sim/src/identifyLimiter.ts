/** What the simulator remembers about one IDENTIFY, for tests that check timing and order. */
export interface IdentifyRecord {
  /** When the simulator handled it (epoch ms). */
  readonly at: number;
  readonly shard: readonly [id: number, count: number];
  readonly rateLimitKey: number;
  readonly outcome: 'ready' | 'rate-limited';
  /** How late the simulator's event loop may have read it (ms): it arrived in [at − readLateMs, at]. */
  readonly readLateMs: number;
  /**
   * Handled inside its key's window, but not by more than the earlier IDENTIFY may have been read
   * late: the simulator cannot tell, so it let it through and did not count a violation.
   */
  readonly unjudged: boolean;
}

interface Accepted {
  readonly at: number;
  readonly readLateMs: number;
}

/**
 * Discord's identify concurrency: one IDENTIFY per rate-limit key (`shard_id % max_concurrency`)
 * per window. A second one inside the window is refused and counted as a violation, judged on when
 * the two arrived: an IDENTIFY handled inside the window only because the earlier one was read late
 * (see LoopLateness) is let through and counted as `unjudged` instead.
 */
export class IdentifyLimiter {
  private readonly lastAllowed = new Map<number, Accepted>();
  private readonly log: IdentifyRecord[] = [];
  public violations = 0;
  public unjudged = 0;

  public constructor(
    private readonly maxConcurrency: number,
    private readonly windowMs: number,
    private readonly logLimit = 20_000,
    /** How late the simulator may be reading what it handles now (ms); see LoopLateness. */
    private readonly readLateness: () => number = () => 0,
  ) {}

  /**
   * Records an attempt and says whether it may go ahead. `readLateMs`: how late the simulator may
   * have read it.
   */
  public attempt(
    shardId: number,
    shardCount: number,
    now = Date.now(),
    readLateMs = this.readLateness(),
  ): boolean {
    const rateLimitKey = shardId % this.maxConcurrency;
    const last = this.lastAllowed.get(rateLimitKey);
    // The earlier one arrived no later than it was read and no earlier than readLateMs before: the
    // longest the two can have been apart is now − (last.at − last.readLateMs).
    const readGap = last === undefined ? Number.POSITIVE_INFINITY : now - last.at;
    const longestGap = last === undefined ? Number.POSITIVE_INFINITY : readGap + last.readLateMs;
    const allowed = longestGap >= this.windowMs;
    const unjudged = allowed && readGap < this.windowMs;
    if (allowed) this.lastAllowed.set(rateLimitKey, { at: now, readLateMs });
    else this.violations++;
    if (unjudged) this.unjudged++;
    this.log.push({
      at: now,
      shard: [shardId, shardCount],
      rateLimitKey,
      outcome: allowed ? 'ready' : 'rate-limited',
      readLateMs: Math.round(readLateMs),
      unjudged,
    });
    if (this.log.length > this.logLimit) this.log.splice(0, this.log.length - this.logLimit);
    return allowed;
  }

  public records(): readonly IdentifyRecord[] {
    return this.log;
  }
}
