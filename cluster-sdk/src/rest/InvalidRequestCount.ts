import type { KV } from '@nats-io/kv';
import { restInvalidKey } from 'discluster-protocol/kv';
import { RestInvalidCountRecordSchema } from 'discluster-protocol/restRecords';
import { decodeRecord, encodeRecord } from 'discluster-protocol/schemas';
import { isCasConflict } from 'discluster-runtime';

/** Discord's (Cloudflare's) counting period for invalid requests. */
export const INVALID_WINDOW_MS = 600_000;
const MAX_ADD_ATTEMPTS = 16;

/**
 * The fleet's invalid requests (401, 403, 429) in KV, one counter per 10-minute window. The count
 * the policy sees is this window's plus the previous one's: never less than any rolling 10 minutes.
 * Read at most once per `refreshMs`; this process's own additions show at once.
 */
export class InvalidRequestCount {
  private cached = { count: 0, readAt: Number.NEGATIVE_INFINITY };
  /** Added by this process while NATS could not be reached, counted on top of the last fleet count. */
  private offline = 0;

  public constructor(
    private readonly kv: KV,
    private readonly refreshMs: number,
  ) {}

  /** The fleet's invalid requests in the last 10 to 20 minutes. */
  public async fleetCount(): Promise<number> {
    if (performance.now() - this.cached.readAt < this.refreshMs) return this.cached.count + this.offline;
    const now = Date.now();
    const window = Math.floor(now / INVALID_WINDOW_MS);
    const [current, previous] = await Promise.all([this.read(window), this.read(window - 1)]);
    this.cached = { count: current.count + previous.count, readAt: performance.now() };
    this.offline = 0;
    return this.cached.count;
  }

  /** The count as last known, without NATS (for when it cannot be reached). */
  public lastKnown(): number {
    return this.cached.count + this.offline;
  }

  /** Counts one invalid answer fleet-wide; without NATS it is kept locally and the error rethrown. */
  public async add(): Promise<void> {
    const window = Math.floor(Date.now() / INVALID_WINDOW_MS);
    const key = restInvalidKey(window);
    try {
      for (let attempt = 1; ; attempt++) {
        const stored = await this.read(window);
        const value = encodeRecord({ v: 1, count: stored.count + 1 });
        try {
          if (stored.revision === 0) await this.kv.create(key, value);
          else await this.kv.update(key, value, stored.revision);
          this.cached = { count: this.cached.count + 1, readAt: this.cached.readAt };
          return;
        } catch (error) {
          if (!isCasConflict(error) || attempt >= MAX_ADD_ATTEMPTS) throw error;
        }
      }
    } catch (error) {
      this.offline++;
      throw error;
    }
  }

  private async read(window: number): Promise<{ count: number; revision: number }> {
    if (window < 0) return { count: 0, revision: 0 };
    const entry = await this.kv.get(restInvalidKey(window));
    if (!entry || entry.operation !== 'PUT') return { count: 0, revision: 0 };
    const decoded = decodeRecord(RestInvalidCountRecordSchema, entry.value);
    return { count: decoded.ok ? decoded.value.count : 0, revision: entry.revision };
  }
}
