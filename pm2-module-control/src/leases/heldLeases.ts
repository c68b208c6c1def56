import { leaseKey } from 'discluster-protocol';
import type { Logger } from '../logger.js';
import { leaseTimes, type LeaseTimes } from './leaseTimes.js';
import type { LeaseClaim } from './shardLeases.js';

/**
 * What the parts of the lease keeper (leaseKeeper.ts) share: the leases this host holds, the lease
 * time in force and whether the keeper is closed. Taking, renewing and fence-checking leases are
 * separate jobs (leaseClaims.ts, leaseRenewals.ts, leaseFences.ts) over this one state, so each
 * sees at once what another changed.
 */

export interface HeldShard {
  readonly shardId: number;
  readonly key: string;
  revision: number;
  /** When the request of the last write NATS acknowledged was sent (the lease lives ttlMs from no earlier). */
  renewedAt: number;
}

export interface HeldCluster {
  /** Updated in place by a restart's acquire (new epoch, same shards). */
  claim: LeaseClaim;
  readonly shards: Map<number, HeldShard>;
  fenced: boolean;
  lost: boolean;
}

export class HeldLeases {
  public readonly clusters = new Map<number, HeldCluster>();
  /** The lease time in force: LeaseKeeper.follow replaces it when the bucket's TTL changes. */
  public times: LeaseTimes;
  /** Set by LeaseKeeper.close: every part stops what it was doing. */
  public closed = false;

  public constructor(
    ttlMs: number,
    /** Monotonic milliseconds. */
    public readonly clock: () => number,
    public readonly logger: Logger,
  ) {
    this.times = leaseTimes(ttlMs);
  }
}

/** Records a write NATS acknowledged for one shard of a held cluster, dated by its send time. */
export function hold(held: HeldCluster, shardId: number, revision: number, sentAt: number): void {
  const key = leaseKey(held.claim.shardCount, shardId);
  held.shards.set(shardId, { shardId, key, revision, renewedAt: sentAt });
}

/** Send time of the stalest lease of a cluster. */
export function oldestRenewal(held: HeldCluster): number {
  return Math.min(...[...held.shards.values()].map((shard) => shard.renewedAt));
}
