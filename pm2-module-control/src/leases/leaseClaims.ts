import { leaseKey } from 'discluster-protocol';
import { describeError } from 'discluster-runtime';
import { hold, type HeldCluster, type HeldLeases } from './heldLeases.js';
import type { LeaseRecords, ShardClaim } from './leaseRecords.js';
import type {
  AcquireOptions,
  AcquireOutcome,
  ConfirmOutcome,
  LeaseClaim,
  LeaseHolder,
} from './shardLeases.js';

export interface LeaseClaimsHooks {
  /** A cluster is held now: renewals and the fence check must run. */
  readonly onHeld: () => void;
  /** The renewal round in flight, if any (a release waits it out). */
  readonly roundInFlight: () => Promise<void> | null;
  /** Another host holds one of the cluster's shards (found by a confirm): stop it for good. */
  readonly onLost: (clusterId: number, holder: LeaseHolder) => void;
}

/**
 * Takes, confirms and releases the leases of whole clusters (the supervisor's side of
 * leaseKeeper.ts); what it takes goes into the shared {@link HeldLeases}, which the renewals keep.
 */
export class LeaseClaims {
  public constructor(
    private readonly state: HeldLeases,
    private readonly records: LeaseRecords,
    private readonly hooks: LeaseClaimsHooks,
  ) {}

  public async acquire(claim: LeaseClaim, options: AcquireOptions): Promise<AcquireOutcome> {
    const { state } = this;
    const held = this.track(claim);
    const reported = new Set<string>();
    let blocked = false;
    const block = (): void => {
      if (blocked) return;
      blocked = true;
      options.onBlocked?.();
    };
    for (const shardId of claim.shardIds) {
      for (;;) {
        if (options.signal.aborted || state.closed) return { kind: 'aborted' };
        if (held.lost) return { kind: 'aborted' };
        // Held and renewed lately (a restart): nothing to ask. Stale: CONTROL must vouch for it again.
        const known = held.shards.get(shardId);
        if (known && state.clock() - known.renewedAt < state.times.fenceAfterMs) break;
        try {
          const sentAt = state.clock();
          const result = await this.records.claim(claim, shardId);
          if (result.kind === 'ours') {
            hold(held, shardId, result.revision, sentAt);
            break;
          }
          if (result.kind === 'held') {
            if (options.whenHeld === 'fail') return { kind: 'held', holder: result.holder };
            if (!reported.has(result.holder.hostId)) {
              reported.add(result.holder.hostId);
              state.logger.info(
                { clusterId: claim.clusterId, shardId, holder: result.holder },
                `shard ${shardId} is leased by host ${result.holder.hostId}; waiting until it expires or is released`,
              );
            }
            block();
          }
          // raced: someone wrote the key meanwhile; look again at once.
          if (result.kind === 'raced') continue;
        } catch (error) {
          state.logger.warn(
            { clusterId: claim.clusterId, shardId, err: describeError(error) },
            'could not take a shard lease; retrying',
          );
          block();
        }
        await sleep(state.times.pollMs, options.signal);
      }
    }
    held.fenced = false;
    return { kind: 'acquired' };
  }

  public async confirm(clusterId: number): Promise<ConfirmOutcome> {
    const { state } = this;
    const held = state.clusters.get(clusterId);
    if (!held) return 'unknown';
    if (held.lost) return 'refused';
    try {
      for (const shardId of held.claim.shardIds) {
        let result: ShardClaim;
        let sentAt: number;
        do {
          sentAt = state.clock();
          result = await this.records.claim(held.claim, shardId);
        } while (result.kind === 'raced');
        if (result.kind === 'held') {
          state.logger.warn(
            { clusterId, shardId, holder: result.holder },
            `lease of shard ${shardId} is held by host ${result.holder.hostId}: not confirming`,
          );
          // The same loss a renewal round would find: reported once, whichever finds it first.
          if (state.clusters.get(clusterId) === held && !held.lost) {
            held.lost = true;
            held.shards.delete(shardId);
            this.hooks.onLost(clusterId, result.holder);
          }
          return 'refused';
        }
        if (state.clusters.get(clusterId) !== held) return 'unknown';
        hold(held, shardId, result.revision, sentAt);
      }
    } catch (error) {
      state.logger.info({ clusterId, err: describeError(error) }, 'cannot check leases yet');
      return 'unknown';
    }
    held.fenced = false;
    return 'confirmed';
  }

  public async release(clusterId: number): Promise<void> {
    const held = this.state.clusters.get(clusterId);
    if (!held) return;
    this.state.clusters.delete(clusterId);
    // A renewal in flight could otherwise land after the delete and look like a lost lease.
    await this.hooks.roundInFlight();
    await Promise.all(
      [...held.shards.values()].map((shard) => this.records.deleteIfOurs(shard.key, shard.revision)),
    );
    this.state.logger.info({ clusterId, shards: [...held.shards.keys()] }, 'shard leases released');
  }

  public async sweep(keep: readonly LeaseClaim[]): Promise<void> {
    const wanted = new Set(keep.flatMap((c) => c.shardIds.map((id) => leaseKey(c.shardCount, id))));
    for (const held of this.state.clusters.values())
      for (const shard of held.shards.values()) wanted.add(shard.key);
    let released: string[] = [];
    try {
      released = await this.records.deleteOursExcept(wanted);
    } catch (error) {
      // Best effort: a lease left over simply expires after the TTL.
      this.state.logger.warn({ err: describeError(error) }, 'could not sweep leftover leases');
    }
    if (released.length > 0)
      this.state.logger.info({ keys: released }, 'released leases left by an earlier CONTROL boot');
  }

  private track(claim: LeaseClaim): HeldCluster {
    const existing = this.state.clusters.get(claim.clusterId);
    // Same shards (a restart): keep the revisions we have, renewals never stopped.
    if (existing && !existing.lost && sameShards(existing.claim, claim)) {
      existing.claim = claim;
      return existing;
    }
    const held: HeldCluster = { claim, shards: new Map(), fenced: false, lost: false };
    this.state.clusters.set(claim.clusterId, held);
    this.hooks.onHeld();
    return held;
  }
}

function sameShards(a: LeaseClaim, b: LeaseClaim): boolean {
  return a.shardCount === b.shardCount && a.shardIds.join() === b.shardIds.join();
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
