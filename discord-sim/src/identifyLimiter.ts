/** What the simulator remembers about one IDENTIFY, for tests that check timing and order. */
export interface IdentifyRecord {
  readonly at: number;
  readonly shard: readonly [id: number, count: number];
  readonly rateLimitKey: number;
  readonly outcome: 'ready' | 'rate-limited';
}

/**
 * Discord's identify concurrency: one IDENTIFY per rate-limit key (`shard_id % max_concurrency`)
 * per window. A second one inside the window is refused and counted as a violation.
 */
export class IdentifyLimiter {
  private readonly lastAllowedAt = new Map<number, number>();
  private readonly log: IdentifyRecord[] = [];
  public violations = 0;

  public constructor(
    private readonly maxConcurrency: number,
    private readonly windowMs: number,
    private readonly logLimit = 20_000,
  ) {}

  /** Records an attempt and says whether it may go ahead. */
  public attempt(shardId: number, shardCount: number, now = Date.now()): boolean {
    const rateLimitKey = shardId % this.maxConcurrency;
    const last = this.lastAllowedAt.get(rateLimitKey);
    const allowed = last === undefined || now - last >= this.windowMs;
    if (allowed) this.lastAllowedAt.set(rateLimitKey, now);
    else this.violations++;
    this.log.push({
      at: now,
      shard: [shardId, shardCount],
      rateLimitKey,
      outcome: allowed ? 'ready' : 'rate-limited',
    });
    if (this.log.length > this.logLimit) this.log.splice(0, this.log.length - this.logLimit);
    return allowed;
  }

  public records(): readonly IdentifyRecord[] {
    return this.log;
  }
}
