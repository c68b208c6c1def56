import { describe, expect, it } from 'vitest';
import { ErrorCode, isDisclusterError } from '../src/errors';
import {
  generateHostKeyPair,
  openSealed,
  sealForHost,
  tokenContext,
  type SealedBox,
} from '../src/sealedToken';

const TOKEN = 'MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB';
const context = tokenContext('mybot', 'host-a', 7);

function expectInvalid(open: () => string): void {
  let thrown: unknown;
  try {
    open();
  } catch (error) {
    thrown = error;
  }
  expect(isDisclusterError(thrown, ErrorCode.SealedTokenInvalid)).toBe(true);
  // The error explains itself without echoing key material or the token.
  expect(String((thrown as Error).message)).not.toContain(TOKEN);
}

describe('sealed token', () => {
  it('round-trips for the host it was sealed for', () => {
    const host = generateHostKeyPair();
    expect(openSealed(sealForHost(TOKEN, host.publicKey, context), host, context)).toBe(TOKEN);
  });

  it('uses a fresh ephemeral key and iv per message', () => {
    const host = generateHostKeyPair();
    const a = sealForHost(TOKEN, host.publicKey, context);
    const b = sealForHost(TOKEN, host.publicKey, context);
    expect(a.epk).not.toBe(b.epk);
    expect(a.iv).not.toBe(b.iv);
    expect(a.ct).not.toBe(b.ct);
  });

  it('cannot be opened with another host key', () => {
    const host = generateHostKeyPair();
    const other = generateHostKeyPair();
    const box = sealForHost(TOKEN, host.publicKey, context);
    expectInvalid(() => openSealed(box, other, context));
  });

  it('cannot be opened under another context (host, epoch, bot)', () => {
    const host = generateHostKeyPair();
    const box = sealForHost(TOKEN, host.publicKey, context);
    expectInvalid(() => openSealed(box, host, tokenContext('mybot', 'host-a', 8)));
    expectInvalid(() => openSealed(box, host, tokenContext('mybot', 'host-b', 7)));
  });

  it.each(['ct', 'tag', 'iv', 'epk'] as const)('detects tampering with %s', (field) => {
    const host = generateHostKeyPair();
    const box = sealForHost(TOKEN, host.publicKey, context);
    const value = box[field];
    const flipped = (value[0] === 'A' ? 'B' : 'A') + value.slice(1);
    const tampered: SealedBox = { ...box, [field]: flipped };
    expectInvalid(() => openSealed(tampered, host, context));
  });

  it('rejects a malformed box', () => {
    const host = generateHostKeyPair();
    expectInvalid(() => openSealed({ alg: 'none' } as unknown as SealedBox, host, context));
  });

  it('never carries the token bytes in the sealed JSON', () => {
    const host = generateHostKeyPair();
    const json = JSON.stringify(sealForHost(TOKEN, host.publicKey, context));
    expect(json).not.toContain(TOKEN);
    for (const part of TOKEN.split('.')) expect(json).not.toContain(part);
    expect(json).not.toContain(Buffer.from(TOKEN).toString('base64'));
    expect(json).not.toContain(Buffer.from(TOKEN).toString('base64url'));
    expect(json).not.toContain(Buffer.from(TOKEN).toString('hex'));
  });
});
