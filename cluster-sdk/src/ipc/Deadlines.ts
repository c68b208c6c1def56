/** A timer as {@link Deadlines} uses it: Node's `Timeout`, or a test double. */
export interface DeadlineTimer {
  ref?(): unknown;
  unref?(): unknown;
}

/** Where {@link Deadlines} reads the time and sets its one timer. */
export interface DeadlineClock {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  setTimer(callback: () => void, ms: number): DeadlineTimer;
  clearTimer(timer: DeadlineTimer): void;
}

const NODE_CLOCK: DeadlineClock = {
  now: () => performance.now(),
  setTimer: (callback, ms) => setTimeout(callback, ms),
  clearTimer: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout>),
};

/** Something waiting for its deadline; `settled` is set by its owner once it needs none. */
export interface DeadlineEntry {
  settled: boolean;
  /** Set by {@link Deadlines.add}. */
  deadline: number;
}

/** Entries added with one timeout: their deadlines only grow, so the earliest is at the head. */
class Lane<T extends DeadlineEntry> {
  private items: T[] = [];
  private head = 0;

  public push(entry: T): void {
    this.items.push(entry);
  }

  public first(): T | undefined {
    return this.items[this.head];
  }

  public shift(): void {
    this.items[this.head++] = undefined as unknown as T;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  /** Drops settled entries from the head: the lane keeps only what may still time out (and what is queued behind it). */
  public trim(): void {
    for (let first = this.first(); first?.settled; first = this.first()) this.shift();
  }

  public get length(): number {
    return this.items.length - this.head;
  }
}

/**
 * Timeouts of many pending requests on one timer instead of one timer each. Entries are grouped by
 * their timeout (a lane per timeout: in a lane, deadlines come in order), the one timer is set for
 * the earliest deadline of any lane, and a settled entry costs nothing: it is dropped when it
 * reaches the head of its lane. When the timer fires, every unsettled entry whose deadline has
 * passed is settled and handed to `onExpired`; the timer is then set for the next one, if any.
 *
 * The timer does not keep the process alive while no entry is pending (`idle()`); an entry that
 * is pending does.
 */
export class Deadlines<T extends DeadlineEntry> {
  private readonly lanes = new Map<number, Lane<T>>();
  private timer: DeadlineTimer | null = null;
  /** When the timer fires (on the clock of `now`). */
  private timerAt = Number.POSITIVE_INFINITY;
  private refed = false;

  public constructor(
    private readonly onExpired: (entry: T) => void,
    private readonly clock: DeadlineClock = NODE_CLOCK,
  ) {}

  /** Starts `entry`'s countdown of `timeoutMs` (positive). */
  public add(entry: T, timeoutMs: number): void {
    const deadline = this.clock.now() + timeoutMs;
    entry.deadline = deadline;
    let lane = this.lanes.get(timeoutMs);
    if (!lane) this.lanes.set(timeoutMs, (lane = new Lane()));
    else lane.trim();
    lane.push(entry);
    if (deadline < this.timerAt) this.arm(deadline);
    else if (!this.refed) {
      this.timer?.ref?.();
      this.refed = true;
    }
  }

  /** No entry is waiting: the timer (if still set for a settled entry) no longer holds the process. */
  public idle(): void {
    if (this.refed && this.timer) {
      this.timer.unref?.();
      this.refed = false;
    }
  }

  /** Entries held, settled ones not yet dropped included. */
  public get size(): number {
    let size = 0;
    for (const lane of this.lanes.values()) size += lane.length;
    return size;
  }

  /** Forgets every entry and stops the timer; settled or not, none is handed to `onExpired`. */
  public clear(): void {
    this.lanes.clear();
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
    this.refed = false;
  }

  private arm(at: number): void {
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timerAt = at;
    this.refed = true;
    // A timer fires no earlier than asked; rounding up keeps it from firing just before `at`.
    this.timer = this.clock.setTimer(() => this.fire(), Math.max(1, Math.ceil(at - this.clock.now())));
  }

  private fire(): void {
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
    this.refed = false;
    const now = this.clock.now();
    let next = Number.POSITIVE_INFINITY;
    const expired: T[] = [];
    for (const [timeoutMs, lane] of this.lanes) {
      for (let first = lane.first(); first; first = lane.first()) {
        if (!first.settled) {
          if (first.deadline > now) break;
          first.settled = true;
          expired.push(first);
        }
        lane.shift();
      }
      const first = lane.first();
      if (first) next = Math.min(next, first.deadline);
      else this.lanes.delete(timeoutMs);
    }
    if (next !== Number.POSITIVE_INFINITY) this.arm(next);
    // Called last: a callback may add entries (and arm the timer) itself.
    for (const entry of expired) this.onExpired(entry);
  }
}
