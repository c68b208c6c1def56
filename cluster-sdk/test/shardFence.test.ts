import { describe, expect, it } from 'vitest';
import { ShardFence, type ShardFenceHost } from '../src/cluster/ShardFence';

/** A host that records what the fence did, with answers the test controls. */
function host(overrides: Partial<ShardFenceHost> = {}) {
  const calls: string[] = [];
  const state = { lost: false, stopping: false, fatal: false };
  const fenceHost: ShardFenceHost = {
    fenceAfterMs: 1000,
    retryMs: 1,
    isStopping: () => state.stopping,
    natsLost: () => state.lost,
    hasFatalShard: () => state.fatal,
    markFenced: () => calls.push('markFenced'),
    closeShards: async () => void calls.push('closeShards'),
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
    expect(calls).toEqual(['markFenced', 'closeShards', 'fenced']);
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
    expect(calls).toEqual(['markFenced', 'closeShards', 'fenced', 'revoked']);
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
});
