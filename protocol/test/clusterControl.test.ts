import { describe, expect, it } from 'vitest';
import { ControlToClusterSchema } from '../src';
import { KeepaliveMessageSchema } from '../src/clusterControl';

describe('keepalive (CONTROL → cluster)', () => {
  it('is accepted as a CONTROL → cluster message', () => {
    const keepalive = { v: 1, type: 'keepalive', epoch: 7 };
    expect(KeepaliveMessageSchema.parse(keepalive)).toEqual(keepalive);
    expect(ControlToClusterSchema.parse(keepalive)).toEqual(keepalive);
  });

  it('stays tiny: nothing but v, type and epoch survives parsing', () => {
    const parsed = ControlToClusterSchema.parse({
      v: 1,
      type: 'keepalive',
      epoch: 0,
      extra: 'x'.repeat(100),
    });
    expect(parsed).toEqual({ v: 1, type: 'keepalive', epoch: 0 });
    expect(JSON.stringify(parsed).length).toBeLessThan(48);
  });

  it.each([
    ['without an epoch', { v: 1, type: 'keepalive' }],
    ['with a negative epoch', { v: 1, type: 'keepalive', epoch: -1 }],
    ['with a fractional epoch', { v: 1, type: 'keepalive', epoch: 1.5 }],
    ['of another version', { v: 2, type: 'keepalive', epoch: 1 }],
  ])('is rejected %s', (_name, value) => {
    expect(ControlToClusterSchema.safeParse(value).success).toBe(false);
  });
});
