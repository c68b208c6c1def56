import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { leaderBucket } from 'discluster-protocol';
import { setBucketTtl } from 'discluster-runtime';
import { BUCKET_REQUEST_TIMEOUT_MS, openLeaseBucket, type LeaseBucketOptions } from '../kvBuckets.js';

/**
 * The leader lease bucket (`discluster_<bot>_leader`, TTL = `leader_lease_ms`). Changing its TTL
 * changes the life of the key in it at once (an entry lives by the TTL in force, counted from its
 * last write), so only the MASTER holding the key may change it (issue 13 d): a standby with a
 * shorter `leader_lease_ms` would otherwise expire the sitting leader's key before the leader's
 * own renewal and step-down times, and a second leader could be elected while the first commands.
 */
export class LeaderBucket {
  private constructor(
    private readonly nc: NatsConnection,
    public readonly name: string,
    public readonly kv: KV,
    /** The TTL the bucket had when opened (ms; 0: none). */
    public readonly openedTtlMs: number,
  ) {}

  /**
   * Opens (creating with `options.ttlMs` if missing) the bucket of `options.bot`, leaving an existing
   * bucket's TTL as it is: a mismatch is logged, and {@link Leadership} sets `ttlMs` once it leads.
   */
  public static async open(options: LeaseBucketOptions): Promise<LeaderBucket> {
    const { nc, bot, ttlMs: wantedMs, logger } = options;
    const name = leaderBucket(bot);
    const opened = await openLeaseBucket(options, name, 'Discluster MASTER leadership lease');
    if (opened.ttlMs !== wantedMs)
      logger.warn(
        { bucket: name, leaderLeaseMs: wantedMs, bucketTtlMs: opened.ttlMs },
        'leader_lease_ms differs from the leader bucket TTL, which the leading MASTER set: standing by with the ' +
          "bucket's TTL (changing it now would cut the sitting leader's lease); this MASTER sets its own once it leads. " +
          'Give every MASTER of one bot the same leader_lease_ms',
      );
    return new LeaderBucket(nc, name, opened.kv, opened.ttlMs);
  }

  /** The TTL the bucket has now (ms; 0: none). */
  public async ttlMs(): Promise<number> {
    return (await this.kv.status()).ttl;
  }

  /** Sets the TTL; call only while holding the leader key. */
  public async setTtlMs(ttlMs: number): Promise<void> {
    await setBucketTtl(this.nc, this.name, ttlMs, BUCKET_REQUEST_TIMEOUT_MS);
  }
}
