import * as zlib from 'node:zlib';
import { Deflate, constants as pakoConstants } from 'pako';

export type TransportCompression = 'zlib-stream' | 'zstd-stream';

/**
 * Turns outgoing gateway messages into WebSocket frames for one connection. Transport compression
 * keeps one context per connection for its whole life, exactly as Discord does, so a client that
 * resets or shares its inflate context fails here as it would in production.
 */
export interface FrameEncoder {
  /** Whether a message may be split across WebSocket messages (zlib-stream; zstd-stream is one message each). */
  readonly splittable: boolean;
  /** Encodes one gateway message; `deliver` receives its frame(s) in send order. */
  encode(message: string, deliver: (frame: Buffer | string) => void): void;
  /** Resolves once every message handed to `encode` has been delivered. */
  idle(): Promise<void>;
  close(): void;
}

class PlainEncoder implements FrameEncoder {
  public readonly splittable = false;

  public encode(message: string, deliver: (frame: string) => void): void {
    deliver(message);
  }

  public idle(): Promise<void> {
    return Promise.resolve();
  }

  public close(): void {}
}

/** zlib-stream: one deflate context, Z_SYNC_FLUSH after every message (each ends in 00 00 ff ff). */
class ZlibStreamEncoder implements FrameEncoder {
  public readonly splittable = true;
  // pako compresses synchronously, which keeps frames in order without a queue; Node's zlib
  // stream API offers sync flushing only through a call that closes the context.
  // Level 1 and small output chunks: each message is its own flushed block, so a higher level buys
  // little size and about halves the messages one core can compress across 1,024 contexts; pako
  // also allocates a fresh `chunkSize` output buffer after every flush (16 KiB by default).
  // Clients cannot tell: any zlib inflater reads any level.
  private readonly deflate = new Deflate({ level: 1, chunkSize: 1024 });
  private chunks: Uint8Array[] = [];

  public constructor() {
    this.deflate.onData = (chunk) => this.chunks.push(chunk as Uint8Array);
  }

  public encode(message: string, deliver: (frame: Buffer) => void): void {
    this.deflate.push(message, pakoConstants.Z_SYNC_FLUSH);
    const frame = Buffer.concat(this.chunks);
    this.chunks = [];
    deliver(frame);
  }

  public idle(): Promise<void> {
    return Promise.resolve();
  }

  public close(): void {
    this.chunks = [];
  }
}

interface ZstdCapableZlib {
  createZstdCompress?: (options?: { flush?: number }) => zlib.Gzip;
}

/** zstd-stream: one zstd context, flushed (never ended) after each message. Needs Node's built-in zstd. */
class ZstdStreamEncoder implements FrameEncoder {
  public readonly splittable = false;
  private readonly stream: zlib.Gzip;
  private pending = 0;
  private idleWaiters: Array<() => void> = [];

  public constructor(create: NonNullable<ZstdCapableZlib['createZstdCompress']>) {
    const flush = (zlib.constants as unknown as Record<string, number>)['ZSTD_e_flush'] ?? 1;
    this.stream = create({ flush });
    this.stream.on('error', () => this.close());
  }

  public encode(message: string, deliver: (frame: Buffer) => void): void {
    this.pending++;
    // Writes complete in order; reading in the write callback collects exactly this message's output.
    this.stream.write(message, () => {
      const parts: Buffer[] = [];
      for (
        let chunk = this.stream.read() as Buffer | null;
        chunk !== null;
        chunk = this.stream.read() as Buffer | null
      ) {
        parts.push(chunk);
      }
      deliver(Buffer.concat(parts));
      if (--this.pending === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    });
  }

  public idle(): Promise<void> {
    return this.pending === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  public close(): void {
    this.stream.destroy();
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

/** Whether this Node version can serve `compress=zstd-stream`. */
export function zstdAvailable(): boolean {
  return typeof (zlib as ZstdCapableZlib).createZstdCompress === 'function';
}

export function createFrameEncoder(compression: TransportCompression | null): FrameEncoder {
  switch (compression) {
    case null:
      return new PlainEncoder();
    case 'zlib-stream':
      return new ZlibStreamEncoder();
    case 'zstd-stream': {
      const create = (zlib as ZstdCapableZlib).createZstdCompress;
      if (!create)
        throw new Error(`zstd-stream needs a Node.js with built-in zstd (this is ${process.version})`);
      return new ZstdStreamEncoder(create);
    }
  }
}
