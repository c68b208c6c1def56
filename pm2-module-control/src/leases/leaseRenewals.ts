import { describeError, isCasConflict } from 'discluster-runtime';
import { oldestRenewal, type HeldCluster, type HeldLeases, type HeldShard } from './heldLeases.js';
import type { LeaseRecords } from './leaseRecords.js';
import { keepaliveVerdict, stallGraceMs, withDeadline } from './leaseStall.js';
import type { LeaseHolder } from './shardLeases.js';

export interface LeaseRenewalsHooks {
  /** Another host holds one of the cluster's shards now: the cluster must stop for good. */
  readonly onLost: (clusterId: number, holder: LeaseHolder) => void;
  /** Every lease of the cluster was just renewed in a round (LeaseKeeperOptions.onRenewed). */
  readonly onRenewed?: (clusterIds: readonly number[], renewedAt: number) => void;
}

/**
 * Renews every held lease by compare-and-set, a round every renewal period (a failed round again
 * after the retry time), and reports each cluster whose leases were all renewed (its keepalive).
 */
export class LeaseRenewals {
  private renewTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private renewal: Promise<void> | null = null;
  private lastRenewError = '';

  public constructor(
    private readonly state: HeldLeases,
    private readonly records: LeaseRecords,
    private readonly hooks: LeaseRenewalsHooks,
  ) {}

  /** The periodic rounds have been started (and not stopped since). */
  public get running(): boolean {
    return this.renewTimer !== undefined;
  }

  /** The round in flight, if any. */
  public get inFlight(): Promise<void> | null {
    return this.renewal;
  }

  /** Starts a round every renewal period in force. */
  public start(): void {
    this.renewTimer = setInterval(() => this.startRound(), this.state.times.renewEveryMs);
  }

  /** Stops the periodic rounds (a retry already due still runs); {@link start} again for another period. */
  public stop(): void {
    clearInterval(this.renewTimer);
    this.renewTimer = undefined;
  }

  public close(): void {
    clearInterval(this.renewTimer);
    clearTimeout(this.retryTimer);
  }

  /** Waits out the round in flight, then runs a fresh one: its requests are all sent from now. */
  public async freshRound(): Promise<void> {
    await this.renewal;
    this.startRound();
    await this.renewal;
  }

  /** One renewal round at a time: on a dead link a round waits for its timeouts. */
  public startRound(): void {
    if (this.renewal || this.state.closed) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const startedAt = this.state.clock();
    this.renewal = this.renewAll().finally(() => {
      this.renewal = null;
      // It outlasted its period (a stall, slow answers): the tick that came meanwhile was skipped,
      // so the next round starts now rather than up to a period later.
      if (!this.state.closed && this.state.clock() - startedAt >= this.state.times.renewEveryMs)
        this.startRound();
    });
  }

  private async renewAll(): Promise<void> {
    const startedAt = this.state.clock();
    const results = await Promise.all(
      [...this.state.clusters.values()].map(async (held) => {
        const renewed = await Promise.all([...held.shards.values()].map((shard) => this.renew(held, shard)));
        // Its keepalive now, not after the other clusters' renewals.
        this.reportRenewed(held, startedAt);
        return renewed;
      }),
    );
    if (this.state.closed) return;
    // A renewal failed (NATS restarting, a request lost): try again soon, not a whole round later.
    if (results.flat().includes(false))
      this.retryTimer ??= setTimeout(() => this.startRound(), this.state.times.retryMs);
  }

  /** A cluster whose every lease was renewed in the round started at `since` gets its keepalive. */
  private reportRenewed(held: HeldCluster, since: number): void {
    const { state } = this;
    if (state.closed || held.lost || state.clusters.get(held.claim.clusterId) !== held) return;
    if (!allRenewedSince(held, since)) return;
    const oldest = oldestRenewal(held);
    if (!keepaliveVerdict(oldest, state.clock(), state.times)) {
      state.logger.info(
        { clusterId: held.claim.clusterId, renewedMsAgo: Math.round(state.clock() - oldest) },
        'leases renewed, but by requests sent too long ago to vouch for them (event loop stalled?): no keepalive',
      );
      return;
    }
    // The cluster counts its fence time from the oldest renewal request, on the wall clock it shares.
    this.hooks.onRenewed?.([held.claim.clusterId], Math.round(Date.now() - (state.clock() - oldest)));
  }

  /**
   * Renews one lease; false when NATS did not answer (the round is retried soon). The request is
   * bounded by the request timeout in this process's own time (withDeadline), and a reply that
   * comes after that still renews the lease, as of when the request was sent.
   */
  private async renew(held: HeldCluster, shard: HeldShard): Promise<boolean> {
    const { state } = this;
    const stillHeld = (): boolean =>
      !state.closed &&
      state.clusters.get(held.claim.clusterId) === held &&
      held.shards.get(shard.shardId) === shard;
    const from = shard.revision;
    const sentAt = state.clock();
    const written = (revision: number): void => {
      // Another write since (a retry, a claim) knows better.
      if (shard.revision !== from) return;
      shard.revision = revision;
      shard.renewedAt = Math.max(shard.renewedAt, sentAt);
    };
    // NATS may answer later than our deadline (a stall): its reply is waited for, and counts, as
    // long as it could spare a fence (the fence time and the grace after a stall).
    const request = this.records.renew(
      shard.key,
      held.claim,
      shard.shardId,
      from,
      state.times.fenceAfterMs + stallGraceMs(state.times),
    );
    try {
      written(await withDeadline(request, state.times.requestTimeoutMs, state.clock));
      this.lastRenewError = '';
      return true;
    } catch (error) {
      request.then(written, () => undefined);
      if (!isCasConflict(error)) {
        const problem = describeError(error);
        // Logged when the problem changes, not every round of an outage.
        if (problem !== this.lastRenewError)
          state.logger.warn({ err: problem }, 'lease renewal failed; retrying');
        this.lastRenewError = problem;
        return false;
      }
    }
    // Someone wrote the key since our last renewal: us (an answer we missed), or, after it expired, another host.
    try {
      if (!stillHeld()) return true;
      const claimedAt = state.clock();
      const result = await this.records.claim(held.claim, shard.shardId);
      if (!stillHeld()) return true;
      if (result.kind === 'ours') {
        shard.revision = result.revision;
        shard.renewedAt = Math.max(shard.renewedAt, claimedAt);
      } else if (result.kind === 'held') {
        held.shards.delete(shard.shardId);
        if (held.lost) return true;
        held.lost = true;
        state.logger.error(
          { clusterId: held.claim.clusterId, shardId: shard.shardId, holder: result.holder },
          `lease of shard ${shard.shardId} was taken by host ${result.holder.hostId}: stopping cluster ${held.claim.clusterId}`,
        );
        this.hooks.onLost(held.claim.clusterId, result.holder);
      }
      return true;
    } catch (error) {
      state.logger.warn({ err: describeError(error) }, 'lease renewal failed; retrying');
      return false;
    }
  }
}

/** Every shard of the claim is held and was renewed (or taken) at `since` or later. */
function allRenewedSince(held: HeldCluster, since: number): boolean {
  return held.claim.shardIds.every((shardId) => {
    const shard = held.shards.get(shardId);
    return shard !== undefined && shard.renewedAt >= since;
  });
}
