import { describe, expect, it } from 'vitest';
import {
  backoffDelay,
  decideOnExit,
  type ExitFacts,
  type RestartPolicyOptions,
} from '../src/clusters/restartPolicy';

const options: RestartPolicyOptions = {
  maxFailedStarts: 3,
  minUptimeMs: 10_000,
  baseDelayMs: 1_000,
  maxDelayMs: 8_000,
};
const early: ExitFacts = { kind: 'crashed', reportedReady: false, uptimeMs: 200 };
const lateCrash: ExitFacts = { kind: 'crashed', reportedReady: true, uptimeMs: 60_000 };

describe('decideOnExit', () => {
  it.each([
    ['requested', { kind: 'requested', reportedReady: true, uptimeMs: 60_000 }, 'stop'],
    ['fatal', { kind: 'fatal', reportedReady: true, uptimeMs: 60_000 }, 'stop'],
    ['crash after a good start', lateCrash, 'restart'],
    ['crash before ready', early, 'restart'],
    [
      'crash after ready but within min uptime',
      { kind: 'crashed', reportedReady: true, uptimeMs: 500 },
      'restart',
    ],
  ] as const)('%s → %s', (_name, exit, action) => {
    expect(decideOnExit(exit, 0, options).action).toBe(action);
  });

  it('gives up after max consecutive failed starts (seed 003: three)', () => {
    let failed = 0;
    const actions: string[] = [];
    for (let i = 0; i < 3; i++) {
      const decision = decideOnExit(early, failed, options);
      actions.push(decision.action);
      if (decision.action === 'restart') failed = decision.failedStarts;
      if (decision.action === 'give-up') expect(decision.attempts).toBe(3);
    }
    expect(actions).toEqual(['restart', 'restart', 'give-up']);
  });

  it('a good start resets the count', () => {
    const decision = decideOnExit(lateCrash, 2, options);
    expect(decision).toEqual({ action: 'restart', delayMs: 1_000, failedStarts: 0 });
  });

  it('with max 0, a failed start is never retried but a crash after a good start is', () => {
    const none = { ...options, maxFailedStarts: 0 };
    expect(decideOnExit(early, 0, none).action).toBe('give-up');
    expect(decideOnExit(lateCrash, 0, none).action).toBe('restart');
  });

  it('never restarts more than max times in a row for any sequence of exits (property)', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let run = 0; run < 200; run++) {
      const max = Math.floor(random() * 6);
      const opts = { ...options, maxFailedStarts: max };
      let failed = 0;
      let consecutive = 0;
      for (let step = 0; step < 50; step++) {
        const exit: ExitFacts = random() < 0.7 ? early : lateCrash;
        const decision = decideOnExit(exit, failed, opts);
        consecutive = exit === early ? consecutive + 1 : 0;
        if (decision.action === 'give-up') {
          expect(consecutive).toBe(Math.max(1, max));
          break;
        }
        expect(decision.action).toBe('restart');
        if (decision.action === 'restart') {
          expect(decision.delayMs).toBeLessThanOrEqual(opts.maxDelayMs);
          expect(decision.delayMs).toBeGreaterThanOrEqual(opts.baseDelayMs);
          failed = decision.failedStarts;
        }
        expect(failed).toBeLessThan(Math.max(1, max));
      }
    }
  });
});

describe('backoffDelay', () => {
  it('doubles per failed start and is capped', () => {
    expect([0, 1, 2, 3, 4, 5, 100].map((n) => backoffDelay(n, options))).toEqual([
      1_000, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000,
    ]);
  });
});
