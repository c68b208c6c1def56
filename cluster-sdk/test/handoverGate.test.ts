import type { GatewayDispatchPayload } from 'discord-api-types/v10';
import { seededRandom } from 'discluster-testing';
import { describe, expect, it } from 'vitest';
import { HandoverGate } from '../src/handover/HandoverGate';
import { RingBuffer } from '../src/util/RingBuffer';

const message = (id: number): GatewayDispatchPayload =>
  ({
    op: 0,
    t: 'MESSAGE_CREATE',
    s: id,
    d: { id: String(id), content: `m${id}` },
  }) as unknown as GatewayDispatchPayload;

function gates() {
  const delivered: string[] = [];
  const deliver = (packet: GatewayDispatchPayload) => delivered.push(String((packet.d as { id: string }).id));
  const old = new HandoverGate(deliver, { standby: false });
  const next = new HandoverGate(deliver, { standby: true });
  return { delivered, old, next };
}

describe('HandoverGate', () => {
  it('delivers every event exactly once across a handover, whatever the arrival skew between generations', () => {
    const random = seededRandom(3);
    for (let run = 0; run < 300; run++) {
      const { delivered, old, next } = gates();
      const total = 60 + Math.floor(random() * 60);
      // Each event reaches the old and the new generation at its own time (skew up to 8 steps).
      const arrivals: Array<{ at: number; gate: 'old' | 'next'; id: number }> = [];
      for (let id = 0; id < total; id++) {
        arrivals.push({ at: id * 10 + Math.floor(random() * 80), gate: 'old', id });
        arrivals.push({ at: id * 10 + Math.floor(random() * 80), gate: 'next', id });
      }
      // The handover steps at fixed times, MASTER's skew pauses (100) covering the arrival skew.
      const steps: Array<{ at: number; step: () => void }> = [
        { at: 200, step: () => old.record() },
        { at: 300, step: () => next.buffer() },
        { at: 400, step: () => void (keys = old.cutOver()) },
        { at: 450, step: () => next.goLive(keys) },
      ];
      let keys: readonly string[] = [];
      const timeline = [
        ...arrivals.map((arrival) => ({
          at: arrival.at,
          order: 1,
          run: () => (arrival.gate === 'old' ? old : next).offer(message(arrival.id), 0, false),
        })),
        ...steps.map((step) => ({ at: step.at, order: 0, run: step.step })),
      ].sort((a, b) => a.at - b.at || a.order - b.order);
      for (const event of timeline) event.run();
      const counts = new Map<string, number>();
      for (const id of delivered) counts.set(id, (counts.get(id) ?? 0) + 1);
      expect(counts.size, `run ${run}: events lost`).toBe(total);
      expect(
        [...counts.values()].every((count) => count === 1),
        `run ${run}: an event delivered twice`,
      ).toBe(true);
      old.close();
      next.close();
    }
  });

  it('in standby passes only the session setup; after go-live serves everything', () => {
    const { delivered, next } = gates();
    next.offer(message(1), 0, true);
    next.offer(message(2), 0, false);
    expect(delivered).toEqual(['1']);
    next.buffer();
    next.offer(message(3), 0, false);
    expect(next.heldCount).toBe(1);
    expect(next.goLive([])).toEqual({ events: 1, duplicates: 0 });
    next.offer(message(4), 0, false);
    expect(delivered).toEqual(['1', '3', '4']);
    next.close();
  });

  it('counts repeated identical events as a multiset and rolls back on abort', () => {
    const { delivered, old, next } = gates();
    old.record();
    next.buffer();
    old.offer(message(7), 0, false);
    next.offer(message(7), 0, false);
    next.offer(message(7), 0, false);
    // The old generation delivered one copy; the new one holds two: one is new.
    expect(next.goLive(old.cutOver())).toEqual({ events: 1, duplicates: 1 });
    expect(delivered).toEqual(['7', '7']);
    old.abort();
    old.offer(message(8), 0, false);
    expect(delivered).toEqual(['7', '7', '8']);
    old.close();
    next.close();
  });

  it('steps are idempotent', () => {
    const { old, next } = gates();
    old.record();
    old.offer(message(1), 0, false);
    old.record();
    expect(old.cutOver()).toHaveLength(1);
    expect(old.cutOver()).toHaveLength(1);
    expect(old.mode).toBe('cut');
    next.buffer();
    next.offer(message(1), 0, false);
    next.buffer();
    expect(next.heldCount).toBe(1);
    expect(next.goLive([])).toEqual({ events: 1, duplicates: 0 });
    expect(next.goLive([])).toEqual({ events: 0, duplicates: 0 });
    old.close();
    next.close();
  });
});

// Issue 13 (i): both lists are bounded, overflow is reported once per list, and eviction is O(1).
describe('HandoverGate bounds', () => {
  it('keeps the newest recorded keys past maxRecorded, counts the rest and reports it once', () => {
    const overflows: Array<[string, number]> = [];
    const gate = new HandoverGate(() => undefined, {
      standby: false,
      maxRecorded: 100,
      onOverflow: (list, limit) => overflows.push([list, limit]),
    });
    gate.record();
    for (let id = 0; id < 250; id++) gate.offer(message(id), 0, false);
    const keys = gate.cutOver();
    expect(keys).toHaveLength(100);
    const all = new HandoverGate(() => undefined, { standby: false });
    all.record();
    for (let id = 150; id < 250; id++) all.offer(message(id), 0, false);
    expect(keys).toEqual(all.cutOver());
    expect(gate.recordedOverflowed).toBe(150);
    expect(overflows).toEqual([['recorded', 100]]);
  });

  it('holds the newest events past maxHeld (oldest dropped and counted), reported once', () => {
    const delivered: number[] = [];
    const overflows: string[] = [];
    const gate = new HandoverGate((packet) => delivered.push(Number((packet.d as { id: string }).id)), {
      standby: true,
      maxHeld: 1000,
      onOverflow: (list) => overflows.push(list),
    });
    gate.buffer();
    for (let id = 0; id < 200_000; id++) gate.offer(message(id), 0, false);
    expect(gate.heldCount).toBe(1000);
    expect(gate.goLive([])).toEqual({ events: 1000, duplicates: 0 });
    expect(delivered).toEqual(Array.from({ length: 1000 }, (_, i) => 199_000 + i));
    expect(gate.overflowed).toBe(199_000);
    expect(overflows).toEqual(['held']);
  });
});

describe('RingBuffer', () => {
  it('is a FIFO that evicts the oldest item once full', () => {
    const ring = new RingBuffer<number>(3);
    expect([ring.push(1), ring.push(2), ring.push(3)]).toEqual([false, false, false]);
    expect(ring.push(4)).toBe(true);
    expect(ring.toArray()).toEqual([2, 3, 4]);
    expect(ring.length).toBe(3);
    ring.clear();
    expect(ring.toArray()).toEqual([]);
    ring.push(5);
    expect([...ring]).toEqual([5]);
    expect(() => new RingBuffer(0)).toThrow(RangeError);
  });
});
