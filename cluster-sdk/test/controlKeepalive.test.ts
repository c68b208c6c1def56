/**
 * CONTROL's keepalive, cluster side, with fake timers: the real FleetLink (over a fake pm2 channel),
 * ControlKeepalive and ShardFence, wired as Cluster wires them in a fleet. The shards themselves are
 * a recording stub; the same flow with a real SDK bot, pm2 and discord-sim is in
 * pm2-module-control/test/control.sdk.test.ts.
 */
import { CLUSTER_CONTROL_TOPIC, type AssignMessage, type ClusterToControl } from 'discluster-protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ControlKeepalive } from '../src/cluster/ControlKeepalive';
import { ShardFence } from '../src/cluster/ShardFence';
import type { ControlChannel } from '../src/fleet/ControlChannel';
import { FleetLink } from '../src/fleet/FleetLink';

const FENCE_AFTER_MS = 2000;
/** CONTROL renews every TTL/4 = fenceAfterMs / 2. */
const RENEW_MS = FENCE_AFTER_MS / 2;
const RESEND_MS = 500;
const EPOCH = 3;
/**
 * A silence the timer finds is judged after two immediates (the IPC socket is read first); fake
 * timers run each immediate 1 ms later.
 */
const JUDGED_MS = 2;

class FakeChannel implements ControlChannel {
  public readonly sent: ClusterToControl[] = [];
  private readonly listeners = new Set<(packet: unknown) => void>();

  public send(message: ClusterToControl): Promise<void> {
    this.sent.push(message);
    return Promise.resolve();
  }
  public onMessage(listener: (packet: unknown) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  public onDisconnect(): () => void {
    return () => undefined;
  }
  public deliver(data: unknown): void {
    for (const listener of this.listeners)
      listener({ topic: CLUSTER_CONTROL_TOPIC, data, type: 'process:msg' });
  }
  public count(type: ClusterToControl['type']): number {
    return this.sent.filter((message) => message.type === type).length;
  }
}

const assign: AssignMessage = {
  v: 1,
  type: 'assign',
  epoch: EPOCH,
  clusterId: 0,
  shardIds: [0, 1],
  shardCount: 2,
  bot: 'unit',
  token: 'unit-test-token-value',
  gateway: {
    url: 'wss://gateway.example',
    shards: 2,
    session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 1 },
  },
  clusterIds: [0],
  nats: { servers: ['nats://127.0.0.1:4222'] },
  fenceAfterMs: FENCE_AFTER_MS,
};

/** A fleet cluster without shards: what the fence did to them is recorded in `calls`. */
function fleetCluster() {
  const calls: string[] = [];
  const state = { stopping: false, fenceAfterMs: FENCE_AFTER_MS };
  const channel = new FakeChannel();
  const link = new FleetLink(channel, { clusterId: 0, resendMs: RESEND_MS });
  // Cluster.ts: onKeepalive → received(); onSilent → fence.controlSilent(); onUnfenced → vouched().
  const fence = new ShardFence({
    fenceAfterMs: () => state.fenceAfterMs,
    retryMs: RESEND_MS,
    isStopping: () => state.stopping,
    natsLost: () => false,
    hasFatalShard: () => false,
    markFenced: () => calls.push('markFenced'),
    closeShards: async (reason) => void calls.push(`close: ${reason}`),
    reconnectShards: async () => void calls.push('reconnect'),
    confirm: () => link.confirm(),
    onFenced: () => {
      calls.push('fenced');
      void link.sendFenced();
    },
    onUnfenced: () => {
      keepalive.vouched();
      calls.push('unfenced');
    },
    onRevoked: () => calls.push('revoked'),
    debug: () => undefined,
    error: (error) => calls.push(`error: ${error.message}`),
  });
  const keepalive = new ControlKeepalive({
    fenceAfterMs: () => state.fenceAfterMs,
    onSilent: (silentMs) => void fence.controlSilent(silentMs),
  });
  link.on('keepalive', (_epoch, renewedAt) => keepalive.received(renewedAt));
  link.on('error', (error) => calls.push(`error: ${error.message}`));
  link.start();
  const control = {
    assign: () => channel.deliver(assign),
    keepalive: () => channel.deliver({ v: 1, type: 'keepalive', epoch: EPOCH }),
    confirmReply: (confirmed: boolean) =>
      channel.deliver({ v: 1, type: 'confirm-reply', epoch: EPOCH, confirmed }),
    /** Sends a keepalive every renewal round for `ms`. */
    async renewFor(ms: number) {
      for (let elapsed = 0; elapsed < ms; elapsed += RENEW_MS) {
        await vi.advanceTimersByTimeAsync(RENEW_MS);
        control.keepalive();
      }
    },
  };
  return { calls, state, channel, link, fence, keepalive, control };
}

describe("CONTROL's keepalive (cluster side)", () => {
  let cluster: ReturnType<typeof fleetCluster>;

  beforeEach(() => {
    vi.useFakeTimers();
    cluster = fleetCluster();
  });
  afterEach(() => {
    cluster.keepalive.stop();
    cluster.link.close();
    vi.useRealTimers();
  });

  it('keeps serving while keepalives come every renewal round', async () => {
    const { calls, control, keepalive } = cluster;
    control.assign();
    control.keepalive();
    expect(keepalive.armed).toBe(true);
    await control.renewFor(60_000);
    expect(calls).toEqual([]);
    // A round late (a renewal round that failed once): still within the fence time.
    await vi.advanceTimersByTimeAsync(FENCE_AFTER_MS - 1);
    control.keepalive();
    await control.renewFor(10_000);
    expect(calls).toEqual([]);
  });

  it('uses one timer, whatever the number of keepalives', async () => {
    const { control } = cluster;
    control.assign();
    control.keepalive();
    const timers = vi.getTimerCount();
    for (let i = 0; i < 100; i++) control.keepalive();
    expect(vi.getTimerCount()).toBe(timers);
    await control.renewFor(10_000);
    expect(vi.getTimerCount()).toBe(timers);
  });

  it('fences after fenceAfterMs of silence, asks confirm until answered, resumes on confirmed: true', async () => {
    const { calls, channel, control, fence } = cluster;
    control.assign();
    control.keepalive();
    await control.renewFor(5000);
    // CONTROL stops (SIGSTOP, crash, hang) right after its last keepalive.
    await vi.advanceTimersByTimeAsync(FENCE_AFTER_MS - 1);
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1 + JUDGED_MS);
    expect(calls).toEqual(['markFenced', 'close: fenced: CONTROL silent', 'fenced']);
    expect(fence.fenced).toBe(true);
    expect(channel.sent.filter((m) => m.type === 'fenced' || m.type === 'confirm')).toEqual([
      { v: 1, type: 'fenced', clusterId: 0, epoch: EPOCH },
      { v: 1, type: 'confirm', clusterId: 0, epoch: EPOCH },
    ]);
    // Nobody answers while CONTROL is away: it keeps asking, and stays closed.
    await vi.advanceTimersByTimeAsync(RESEND_MS * 10);
    expect(channel.count('confirm')).toBe(11);
    expect(calls).toHaveLength(3);
    // The CONTROL that comes back adopts the cluster (keepalive) and answers from its leases.
    control.keepalive();
    await vi.advanceTimersByTimeAsync(RESEND_MS);
    expect(calls).toHaveLength(3); // a keepalive is not a confirmation
    control.confirmReply(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.slice(3)).toEqual(['unfenced', 'reconnect']);
    expect(fence.fenced).toBe(false);
    const asked = channel.count('confirm');
    // Armed again: keepalives keep it serving (and it asks nothing more), silence fences again.
    await control.renewFor(5000);
    expect(channel.count('confirm')).toBe(asked);
    expect(calls).toHaveLength(5);
    await vi.advanceTimersByTimeAsync(FENCE_AFTER_MS + JUDGED_MS);
    expect(calls.slice(5)).toEqual(['markFenced', 'close: fenced: CONTROL silent', 'fenced']);
  });

  it('counts the confirmation as a keepalive: a CONTROL that confirms and dies is noticed too', async () => {
    const { calls, control } = cluster;
    control.assign();
    control.keepalive();
    await vi.advanceTimersByTimeAsync(FENCE_AFTER_MS + JUDGED_MS);
    expect(calls.at(-1)).toBe('fenced');
    await vi.advanceTimersByTimeAsync(10_000);
    control.confirmReply(true); // no keepalive before nor after it
    await vi.advanceTimersByTimeAsync(FENCE_AFTER_MS - 1);
    expect(calls.at(-1)).toBe('reconnect');
    await vi.advanceTimersByTimeAsync(1 + JUDGED_MS);
    expect(calls.at(-1)).toBe('fenced');
  });

  it('stays closed for good when the returning CONTROL refuses', async () => {
    const { calls, control, fence } = cluster;
    control.assign();
    control.keepalive();
    await vi.advanceTimersByTimeAsync(FENCE_AFTER_MS + JUDGED_MS);
    control.confirmReply(false);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toEqual(['markFenced', 'close: fenced: CONTROL silent', 'fenced', 'revoked']);
    expect(fence.revoked).toBe(true);
    control.keepalive();
    await vi.advanceTimersByTimeAsync(FENCE_AFTER_MS * 3);
    expect(calls).toHaveLength(4);
  });

  it('never fences for silence when no keepalive ever came (a CONTROL without keepalives)', async () => {
    const { calls, control, keepalive } = cluster;
    control.keepalive(); // before the assignment: not armed
    control.assign();
    await vi.advanceTimersByTimeAsync(FENCE_AFTER_MS * 30);
    expect(keepalive.armed).toBe(false);
    expect(calls).toEqual([]);
  });

  it('a cluster that is stopping ignores the silence', async () => {
    const { calls, state, control, fence } = cluster;
    control.assign();
    control.keepalive();
    state.stopping = true;
    await vi.advanceTimersByTimeAsync(FENCE_AFTER_MS * 3);
    expect(calls).toEqual([]);
    expect(fence.fenced).toBe(false);
  });

  it('counts from the renewal a keepalive vouches for (renewedAt), not from when it is read', async () => {
    const { calls, channel, control } = cluster;
    control.assign();
    control.keepalive();
    await vi.advanceTimersByTimeAsync(1000);
    // Read 500 ms after CONTROL sent the renewal (the cluster was busy): 1500 ms of it are left.
    channel.deliver({ v: 1, type: 'keepalive', epoch: EPOCH, renewedAt: Date.now() - 500 });
    await vi.advanceTimersByTimeAsync(1499);
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1 + JUDGED_MS);
    expect(calls.at(-1)).toBe('fenced');
  });

  it('a stale keepalive (its renewal older than the fence time) neither postpones nor ends a silence', async () => {
    const { calls, channel, control } = cluster;
    control.assign();
    control.keepalive();
    const lastRenewal = Date.now();
    await vi.advanceTimersByTimeAsync(1900);
    // Sent before CONTROL died, read only now: it vouches for the renewal at lastRenewal - 100.
    channel.deliver({ v: 1, type: 'keepalive', epoch: EPOCH, renewedAt: lastRenewal - 100 });
    await vi.advanceTimersByTimeAsync(100 + JUDGED_MS);
    expect(calls).toEqual(['markFenced', 'close: fenced: CONTROL silent', 'fenced']);
    channel.deliver({ v: 1, type: 'keepalive', epoch: EPOCH, renewedAt: lastRenewal });
    await vi.advanceTimersByTimeAsync(FENCE_AFTER_MS * 2);
    expect(calls).toHaveLength(3); // one report, nothing undone
  });

  it('a keepalive that arrives with the due timer (read after it) ends the silence it found', async () => {
    const { calls, channel, control } = cluster;
    control.assign();
    control.keepalive();
    // Due at the same moment as the silence timer, queued after it: as a message waiting in the
    // IPC socket when a stalled process wakes, which Node reads after running its due timers.
    setTimeout(
      () => channel.deliver({ v: 1, type: 'keepalive', epoch: EPOCH, renewedAt: Date.now() }),
      FENCE_AFTER_MS,
    );
    await vi.advanceTimersByTimeAsync(FENCE_AFTER_MS + JUDGED_MS);
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(FENCE_AFTER_MS - JUDGED_MS - 1);
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1 + JUDGED_MS);
    expect(calls.at(-1)).toBe('fenced');
  });

  it('follows a lowered fence time at once (time already silent counts)', async () => {
    const { calls, state, control, keepalive } = cluster;
    control.assign();
    control.keepalive();
    await vi.advanceTimersByTimeAsync(900);
    state.fenceAfterMs = 1000;
    keepalive.fenceTimeChanged();
    await vi.advanceTimersByTimeAsync(99);
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1 + JUDGED_MS);
    expect(calls.at(-1)).toBe('fenced');
  });
});
