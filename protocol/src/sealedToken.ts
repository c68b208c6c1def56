import crypto, { type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { DisclusterError, ErrorCode } from './errors.js';

/**
 * How MASTER hands the bot token to one CONTROL over NATS without any other subscriber being able
 * to read it (promise 4, docs/architecture.md). CONTROL makes an X25519 key pair at boot and announces the public
 * half; MASTER seals the token to it: a fresh ephemeral X25519 key per message, ECDH, HKDF-SHA256
 * into an AES-256-GCM key, and a `context` string (bot, host id, epoch) bound in as associated data
 * so a box captured for one host or plan cannot be replayed as another's. Only `node:crypto`.
 */

const ALG = 'x25519-hkdf-sha256-a256gcm';
const HKDF_INFO = Buffer.from('discluster.v1 sealed token');
const base64url = z.string().regex(/^[A-Za-z0-9_-]+$/, 'must be base64url');

/** An X25519 public key: the 32 raw bytes, base64url (the JWK `x` member). */
export const HostPublicKeySchema = base64url.length(43);

/** A token sealed for one host. Safe to publish: it reveals nothing but the token's length. */
export const SealedBoxSchema = z.object({
  alg: z.literal(ALG),
  /** The sender's ephemeral public key (base64url). */
  epk: HostPublicKeySchema,
  iv: base64url.length(16),
  ct: base64url.min(1).max(8192),
  tag: base64url.length(22),
});
export type SealedBox = z.infer<typeof SealedBoxSchema>;

/** A host's key pair. The private key never leaves the CONTROL process that made it. */
export interface HostKeyPair {
  /** base64url X25519 public key, for the announce. */
  readonly publicKey: string;
  readonly privateKey: KeyObject;
}

/** Makes the per-boot key pair CONTROL announces. */
export function generateHostKeyPair(): HostKeyPair {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('x25519');
  return { publicKey: exportPublic(publicKey), privateKey };
}

function exportPublic(key: KeyObject): string {
  const x = key.export({ format: 'jwk' }).x;
  if (!x) throw new Error('X25519 key has no public part');
  return x;
}

function importPublic(x: string): KeyObject {
  return crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
}

function deriveKey(shared: Buffer, epk: string, recipient: string): Buffer {
  // Salt binds both public keys, so a key is only ever derived for this exact pair.
  const salt = Buffer.concat([Buffer.from(epk, 'base64url'), Buffer.from(recipient, 'base64url')]);
  return Buffer.from(crypto.hkdfSync('sha256', shared, salt, HKDF_INFO, 32));
}

/**
 * Seals `token` for the host whose announced public key is `hostPublicKey`. `context` must be
 * what the receiver will pass to {@link openSealed} (see {@link tokenContext}).
 */
export function sealForHost(token: string, hostPublicKey: string, context: string): SealedBox {
  const recipient = importPublic(HostPublicKeySchema.parse(hostPublicKey));
  const ephemeral = crypto.generateKeyPairSync('x25519');
  const epk = exportPublic(ephemeral.publicKey);
  const key = deriveKey(
    crypto.diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient }),
    epk,
    hostPublicKey,
  );
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context));
  const ct = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
  return {
    alg: ALG,
    epk,
    iv: iv.toString('base64url'),
    ct: ct.toString('base64url'),
    tag: cipher.getAuthTag().toString('base64url'),
  };
}

/**
 * Opens a box sealed for `keys`. Throws a `SealedTokenInvalid` {@link DisclusterError} if the box
 * was sealed for another key or context, or was altered; the message never contains key material.
 */
export function openSealed(box: SealedBox, keys: HostKeyPair, context: string): string {
  try {
    const parsed = SealedBoxSchema.parse(box);
    const key = deriveKey(
      crypto.diffieHellman({ privateKey: keys.privateKey, publicKey: importPublic(parsed.epk) }),
      parsed.epk,
      keys.publicKey,
    );
    const decipher = crypto.createDecipheriv('aes-256-gcm', key, Buffer.from(parsed.iv, 'base64url'));
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(Buffer.from(parsed.tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(parsed.ct, 'base64url')), decipher.final()]).toString(
      'utf8',
    );
  } catch (error) {
    throw new DisclusterError(
      ErrorCode.SealedTokenInvalid,
      'the sealed bot token could not be opened (wrong host key or context, or altered)',
      { cause: error },
    );
  }
}

/** The associated data both sides bind into a box: which bot, which host, which plan. */
export function tokenContext(bot: string, hostId: string, epoch: number): string {
  return `discluster.v1/${bot}/${hostId}/${epoch}`;
}
