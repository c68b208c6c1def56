import type { NatsConnection } from '@nats-io/transport-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { effectiveFenceAfterMs } from '../src/cluster/fleetMode';
import { NatsLiveness } from '../src/cluster/NatsLiveness';
import { ShardFence, type ShardFenceHost } from '../src/cluster/ShardFence';

/** A host that records what the fence did, with answers the test controls. */
function host(overrides: Partial<ShardFenceHost> = {}) {
  const calls: string[] = [];
  const state = { lost: false, stopping: false, fatal: false };
  const fenceHost: ShardFenceHost = {
    fenceAfterMs: () => 1000,
    retryMs: 1,
    isStopping: () => state.stopping,
    natsLost: () => state.lost,
    hasFatalShard: () => state.fatal,
    markFenced: () => calls.push('markFenced'),
    closeShards: async (reason) => void calls.push(`closeShards: ${reason}`),
    reconnectShards: async () => void calls.push('reconnect'),
    confirm: async () => true,
    onFenced: () => calls.push('fenced'),
    onUnfenced: () => calls.push('unfenced'),
    onRevoked: () => calls.push('revoked'),
    debug: () => undefined,
    error: (error) => calls.push(`error: ${error.message}`),
    ...overrides,
  };
  return { fence: new ShardFence(fenceHost), calls, state };
}

describe('ShardFence', () => {
  it('closes the shards once on loss, and reconnects them once the assignment is confirmed', async () => {
    const { fence, calls } = host();
    await fence.lost();
    await fence.lost();
    expect(calls).toEqual(['markFenced', 'closeShards: fenced: NATS unreachable', 'fenced']);
    expect(fence.fenced).toBe(true);
    await fence.restored();
    expect(calls.slice(3)).toEqual(['unfenced', 'reconnect']);
    expect(fence.fenced).toBe(false);
  });

  it('stays closed for good when the assignment is not confirmed', async () => {
    const { fence, calls } = host({ confirm: async () => false });
    await fence.lost();
    await fence.restored();
    await fence.restored();
    expect(calls).toEqual(['markFenced', 'closeShards: fenced: NATS unreachable', 'fenced', 'revoked']);
    expect(fence.revoked).toBe(true);
    expect(fence.fenced).toBe(true);
  });

  it('drops an answer that arrives after NATS was lost again; the next restore asks again', async () => {
    let answer!: (confirmed: boolean) => void;
    let asked = 0;
    const { fence, calls, state } = host({
      confirm: () => {
        asked++;
        return new Promise((resolve) => (answer = resolve));
      },
    });
    await fence.lost();
    const first = fence.restored();
    await new Promise((resolve) => setImmediate(resolve));
    expect(asked).toBe(1);
    state.lost = true;
    await fence.lost(); // already fenced: only supersedes the pending question
    answer(true);
    await first;
    expect(calls).not.toContain('reconnect');
    state.lost = false;
    const second = fence.restored();
    await new Promise((resolve) => setImmediate(resolve));
    answer(true);
    await second;
    expect(asked).toBe(2);
    expect(calls.at(-1)).toBe('reconnect');
  });

  it('asks again when a standalone confirmAssignment throws', async () => {
    let attempts = 0;
    const { fence, calls } = host({
      confirm: async () => {
        if (++attempts < 3) throw new Error('lease store unreachable');
        return true;
      },
    });
    await fence.lost();
    await fence.restored();
    expect(attempts).toBe(3);
    expect(calls.filter((call) => call.startsWith('error'))).toHaveLength(2);
    expect(calls.at(-1)).toBe('reconnect');
  });

  it('does not reconnect after a fatal close, nor while stopping', async () => {
    const fatal = host();
    fatal.state.fatal = true;
    await fatal.fence.lost();
    await fatal.fence.restored();
    expect(fatal.calls).not.toContain('reconnect');

    const stopping = host();
    await stopping.fence.lost();
    stopping.state.stopping = true;
    await stopping.fence.restored();
    expect(stopping.calls).not.toContain('reconnect');
  });

  describe('a fence ordered by CONTROL', () => {
    /** A host whose confirm() records each question and waits for the test's answer. */
    function asking(overrides: Partial<ShardFenceHost> = {}) {
      const answers: Array<(confirmed: boolean) => void> = [];
      const made = host({
        confirm: () => {
          made.calls.push('confirm');
          return new Promise((resolve) => answers.push(resolve));
        },
        ...overrides,
      });
      return { ...made, answers };
    }
    const tick = () => new Promise((resolve) => setImmediate(resolve));

    it('closes the shards, then asks at once (no NATS restore to wait for) and reconnects once confirmed', async () => {
      const { fence, calls, answers } = asking();
      const ordered = fence.ordered('lease renewal failed');
      await tick();
      expect(calls).toEqual(['markFenced', 'closeShards: fenced: leases not renewed', 'fenced', 'confirm']);
      expect(fence.fenced).toBe(true);
      answers[0]!(true);
      await ordered;
      expect(calls.slice(4)).toEqual(['unfenced', 'reconnect']);
      expect(fence.fenced).toBe(false);
      // Serving again: a later order fences again.
      const again = fence.ordered('lease renewal failed again');
      await tick();
      expect(calls.slice(6)).toEqual([
        'markFenced',
        'closeShards: fenced: leases not renewed',
        'fenced',
        'confirm',
      ]);
      answers[1]!(true);
      await again;
      expect(calls.at(-1)).toBe('reconnect');
    });

    it('stays closed for good when CONTROL refuses', async () => {
      const { fence, calls } = host({ confirm: async () => false });
      await fence.ordered('lease renewal failed');
      expect(calls).toEqual(['markFenced', 'closeShards: fenced: leases not renewed', 'fenced', 'revoked']);
      expect(fence.revoked).toBe(true);
      expect(fence.fenced).toBe(true);
      await fence.ordered('still failing');
      expect(calls).toHaveLength(4);
    });

    it('is a no-op while fenced already, whether by a NATS loss or by an earlier order', async () => {
      const lost = asking();
      lost.state.lost = true;
      await lost.fence.lost();
      await lost.fence.ordered('lease renewal failed');
      expect(lost.calls).toEqual(['markFenced', 'closeShards: fenced: NATS unreachable', 'fenced']);

      const twice = asking();
      const first = twice.fence.ordered('lease renewal failed');
      await tick();
      await twice.fence.ordered('lease renewal failed');
      expect(twice.calls.filter((call) => call.startsWith('closeShards'))).toHaveLength(1);
      expect(twice.calls.filter((call) => call === 'confirm')).toHaveLength(1);
      twice.answers[0]!(true);
      await first;
      expect(twice.calls.filter((call) => call === 'reconnect')).toHaveLength(1);
    });

    it('is ignored while stopping', async () => {
      const { fence, calls, state } = host();
      state.stopping = true;
      await fence.ordered('lease renewal failed');
      expect(calls).toEqual([]);
      expect(fence.fenced).toBe(false);
    });

    it('leaves the question to the NATS restore when NATS is lost while asking', async () => {
      const { fence, calls, state, answers } = asking();
      const ordered = fence.ordered('lease renewal failed');
      await tick();
      state.lost = true;
      await fence.lost(); // fenced already: only supersedes the pending question
      answers[0]!(true);
      await ordered;
      expect(calls).not.toContain('reconnect');
      expect(fence.fenced).toBe(true);
      state.lost = false;
      const restored = fence.restored();
      await tick();
      answers[1]!(true);
      await restored;
      expect(calls.filter((call) => call === 'confirm')).toHaveLength(2);
      expect(calls.at(-1)).toBe('reconnect');
    });
  });
});

describe('fence time in a fleet', () => {
  it("uses CONTROL's fenceAfterMs when it is shorter than the own setting, never a longer one", () => {
    expect(effectiveFenceAfterMs(10_000, undefined)).toBe(10_000);
    expect(effectiveFenceAfterMs(10_000, 4000)).toBe(4000);
    expect(effectiveFenceAfterMs(2000, 4000)).toBe(2000);
    expect(effectiveFenceAfterMs(2000, 2000)).toBe(2000);
    // The default (not set by the bot) does not cap CONTROL's: a 30 s lease gives a 15 s fence.
    expect(effectiveFenceAfterMs(10_000, 15_000, false)).toBe(15_000);
    expect(effectiveFenceAfterMs(10_000, 4000, false)).toBe(4000);
    expect(effectiveFenceAfterMs(10_000, 15_000, true)).toBe(10_000);
  });

  describe('NatsLiveness', () => {
    beforeEach(() => vi.useFakeTimers());
    afterEach(() => vi.useRealTimers());

    /** A connection that never answers a round trip until `link.answering` is set. */
    function silentNats() {
      const link = { answering: false };
      const nc = {
        isClosed: () => false,
        flush: () => (link.answering ? Promise.resolve() : new Promise<void>(() => undefined)),
      } as unknown as NatsConnection;
      return { nc, link };
    }

    it('declares NATS lost after the lowered time once the fence time is lowered, and restored on an answer', async () => {
      const { nc, link } = silentNats();
      const seen: string[] = [];
      const liveness = new NatsLiveness(nc, {
        lostAfterMs: 10_000,
        onLost: () => seen.push('lost'),
        onRestored: () => seen.push('restored'),
      });
      liveness.start();
      await vi.advanceTimersByTimeAsync(2500);
      expect(seen).toEqual([]);
      // CONTROL's assignment lowers the fence time: 2.5 s without contact already count.
      liveness.setLostAfterMs(4000); // probes every 800 ms from here
      await vi.advanceTimersByTimeAsync(800);
      expect(seen).toEqual([]);
      await vi.advanceTimersByTimeAsync(800);
      expect(seen).toEqual(['lost']);
      expect(liveness.isLost).toBe(true);
      link.answering = true;
      await vi.advanceTimersByTimeAsync(2000);
      expect(seen).toEqual(['lost', 'restored']);
      liveness.stop();
    });

    it('keeps the own time when CONTROL sends none', async () => {
      const { nc } = silentNats();
      const seen: string[] = [];
      const liveness = new NatsLiveness(nc, {
        lostAfterMs: 10_000,
        onLost: () => seen.push('lost'),
        onRestored: () => seen.push('restored'),
      });
      liveness.start();
      liveness.setLostAfterMs(effectiveFenceAfterMs(10_000, undefined));
      await vi.advanceTimersByTimeAsync(9000);
      expect(seen).toEqual([]);
      await vi.advanceTimersByTimeAsync(3000);
      expect(seen).toEqual(['lost']);
      liveness.stop();
    });
  });
});
