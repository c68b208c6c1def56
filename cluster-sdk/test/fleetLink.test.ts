import { CLUSTER_CONTROL_TOPIC, type AssignMessage, type ClusterToControl } from 'discluster-protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ControlChannel } from '../src/fleet/ControlChannel';
import { decodeControlMessage, describeAssignmentChange } from '../src/fleet/controlMessages';
import { FleetLink } from '../src/fleet/FleetLink';
import { StatusReporter } from '../src/fleet/StatusReporter';
import { RateMeter } from '../src/pm2/Pm2Metrics';
import { redact, registerSecret } from '../src/util/redact';

const RESEND_MS = 1000;

class FakeChannel implements ControlChannel {
  public readonly sent: ClusterToControl[] = [];
  private readonly listeners = new Set<(packet: unknown) => void>();
  private readonly disconnects = new Set<() => void>();

  public send(message: ClusterToControl): Promise<void> {
    this.sent.push(message);
    return Promise.resolve();
  }
  public onMessage(listener: (packet: unknown) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  public onDisconnect(listener: () => void): () => void {
    this.disconnects.add(listener);
    return () => this.disconnects.delete(listener);
  }
  public deliver(data: unknown, topic = CLUSTER_CONTROL_TOPIC): void {
    for (const listener of this.listeners) listener({ topic, data, type: 'process:msg' });
  }
  public disconnect(): void {
    for (const listener of this.disconnects) listener();
  }
  public types(): string[] {
    return this.sent.map((message) => message.type);
  }
}

function assign(overrides: Partial<AssignMessage> = {}): AssignMessage {
  return {
    v: 1,
    type: 'assign',
    epoch: 3,
    clusterId: 0,
    shardIds: [0, 1],
    shardCount: 4,
    bot: 'unit',
    token: 'unit-test-token-value',
    gateway: {
      url: 'wss://gateway.example',
      shards: 4,
      session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 1 },
    },
    clusterIds: [0, 1],
    nats: { servers: ['nats://127.0.0.1:4222'] },
    ...overrides,
  };
}

describe('FleetLink', () => {
  let channel: FakeChannel;
  let link: FleetLink;
  let errors: string[];

  beforeEach(() => {
    vi.useFakeTimers();
    channel = new FakeChannel();
    link = new FleetLink(channel, { clusterId: 0, resendMs: RESEND_MS });
    errors = [];
    link.on('error', (error) => errors.push(error.message));
    link.start();
  });
  afterEach(() => {
    link.close();
    vi.useRealTimers();
  });

  it('says hello until an assignment for its cluster arrives, then stops', async () => {
    expect(channel.types()).toEqual(['hello']);
    await vi.advanceTimersByTimeAsync(RESEND_MS);
    expect(channel.types()).toEqual(['hello', 'hello']);
    channel.deliver(assign({ clusterId: 1 }));
    expect(errors).toEqual([expect.stringMatching(/assignment for cluster 1/)]);
    channel.deliver(assign());
    await expect(link.assignment()).resolves.toMatchObject({ epoch: 3, shardIds: [0, 1] });
    await vi.advanceTimersByTimeAsync(RESEND_MS * 3);
    expect(channel.types()).toEqual(['hello', 'hello']);
  });

  it('ignores other topics and drops malformed messages with an error', () => {
    channel.deliver({ type: 'shutdown', v: 1, reason: 'not for us' }, 'other-topic');
    channel.deliver({ v: 2, type: 'shutdown', reason: 'x' });
    channel.deliver('shutdown');
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(/malformed message from CONTROL \(shutdown: v:/);
    expect(errors[1]).toMatch(
      /type: expected assign, confirm-reply, shutdown, fence or keepalive, got undefined/,
    );
  });

  it('adopts a newer epoch with the same shards; refuses older epochs and changes', async () => {
    const updates: number[] = [];
    link.on('updated', (message) => updates.push(message.epoch));
    channel.deliver(assign());
    channel.deliver(assign({ epoch: 2 }));
    channel.deliver(assign({ epoch: 4, shardIds: [0, 1, 2] }));
    channel.deliver(assign({ epoch: 4, token: 'another-token-value' }));
    channel.deliver(assign({ epoch: 3 }));
    channel.deliver(assign({ epoch: 5, shardIds: [1, 0], clusterIds: [0, 1, 2] }));
    expect(updates).toEqual([5]);
    expect(link.epoch).toBe(5);
    expect(errors).toHaveLength(3);
    expect(errors[0]).toMatch(/epoch 2: this cluster runs epoch 3/);
    expect(errors[1]).toMatch(/shards \[0, 1\] → \[0, 1, 2\].*needs a restart/);
    expect(errors[2]).toMatch(/epoch 4: the token\)/);
    expect(errors.join('\n')).not.toContain('another-token-value');
  });

  it('asks for confirmation until CONTROL answers for the running epoch', async () => {
    channel.deliver(assign());
    await link.assignment();
    let answer: boolean | undefined;
    void link.confirm().then((confirmed) => (answer = confirmed));
    expect(channel.sent.at(-1)).toEqual({ v: 1, type: 'confirm', clusterId: 0, epoch: 3 });
    await vi.advanceTimersByTimeAsync(RESEND_MS);
    expect(channel.types().filter((type) => type === 'confirm')).toHaveLength(2);
    channel.deliver({ v: 1, type: 'confirm-reply', epoch: 2, confirmed: true });
    await vi.advanceTimersByTimeAsync(0);
    expect(answer).toBeUndefined();
    expect(errors).toEqual([expect.stringMatching(/confirm-reply for epoch 2/)]);
    channel.deliver({ v: 1, type: 'confirm-reply', epoch: 3, confirmed: false });
    await vi.advanceTimersByTimeAsync(0);
    expect(answer).toBe(false);
    await vi.advanceTimersByTimeAsync(RESEND_MS * 3);
    expect(channel.types().filter((type) => type === 'confirm')).toHaveLength(2);
    // An answer nobody asked for changes nothing.
    channel.deliver({ v: 1, type: 'confirm-reply', epoch: 3, confirmed: true });
    expect(errors).toHaveLength(1);
  });

  it('adopts another fenceAfterMs, in a newer epoch or the same one', async () => {
    const updates: Array<[number, number | undefined]> = [];
    link.on('updated', (message) => updates.push([message.epoch, message.fenceAfterMs]));
    channel.deliver(assign({ fenceAfterMs: 4000 }));
    await expect(link.assignment()).resolves.toMatchObject({ fenceAfterMs: 4000 });
    channel.deliver(assign({ fenceAfterMs: 4000 })); // the same again: nothing to do
    channel.deliver(assign({ fenceAfterMs: 3000 }));
    channel.deliver(assign({ epoch: 4, fenceAfterMs: 3000 }));
    channel.deliver(assign({ epoch: 5 }));
    channel.deliver(assign({ epoch: 5, fenceAfterMs: 99 }));
    expect(updates).toEqual([
      [3, 3000],
      [4, 3000],
      [5, undefined],
    ]);
    expect(link.latest).toMatchObject({ epoch: 5 });
    expect(link.latest?.fenceAfterMs).toBeUndefined();
    expect(errors).toEqual([expect.stringMatching(/malformed message from CONTROL \(assign: fenceAfterMs:/)]);
  });

  it('passes on a fence once assigned; drops one before the assignment and a malformed one', async () => {
    const fences: string[] = [];
    const debug: string[] = [];
    link.on('fence', (reason) => fences.push(reason));
    link.on('debug', (message) => debug.push(message));
    channel.deliver({ v: 1, type: 'fence', reason: 'too early' });
    expect(fences).toEqual([]);
    expect(debug).toContainEqual(expect.stringMatching(/fence before any assignment \(too early\)/));
    channel.deliver(assign());
    await link.assignment();
    channel.deliver({ v: 1, type: 'fence', reason: 'x'.repeat(513) });
    channel.deliver({ v: 1, type: 'fence' });
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(/malformed message from CONTROL \(fence: reason:/);
    channel.deliver({ v: 1, type: 'fence', reason: 'lease renewal failed' });
    expect(fences).toEqual(['lease renewal failed']);
    // What the cluster does next: `fenced`, then `confirm` until CONTROL answers.
    void link.sendFenced();
    let answer: boolean | undefined;
    void link.confirm().then((confirmed) => (answer = confirmed));
    expect(channel.sent.slice(-2)).toEqual([
      { v: 1, type: 'fenced', clusterId: 0, epoch: 3 },
      { v: 1, type: 'confirm', clusterId: 0, epoch: 3 },
    ]);
    channel.deliver({ v: 1, type: 'confirm-reply', epoch: 3, confirmed: true });
    await vi.advanceTimersByTimeAsync(0);
    expect(answer).toBe(true);
  });

  it('passes on keepalives once assigned; drops one before the assignment and a malformed one', async () => {
    const keepalives: number[] = [];
    link.on('keepalive', (epoch) => keepalives.push(epoch));
    channel.deliver({ v: 1, type: 'keepalive', epoch: 3 });
    expect(keepalives).toEqual([]);
    channel.deliver(assign());
    await link.assignment();
    channel.deliver({ v: 1, type: 'keepalive', epoch: 3 });
    channel.deliver({ v: 1, type: 'keepalive', epoch: 'three' });
    channel.deliver({ v: 1, type: 'keepalive', epoch: 4 });
    expect(keepalives).toEqual([3, 4]);
    expect(errors).toEqual([expect.stringMatching(/malformed message from CONTROL \(keepalive: expected/)]);
    // Nothing is sent back: a keepalive needs no answer.
    expect(channel.types()).toEqual(['hello']);
  });

  it('passes on shutdown and the loss of the channel; sends nothing once closed', () => {
    const seen: string[] = [];
    link.on('shutdown', (reason) => seen.push(`shutdown: ${reason}`));
    link.on('disconnected', () => seen.push('disconnected'));
    link.on('fence', (reason) => seen.push(`fence: ${reason}`));
    channel.deliver(assign());
    channel.deliver({ v: 1, type: 'shutdown', reason: 'rolling restart' });
    channel.disconnect();
    expect(seen).toEqual(['shutdown: rolling restart', 'disconnected']);
    link.close();
    const count = channel.sent.length;
    void link.sendFenced();
    channel.deliver({ v: 1, type: 'shutdown', reason: 'again' });
    channel.deliver({ v: 1, type: 'fence', reason: 'after close' });
    expect(channel.sent).toHaveLength(count);
    expect(seen).toHaveLength(2);
  });
});

describe('decodeControlMessage', () => {
  it('accepts a fence and names every type it knows when the type is unknown', () => {
    expect(decodeControlMessage({ v: 1, type: 'fence', reason: 'lease renewal failed' })).toEqual({
      ok: true,
      message: { v: 1, type: 'fence', reason: 'lease renewal failed' },
    });
    expect(decodeControlMessage({ v: 1, type: 'reboot' })).toEqual({
      ok: false,
      error: 'type: expected assign, confirm-reply, shutdown, fence or keepalive, got "reboot"',
    });
  });

  it('accepts a keepalive; describes a malformed one', () => {
    expect(decodeControlMessage({ v: 1, type: 'keepalive', epoch: 4 })).toEqual({
      ok: true,
      message: { v: 1, type: 'keepalive', epoch: 4 },
    });
    for (const bad of [
      { v: 1, type: 'keepalive' },
      { v: 1, type: 'keepalive', epoch: -1 },
    ])
      expect(decodeControlMessage(bad)).toEqual({
        ok: false,
        error: 'keepalive: expected { v: 1, type: "keepalive", epoch: a non-negative integer }',
      });
  });

  it('validates sourceAddress (an IP literal); a changed one waits for the next start', () => {
    expect(decodeControlMessage(assign({ sourceAddress: '10.213.1.5' })).ok).toBe(true);
    expect(decodeControlMessage(assign({ sourceAddress: '2001:db8::5' })).ok).toBe(true);
    const bad = decodeControlMessage(assign({ sourceAddress: 'eth0' }));
    expect(!bad.ok && bad.error).toBe('assign: sourceAddress: expected an IPv4 or IPv6 address literal');
    expect(
      describeAssignmentChange(
        assign({ sourceAddress: '10.213.1.5' }),
        assign({ epoch: 4, sourceAddress: '10.213.1.6' }),
      ),
    ).toBeNull();
    expect(describeAssignmentChange(assign(), assign({ epoch: 4 }))).toBeNull();
  });

  it('names the bad field without echoing its value', () => {
    const decoded = decodeControlMessage({ ...assign(), bot: 'not a valid bot secret-ish value' });
    expect(decoded.ok).toBe(false);
    expect(!decoded.ok && decoded.error).toMatch(/^assign: bot:/);
    expect(!decoded.ok && decoded.error).not.toContain('secret-ish');
  });
});

describe('StatusReporter', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('turns a burst of changes into one report and reports periodically', async () => {
    let sent = 0;
    const reporter = new StatusReporter({ send: () => sent++, coalesceMs: 250, intervalMs: 5000 });
    reporter.changed(); // before start: nothing to report yet
    reporter.start();
    expect(sent).toBe(1);
    for (let i = 0; i < 10; i++) reporter.changed();
    await vi.advanceTimersByTimeAsync(249);
    expect(sent).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toBe(2);
    await vi.advanceTimersByTimeAsync(1000);
    reporter.changed(); // long after the last report: sent at once
    await vi.advanceTimersByTimeAsync(0);
    expect(sent).toBe(3);
    await vi.advanceTimersByTimeAsync(5000);
    expect(sent).toBe(4);
    reporter.stop();
    reporter.changed();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sent).toBe(4);
  });
});

describe('RateMeter', () => {
  it('measures a counter per second between reads', () => {
    const meter = new RateMeter();
    expect(meter.rate('a', 100, 0)).toBe(0);
    expect(meter.rate('a', 150, 100)).toBe(0); // too soon: last value
    expect(meter.rate('a', 300, 1000)).toBe(200);
    expect(meter.rate('a', 10, 2000)).toBe(0); // a reset counter is not a negative rate
  });
});

describe('redact', () => {
  it('removes registered secrets from text', () => {
    registerSecret('s3cr3t-token-value');
    registerSecret('abc'); // too short to be a real secret, and it would match ordinary words
    expect(redact('Bot s3cr3t-token-value failed; abc')).toBe('Bot [redacted] failed; abc');
  });
});
