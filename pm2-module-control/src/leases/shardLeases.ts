/** What the supervisor asks of the shard leases (leaseKeeper.ts keeps them in NATS KV). */

/** The shards of one cluster, as CONTROL is about to run them. */
export interface LeaseClaim {
  readonly clusterId: number;
  readonly shardIds: readonly number[];
  readonly shardCount: number;
  readonly epoch: number;
}

/** Who holds a shard we wanted. */
export interface LeaseHolder {
  readonly shardId: number;
  /** `(unreadable record)` when the value does not parse: it is waited out like any other holder. */
  readonly hostId: string;
  readonly clusterId: number | null;
}

export type AcquireOutcome =
  | { readonly kind: 'acquired' }
  | { readonly kind: 'held'; readonly holder: LeaseHolder }
  | { readonly kind: 'aborted' };

/** `unknown`: NATS did not answer; ask again later. */
export type ConfirmOutcome = 'confirmed' | 'refused' | 'unknown';

export interface AcquireOptions {
  /** `wait`: another host's lease is waited out (a cluster to start); `fail`: reported at once (adopting a running one). */
  readonly whenHeld: 'wait' | 'fail';
  readonly signal: AbortSignal;
  /** Called once when the claim cannot complete at once (held elsewhere, or NATS errors). */
  readonly onBlocked?: () => void;
}

/** What the supervisor needs from leases (an interface, so it can be tested without NATS). */
export interface ShardLeases {
  /** What clusters are told to fence after, without NATS: half the lease time. */
  readonly fenceAfterMs: number;
  /** Takes every shard of `claim` (retrying NATS errors until aborted) and keeps renewing them. */
  acquire(claim: LeaseClaim, options: AcquireOptions): Promise<AcquireOutcome>;
  /** After a fence: are (or can) every shard's lease (be) ours again? */
  confirm(clusterId: number): Promise<ConfirmOutcome>;
  /** Deletes the cluster's leases (its process is gone), so a new owner can start at once. */
  release(clusterId: number): Promise<void>;
  /** Deletes leases this host holds for shards of no `keep` claim (left by an earlier boot). */
  sweep(keep: readonly LeaseClaim[]): Promise<void>;
}
