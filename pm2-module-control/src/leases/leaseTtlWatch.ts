import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../logger.js';
import { describeError } from 'discluster-runtime';
import type { LeaseRecords } from './leaseRecords.js';
import { requestTimeout } from './leaseTimes.js';

export interface LeaseTtlWatchOptions {
  readonly nc: NatsConnection;
  readonly bucket: string;
  readonly records: LeaseRecords;
  readonly logger: Logger;
  /** The TTL in force (what a read is compared with). */
  readonly ttlMs: () => number;
  /** The bucket has another (positive) TTL now. */
  readonly onChange: (ttlMs: number) => void;
}

/**
 * Reads the lease bucket's TTL again and again: MASTER sets another one when its `lease_ms`
 * changes. One small stream-info request per period (the fence check period: at most a second),
 * against a renewal per shard every TTL/6. It polls because no event for a changed stream config
 * is sure to be allowed by CONTROL's NATS permissions.
 */
export class LeaseTtlWatch {
  private timer: NodeJS.Timeout | undefined;
  private reading = false;
  private noTtlLogged = false;
  private closed = false;

  public constructor(private readonly options: LeaseTtlWatchOptions) {}

  /** (Re)starts reading every `periodMs`. */
  public start(periodMs: number): void {
    clearInterval(this.timer);
    if (!this.closed) this.timer = setInterval(() => void this.read(), periodMs);
  }

  public close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  /** Binds the records anew with request timeouts that fit `ttlMs` (the binding fixes them for reads and creates). */
  public async rebind(ttlMs: number): Promise<void> {
    const { bucket, logger, nc, records } = this.options;
    try {
      const kv = await new Kvm(jetstream(nc, { timeout: requestTimeout(ttlMs) })).open(bucket);
      if (!this.closed && this.options.ttlMs() === ttlMs) records.rebind(kv);
    } catch (error) {
      // The old binding still works, with its (longer) request timeouts.
      logger.warn({ err: describeError(error) }, 'could not rebind the lease bucket');
    }
  }

  private async read(): Promise<void> {
    if (this.reading || this.closed) return;
    this.reading = true;
    try {
      const ttlMs = await this.options.records.ttlMs();
      if (this.closed || ttlMs === this.options.ttlMs()) return;
      if (ttlMs > 0) {
        this.noTtlLogged = false;
        this.options.onChange(ttlMs);
        return;
      }
      // Leases without expiry: fencing by the time in force is still safe; MASTER owns the config.
      if (!this.noTtlLogged)
        this.options.logger.error(
          { bucket: this.options.bucket, ttlMs: this.options.ttlMs() },
          'the lease bucket lost its TTL; keeping the lease time in force',
        );
      this.noTtlLogged = true;
    } catch {
      // NATS does not answer: renewals fail as well, and the fence check covers that.
    } finally {
      this.reading = false;
    }
  }
}
