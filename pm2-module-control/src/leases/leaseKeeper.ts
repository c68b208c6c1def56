import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { DisclusterError, ErrorCode, leaseBucket } from 'discluster-protocol';
import type { Logger } from '../logger.js';
import { describeError, openBucket } from 'discluster-runtime';
import { HeldLeases } from './heldLeases.js';
import { LeaseClaims } from './leaseClaims.js';
import { LeaseFences } from './leaseFences.js';
import { LeaseRecords } from './leaseRecords.js';
import { LeaseRenewals } from './leaseRenewals.js';
import { leaseTimes, requestTimeout, type LeaseTimes } from './leaseTimes.js';
import { LeaseTtlWatch } from './leaseTtlWatch.js';
import type {
  AcquireOptions,
  AcquireOutcome,
  ConfirmOutcome,
  LeaseClaim,
  LeaseHolder,
  ShardLeases,
} from './shardLeases.js';

/**
 * Shard ownership leases (promise 2, docs/architecture.md). One key per shard in the lease bucket, whose TTL is
 * the lease time; the owner renews every TTL/8 by compare-and-set (a failed round again after
 * TTL/20; leaseTimes.ts). A host that cannot renew for TTL/2 tells its clusters to fence (close
 * their shards) before the lease can expire and another host start them. As soon as every lease of a
 * cluster was renewed in a round it reports that cluster (not waiting for the others' leases), which
 * CONTROL passes on as `keepalive`: a cluster that stops hearing it (CONTROL down or hung, so nobody
 * renews and nobody can tell it to fence) fences itself. A key held by another host is waited out,
 * never taken.
 *
 * A lease is dated by the send time of the last write NATS acknowledged: NATS counts the lease time
 * from when it applied that write, which cannot be earlier. Its own event-loop stalls (a CPU-starved
 * machine) the keeper survives without fencing for nothing (leaseStall.ts): a request deadline or a
 * fence check that fires late first reads the replies already received, and a late reply still
 * counts, by its send time.
 *
 * The lease time is the bucket's TTL as the server has it now: MASTER changes it when its
 * `lease_ms` changes, and an entry then lives by the new TTL, counted from its last write. So the
 * keeper reads the TTL again every fence check (at most every second) and follows a change at once
 * (leaseTtlWatch.ts, then {@link LeaseKeeper.follow}); it never fences by a longer time than the leases live.
 *
 * The jobs are separate parts over one shared state (heldLeases.ts: the leases held, the lease time
 * in force): taking, confirming and releasing leases (leaseClaims.ts), the renewal rounds
 * (leaseRenewals.ts) and the fence check (leaseFences.ts). This class builds them, runs their timers
 * together and follows a change of the lease time.
 */

/** Bucket TTL used when CONTROL has to create the bucket (MASTER normally does, with its `lease_ms`). */
export const DEFAULT_LEASE_TTL_MS = 20_000;

export interface LeaseKeeperOptions {
  readonly bot: string;
  readonly hostId: string;
  readonly instanceId: string;
  readonly logger: Logger;
  /** Renewals failed for half the lease time: the cluster must close its shards now. */
  readonly onFence: (clusterId: number) => void;
  /** Another host holds one of the cluster's shards now: the cluster must stop for good. */
  readonly onLost: (clusterId: number, holder: LeaseHolder) => void;
  /**
   * A cluster every one of whose leases is held and was just renewed in a round (it gets a
   * `keepalive`): called once per cluster as soon as its own renewals are done, by requests sent
   * recently enough to vouch for them (leaseStall.ts keepaliveVerdict).
   */
  readonly onRenewed?: (clusterIds: readonly number[], renewedAt: number) => void;
  /**
   * The lease time changed (MASTER set another bucket TTL): clusters must be told the new fence
   * time, `times.fenceAfterMs`.
   */
  readonly onTimesChanged?: (times: LeaseTimes) => void;
  /** Monotonic milliseconds (tests may replace it). */
  readonly clock?: () => number;
  /** JetStream replicas of the lease bucket if CONTROL creates it (the `kv_replicas` setting); default 1. */
  readonly replicas?: number;
}

/** Opens (or creates) the lease bucket of `bot` and keeps this host's leases. */
export class LeaseKeeper implements ShardLeases {
  private readonly state: HeldLeases;
  private readonly records: LeaseRecords;
  private readonly claims: LeaseClaims;
  private readonly renewals: LeaseRenewals;
  private readonly fences: LeaseFences;
  private readonly ttlWatch: LeaseTtlWatch;

  private constructor(
    nc: NatsConnection,
    private readonly bucket: string,
    kv: KV,
    ttlMs: number,
    private readonly options: LeaseKeeperOptions,
  ) {
    this.state = new HeldLeases(ttlMs, options.clock ?? (() => performance.now()), options.logger);
    this.records = new LeaseRecords(kv, {
      hostId: options.hostId,
      instanceId: options.instanceId,
      logger: options.logger,
      requestTimeoutMs: () => this.state.times.requestTimeoutMs,
    });
    this.renewals = new LeaseRenewals(this.state, this.records, options);
    this.fences = new LeaseFences(this.state, this.renewals, options);
    this.claims = new LeaseClaims(this.state, this.records, {
      onHeld: () => this.startTimers(),
      roundInFlight: () => this.renewals.inFlight,
      onLost: options.onLost,
    });
    this.ttlWatch = new LeaseTtlWatch({
      nc,
      bucket,
      records: this.records,
      logger: options.logger,
      ttlMs: () => this.state.times.ttlMs,
      onChange: (ttlMs) => this.follow(ttlMs),
    });
    this.ttlWatch.start(this.state.times.checkEveryMs);
  }

  /** The lease time in force: the bucket's TTL as last read. */
  public get ttlMs(): number {
    return this.state.times.ttlMs;
  }

  /** What clusters are told to fence after, without NATS: half the lease time. */
  public get fenceAfterMs(): number {
    return this.state.times.fenceAfterMs;
  }

  /** Every period derived from the lease time in force. */
  public get times(): LeaseTimes {
    return this.state.times;
  }

  /** Binds to the lease bucket, creating it (TTL {@link DEFAULT_LEASE_TTL_MS}) if it is missing. */
  public static async open(nc: NatsConnection, options: LeaseKeeperOptions): Promise<LeaseKeeper> {
    const name = leaseBucket(options.bot);
    let bucket;
    try {
      bucket = await openBucket(nc, {
        name,
        ttlMs: DEFAULT_LEASE_TTL_MS,
        description: 'discluster shard leases (promise 2)',
        timeoutMs: requestTimeout(DEFAULT_LEASE_TTL_MS),
        replicas: options.replicas ?? 1,
      });
    } catch (error) {
      // Already says which bucket and setting (kv_replicas) is wrong.
      if (error instanceof DisclusterError) throw error;
      throw new DisclusterError(
        ErrorCode.InvalidOption,
        `could not open the shard lease bucket ${name} (NATS JetStream must be enabled): ${describeError(error)}`,
        { cause: error },
      );
    }
    if (bucket.ttlMs <= 0)
      throw new DisclusterError(
        ErrorCode.BucketConfigMismatch,
        `KV bucket ${name} has no TTL, so a dead host's leases would never expire; delete it and let MASTER create it`,
      );
    // Bound again with request timeouts that fit this bucket's TTL (see requestTimeout).
    const kv = await new Kvm(jetstream(nc, { timeout: requestTimeout(bucket.ttlMs) })).open(name);
    options.logger.info({ bucket: name, ttlMs: bucket.ttlMs }, 'shard lease bucket open');
    return new LeaseKeeper(nc, name, kv, bucket.ttlMs, options);
  }

  public acquire(claim: LeaseClaim, options: AcquireOptions): Promise<AcquireOutcome> {
    return this.claims.acquire(claim, options);
  }

  public confirm(clusterId: number): Promise<ConfirmOutcome> {
    return this.claims.confirm(clusterId);
  }

  public release(clusterId: number): Promise<void> {
    return this.claims.release(clusterId);
  }

  public sweep(keep: readonly LeaseClaim[]): Promise<void> {
    return this.claims.sweep(keep);
  }

  /** Stops renewing; leases stay (CONTROL restarts while its clusters keep running). */
  public close(): void {
    this.state.closed = true;
    this.renewals.close();
    this.fences.stop();
    this.ttlWatch.close();
    this.state.clusters.clear();
  }

  /** Renewals and the fence check run from the first cluster held on, both by the lease time in force. */
  private startTimers(): void {
    if (this.renewals.running || this.state.closed) return;
    this.renewals.start();
    this.fences.start();
  }

  /**
   * Adopts another lease time at once. A shorter one may have cut the life of leases renewed under
   * the old one (an entry lives by the new TTL from its last write): those renewed longer ago than
   * the new fence time are fenced now, and every lease is renewed now rather than a period later.
   */
  private follow(ttlMs: number): void {
    const before = this.state.times;
    this.state.times = leaseTimes(ttlMs);
    this.options.logger.warn(
      { bucket: this.bucket, fromMs: before.ttlMs, toMs: ttlMs, fenceAfterMs: this.state.times.fenceAfterMs },
      'the lease time changed (bucket TTL): following it',
    );
    if (this.renewals.running) {
      this.renewals.stop();
      this.fences.stop();
      this.startTimers();
    }
    this.ttlWatch.start(this.state.times.checkEveryMs);
    void this.ttlWatch.rebind(ttlMs);
    this.fences.check();
    if (ttlMs < before.ttlMs) this.renewals.startRound();
    this.options.onTimesChanged?.(this.state.times);
  }
}
