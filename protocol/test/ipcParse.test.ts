import { describe, expect, it } from 'vitest';
import {
  IpcEnvelopeSchema,
  IpcReplySchema,
  MAX_IPC_NAME_LENGTH,
  parseIpcEnvelope,
  parseIpcReply,
} from '../src';

/** A small deterministic PRNG so the property runs are reproducible. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const EMOJI = '\u{1F600}';
const LONE_HIGH = '\ud83d';
const LONE_LOW = '\ude00';

/** Strings around every length boundary the schemas have (0, 1, 128, 4096), in units and code points. */
function stringOf(random: () => number): string {
  const lengths = [
    0, 1, 2, 63, 64, 65, 127, 128, 129, 130, 255, 256, 257, 2048, 4095, 4096, 4097, 8192, 8193,
  ];
  const length = lengths[Math.floor(random() * lengths.length)]!;
  const pieces = ['a', EMOJI, LONE_HIGH, LONE_LOW, 'é', ' '];
  const mix = Math.floor(random() * 4);
  let text = '';
  while (text.length < length) {
    if (mix === 0) text += 'a';
    else if (mix === 1) text += EMOJI;
    else text += pieces[Math.floor(random() * pieces.length)]!;
  }
  return random() < 0.5 ? text : text.slice(0, length);
}

function valueOf(random: () => number, depth = 0): unknown {
  const kinds = [
    () => null,
    () => true,
    () => 0,
    () => -0,
    () => 1,
    () => -1,
    () => 1.5,
    () => Number.MAX_SAFE_INTEGER,
    () => Number.MAX_SAFE_INTEGER + 1,
    () => 1e300,
    () => stringOf(random),
    () => (depth > 2 ? [] : [valueOf(random, depth + 1)]),
    () => (depth > 2 ? {} : { x: valueOf(random, depth + 1) }),
  ];
  return kinds[Math.floor(random() * kinds.length)]!();
}

/** An object that is often almost valid: each key is right, wrong, or missing. */
function candidate(random: () => number, keys: Record<string, () => unknown>): unknown {
  if (random() < 0.05) return valueOf(random);
  const out: Record<string, unknown> = {};
  for (const [key, good] of Object.entries(keys)) {
    const roll = random();
    if (roll < 0.7) out[key] = good();
    else if (roll < 0.9) out[key] = valueOf(random);
    // else: missing
  }
  if (random() < 0.1) out['extra'] = valueOf(random);
  if (random() < 0.05) return [out];
  // What arrives is always JSON.parse output.
  return JSON.parse(JSON.stringify(out)) as unknown;
}

const same = (fast: unknown, zod: { success: boolean; data?: unknown }): void => {
  if (zod.success) expect(fast).toStrictEqual(zod.data);
  else expect(fast).toBeNull();
};

describe('precompiled IPC checks', () => {
  it('accept and return exactly what IpcEnvelopeSchema does, over generated values', () => {
    const random = prng(18);
    let accepted = 0;
    for (let i = 0; i < 5_000; i++) {
      const value = candidate(random, {
        v: () => 1,
        name: () => stringOf(random),
        from: () => [0, 1, 7, 2 ** 31, Number.MAX_SAFE_INTEGER][Math.floor(random() * 5)],
        data: () => valueOf(random),
      });
      const zod = IpcEnvelopeSchema.safeParse(value);
      if (zod.success) accepted++;
      same(parseIpcEnvelope(value), zod);
    }
    // Both outcomes are well covered.
    expect(accepted).toBeGreaterThan(500);
    expect(accepted).toBeLessThan(4_500);
  });

  it('accept and return exactly what IpcReplySchema does, over generated values', () => {
    const random = prng(81);
    let accepted = 0;
    for (let i = 0; i < 5_000; i++) {
      const ok = random() < 0.5;
      const value = candidate(
        random,
        ok
          ? { v: () => 1, ok: () => true, value: () => valueOf(random) }
          : {
              v: () => 1,
              ok: () => false,
              error: () =>
                candidate(random, { code: () => stringOf(random), message: () => stringOf(random) }),
            },
      );
      const zod = IpcReplySchema.safeParse(value);
      if (zod.success) accepted++;
      same(parseIpcReply(value), zod);
    }
    expect(accepted).toBeGreaterThan(500);
    expect(accepted).toBeLessThan(4_500);
  });

  it('agree with the schemas on the edges', () => {
    const envelopes: unknown[] = [
      { v: 1, name: 'a', from: 0 },
      { v: 1, name: 'a', from: 0, data: undefined },
      { v: 1, name: 'a', from: -0, data: 1 },
      { v: 1, name: 'a', from: -1, data: 1 },
      { v: 1, name: 'a', from: 2 ** 53, data: 1 },
      { v: 1, name: 'a'.repeat(MAX_IPC_NAME_LENGTH), from: 0, data: 1 },
      { v: 1, name: 'a'.repeat(MAX_IPC_NAME_LENGTH + 1), from: 0, data: 1 },
      { v: 1, name: EMOJI.repeat(MAX_IPC_NAME_LENGTH), from: 0, data: 1 },
      { v: 1, name: EMOJI.repeat(MAX_IPC_NAME_LENGTH + 1), from: 0, data: 1 },
      { v: 1, name: LONE_HIGH.repeat(MAX_IPC_NAME_LENGTH + 1), from: 0, data: 1 },
      { v: '1', name: 'a', from: 0, data: 1 },
      JSON.parse('{"v":1,"name":"a","from":0,"__proto__":{"data":1}}'),
      Object.assign([], { v: 1, name: 'a', from: 0, data: 1 }),
      null,
      'x',
    ];
    for (const value of envelopes) same(parseIpcEnvelope(value), IpcEnvelopeSchema.safeParse(value));
    const replies: unknown[] = [
      { v: 1, ok: true },
      { v: 1, ok: true, value: undefined },
      { v: 1, ok: true, value: null, error: 5 },
      { v: 1, ok: false, error: { code: 'x', message: '' }, value: 3 },
      { v: 1, ok: false, error: { code: '', message: '' } },
      { v: 1, ok: false, error: { code: 'x', message: EMOJI.repeat(4096) } },
      { v: 1, ok: false, error: { code: 'x', message: EMOJI.repeat(4097) } },
      { v: 1, ok: false, error: [] },
      { v: 1, ok: 'true', value: 1 },
      { v: 2, ok: true, value: 1 },
    ];
    for (const value of replies) same(parseIpcReply(value), IpcReplySchema.safeParse(value));
  });
});
