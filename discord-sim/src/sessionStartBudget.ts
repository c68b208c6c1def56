const DAY_MS = 86_400_000;

/**
 * The daily `session_start_limit`. Spending past zero is what gets a real bot's token reset, so
 * the simulator does the same: the caller ends every session and refuses the token from then on.
 */
export class SessionStartBudget {
  private resetAt: number;
  public tokenReset = false;

  public constructor(
    public readonly total: number,
    public remaining: number,
    private readonly now: () => number = Date.now,
  ) {
    this.resetAt = now() + DAY_MS;
  }

  /** Takes one session start; false when none was left (the token is now reset). */
  public spend(): boolean {
    this.refill();
    if (this.remaining <= 0) {
      this.tokenReset = true;
      return false;
    }
    this.remaining--;
    return true;
  }

  public get resetAfterMs(): number {
    this.refill();
    return Math.max(0, this.resetAt - this.now());
  }

  public set(remaining: number): void {
    this.remaining = Math.max(0, Math.min(this.total, remaining));
  }

  private refill(): void {
    if (this.now() >= this.resetAt) {
      this.remaining = this.total;
      this.resetAt = this.now() + DAY_MS;
    }
  }
}
