import { describe, expect, it } from 'vitest';
import { Deadlines, type DeadlineClock, type DeadlineEntry } from '../src/ipc/Deadlines';
import { seededRandom } from 'discluster-testing';

/** A clock whose time moves only when told, with timers that fire from `advance`. */
class FakeClock implements DeadlineClock {
  public time = 0;
  public readonly timers = new Set<{ at: number; callback: () => void; refed: boolean }>();
  public armed = 0;

  public now(): number {
    return this.time;
  }

  public setTimer(callback: () => void, ms: number) {
    this.armed++;
    const timer = {
      at: this.time + ms,
      callback,
      refed: true,
      ref: () => void (timer.refed = true),
      unref: () => void (timer.refed = false),
    };
    this.timers.add(timer);
    return timer;
  }

  public clearTimer(timer: object): void {
    this.timers.delete(timer as never);
  }

  /** Moves to `to`, firing due timers in order (a timer fires no earlier than its time). */
  public advance(to: number): void {
    for (;;) {
      const due = [...this.timers].filter((t) => t.at <= to).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.time = Math.max(this.time, due.at);
      this.timers.delete(due);
      due.callback();
    }
    this.time = to;
  }

  public get holdsProcess(): boolean {
    return [...this.timers].some((t) => t.refed);
  }
}

interface Entry extends DeadlineEntry {
  readonly id: number;
  readonly timeoutMs: number;
  addedAt: number;
  expiredAt?: number;
}

describe('Deadlines (one timer for every IPC timeout)', () => {
  it('expires each unsettled entry exactly once, at its deadline, and never a settled one (random runs)', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const random = seededRandom(seed);
      const clock = new FakeClock();
      const expired: Entry[] = [];
      const deadlines = new Deadlines<Entry>((entry) => {
        entry.expiredAt = clock.now();
        expired.push(entry);
      }, clock);
      const entries: Entry[] = [];
      const timeouts = [1, 5, 50, 300, 5000].slice(0, 1 + Math.floor(random() * 5));
      for (let step = 0; step < 400; step++) {
        const roll = random();
        if (roll < 0.45) {
          const timeoutMs = timeouts[Math.floor(random() * timeouts.length)]!;
          const entry: Entry = {
            id: entries.length,
            timeoutMs,
            addedAt: clock.now(),
            settled: false,
            deadline: 0,
          };
          entries.push(entry);
          deadlines.add(entry, timeoutMs);
        } else if (roll < 0.75) {
          // A reply: the owner settles a pending entry, in any order.
          const open = entries.filter((e) => !e.settled);
          const entry = open[Math.floor(random() * open.length)];
          if (entry) entry.settled = true;
          if (!entries.some((e) => !e.settled)) deadlines.idle();
        } else {
          clock.advance(clock.now() + Math.floor(random() * 400));
        }
        // Whatever is still open keeps a timer set for no later than its deadline.
        const open = entries.filter((e) => !e.settled);
        if (open.length > 0) {
          const earliest = Math.min(...open.map((e) => e.deadline));
          expect([...clock.timers].some((t) => t.at <= Math.ceil(earliest) && t.refed)).toBe(true);
        }
      }
      clock.advance(clock.now() + 10_000);
      expect(entries.every((e) => e.settled)).toBe(true);
      expect(new Set(expired).size).toBe(expired.length);
      for (const entry of expired) {
        expect(entry.expiredAt).toBeGreaterThanOrEqual(entry.addedAt + entry.timeoutMs);
        // Fired by the timer set for it (the fake fires timers exactly on time).
        expect(entry.expiredAt).toBe(entry.addedAt + entry.timeoutMs);
      }
      // Nothing is left to hold the process once nothing waits.
      expect(clock.holdsProcess).toBe(false);
      expect(deadlines.size).toBe(0);
    }
  });

  it('sets one timer for a run of sequential requests, not one per request', () => {
    const clock = new FakeClock();
    const deadlines = new Deadlines<Entry>(() => {
      throw new Error('nothing should expire');
    }, clock);
    for (let i = 0; i < 1000; i++) {
      const entry: Entry = { id: i, timeoutMs: 5000, addedAt: clock.now(), settled: false, deadline: 0 };
      deadlines.add(entry, 5000);
      clock.advance(clock.now() + 1);
      entry.settled = true;
      deadlines.idle();
      // Settled entries do not pile up.
      expect(deadlines.size).toBeLessThanOrEqual(1);
    }
    // The first timer fires after 5 s, finds nothing and sets none; the next request sets one.
    expect(clock.armed).toBe(1);
    expect(clock.holdsProcess).toBe(false);
  });

  it('a shorter timeout added later moves the timer earlier', () => {
    const clock = new FakeClock();
    const expired: number[] = [];
    const deadlines = new Deadlines<Entry>((entry) => expired.push(entry.id), clock);
    deadlines.add({ id: 1, timeoutMs: 5000, addedAt: 0, settled: false, deadline: 0 }, 5000);
    deadlines.add({ id: 2, timeoutMs: 100, addedAt: 0, settled: false, deadline: 0 }, 100);
    clock.advance(100);
    expect(expired).toEqual([2]);
    clock.advance(4999);
    expect(expired).toEqual([2]);
    clock.advance(5000);
    expect(expired).toEqual([2, 1]);
  });

  it('an entry added from an expiry callback gets its own deadline', () => {
    const clock = new FakeClock();
    const expired: number[] = [];
    const deadlines = new Deadlines<Entry>((entry) => {
      expired.push(entry.id);
      if (entry.id === 1)
        deadlines.add({ id: 2, timeoutMs: 10, addedAt: clock.now(), settled: false, deadline: 0 }, 10);
    }, clock);
    deadlines.add({ id: 1, timeoutMs: 10, addedAt: 0, settled: false, deadline: 0 }, 10);
    clock.advance(1000);
    expect(expired).toEqual([1, 2]);
  });

  it('clear forgets everything and stops the timer', () => {
    const clock = new FakeClock();
    const deadlines = new Deadlines<Entry>(() => {
      throw new Error('cleared entries never expire');
    }, clock);
    deadlines.add({ id: 1, timeoutMs: 10, addedAt: 0, settled: false, deadline: 0 }, 10);
    deadlines.clear();
    expect(clock.timers.size).toBe(0);
    clock.advance(1000);
  });
});
