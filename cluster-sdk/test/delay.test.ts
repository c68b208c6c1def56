import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { delay, untilAborted } from '../src/util/delay';
import { Notifier } from '../src/util/Notifier';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('delay', () => {
  it('resolves after the time, early on notify, and rejects with the abort reason', async () => {
    const never = new AbortController().signal;
    let done = false;
    void delay(100, never).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(99);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);

    const wake = new Notifier();
    const woken = delay(10_000, never, wake);
    wake.notify();
    await expect(woken).resolves.toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);

    const controller = new AbortController();
    const aborted = delay(10_000, controller.signal);
    controller.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('untilAborted', () => {
  it('stops waiting on abort and hands a late result to the undo hook', async () => {
    let finish!: (value: number) => void;
    const work = new Promise<number>((resolve) => (finish = resolve));
    const controller = new AbortController();
    const late: number[] = [];
    const waiting = untilAborted(work, controller.signal, (value) => late.push(value));
    controller.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    finish(7);
    await work;
    expect(late).toEqual([7]);
  });
});
