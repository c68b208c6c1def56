import type { KV } from '@nats-io/kv';
import { restTokenRejectedKey } from 'discluster-protocol/kv';
import { RestTokenRejectedRecordSchema } from 'discluster-protocol/restRecords';
import { decodeRecord, encodeRecord } from 'discluster-protocol/schemas';
import { isCasConflict } from 'discluster-runtime';

/**
 * Whether Discord rejected the bot token (401), fleet-wide: the first process to see a 401 writes
 * one key (create: exactly one writer wins) and every process watches it, so REST stops everywhere
 * after one 401 instead of each process collecting its own.
 */
export class TokenRejection {
  private rejectedValue = false;
  private watcher: { stop(): void } | null = null;

  public constructor(
    private readonly kv: KV,
    /** A hash of this process's token (see RestTokenRejectedRecord.tokenTag). */
    private readonly tokenTag: string,
    private readonly onRejected: () => void,
  ) {}

  public get rejected(): boolean {
    return this.rejectedValue;
  }

  public async start(): Promise<void> {
    const watcher = await this.kv.watch({ key: restTokenRejectedKey() });
    this.watcher = watcher;
    void (async () => {
      try {
        for await (const entry of watcher) {
          if (entry.operation !== 'PUT') continue;
          const decoded = decodeRecord(RestTokenRejectedRecordSchema, entry.value);
          if (decoded.ok && decoded.value.tokenTag === this.tokenTag) this.markRejected();
        }
      } catch {
        // The watch ends with the connection; a 401 seen locally still stops this process.
      }
    })();
  }

  /** Records a 401. True for the one process of the fleet that recorded it first. */
  public async reject(instanceId: string): Promise<boolean> {
    this.markRejected();
    try {
      const record = { v: 1, at: Date.now(), instanceId, tokenTag: this.tokenTag };
      for (;;) {
        const entry = await this.kv.get(restTokenRejectedKey());
        const stored =
          entry?.operation === 'PUT' ? decodeRecord(RestTokenRejectedRecordSchema, entry.value) : null;
        if (stored?.ok && stored.value.tokenTag === this.tokenTag) return false;
        try {
          // Over an older token's record (or none): compare-and-set, so one process wins.
          if (entry) await this.kv.update(restTokenRejectedKey(), encodeRecord(record), entry.revision);
          else await this.kv.create(restTokenRejectedKey(), encodeRecord(record));
          return true;
        } catch (error) {
          if (!isCasConflict(error)) throw error;
        }
      }
    } catch {
      // Without NATS nobody else can be told: this process speaks for itself.
      return true;
    }
  }

  public close(): void {
    this.watcher?.stop();
  }

  private markRejected(): void {
    if (this.rejectedValue) return;
    this.rejectedValue = true;
    this.onRejected();
  }
}
