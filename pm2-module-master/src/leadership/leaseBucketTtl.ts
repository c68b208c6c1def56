import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { leaseBucket } from 'discluster-protocol';
import { setBucketTtl } from 'discluster-runtime';
import { BUCKET_REQUEST_TIMEOUT_MS, openLeaseBucket, type LeaseBucketOptions } from '../kvBuckets.js';
import type { Logger } from '../logger.js';

/** A failed step is tried again after this long (or the lease time, if shorter). */
const RETRY_MS = 5_000;

/**
 * The next TTL on the way from `currentMs` to `targetMs`: a longer one at once, a shorter one at
 * most a quarter lower. A CONTROL that has not seen the change yet (cut off, or between two reads)
 * fences at half the old TTL after its last renewal; a step to 3/4 of it leaves those leases a
 * quarter of the new TTL beyond that fence.
 */
export function nextLeaseTtl(currentMs: number, targetMs: number): number {
  if (currentMs <= 0 || targetMs >= currentMs) return targetMs;
  return Math.max(targetMs, Math.ceil((currentMs * 3) / 4));
}

/**
 * MASTER owns the shard lease bucket's TTL (`lease_ms`); CONTROLs renew their leases in it and
 * derive their renewal and fence times from the TTL they last read. Setting a TTL takes effect on
 * every entry at once (it lives by the new TTL from its last write), so a shorter `lease_ms` is
 * reached in steps ({@link nextLeaseTtl}), each one lease time (the old TTL) after the last: by
 * then every holder either read the new TTL or fenced by the old one (issue 13 d). A longer one is
 * set at once: leases then outlive what their holders count on, which only delays a takeover.
 */
export class LeaseBucketTtl {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly name: string,
    private readonly kv: KV,
    private readonly targetMs: number,
    private readonly logger: Logger,
  ) {}

  /**
   * Opens (creating with `lease_ms`, `options.ttlMs`) the lease bucket of `options.bot` and takes the
   * first step to `options.ttlMs`.
   */
  public static async start(options: LeaseBucketOptions): Promise<LeaseBucketTtl> {
    const name = leaseBucket(options.bot);
    const opened = await openLeaseBucket(options, name, 'Discluster shard ownership leases');
    const ttl = new LeaseBucketTtl(options.nc, name, opened.kv, options.ttlMs, options.logger);
    await ttl.step(opened.ttlMs);
    return ttl;
  }

  /** Stops stepping (the term ended: the next leader takes it on from where it is). */
  public stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async step(currentMs: number): Promise<void> {
    if (this.stopped || currentMs === this.targetMs) return;
    const next = nextLeaseTtl(currentMs, this.targetMs);
    await setBucketTtl(this.nc, this.name, next, BUCKET_REQUEST_TIMEOUT_MS);
    this.logger.warn(
      { bucket: this.name, fromMs: currentMs, toMs: next, leaseMs: this.targetMs },
      next === this.targetMs
        ? 'shard lease bucket TTL set to lease_ms'
        : 'lowering the shard lease bucket TTL towards lease_ms in steps, one lease apart, so no lease expires before its holder fences',
    );
    if (next !== this.targetMs) this.later(currentMs);
  }

  private later(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.again(ms), ms);
  }

  /** The next step, from the TTL the bucket has now. */
  private async again(lastMs: number): Promise<void> {
    try {
      await this.step((await this.kv.status()).ttl);
    } catch (error) {
      this.logger.warn(
        { err: String(error), bucket: this.name },
        'could not change the lease bucket TTL; retrying',
      );
      this.later(Math.min(RETRY_MS, lastMs));
    }
  }
}
