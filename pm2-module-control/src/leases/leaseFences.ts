import { oldestRenewal, type HeldCluster, type HeldLeases } from './heldLeases.js';
import type { LeaseRenewals } from './leaseRenewals.js';
import { drainIo, fenceVerdict, lateness, stallGraceMs } from './leaseStall.js';

export interface LeaseFencesHooks {
  /** Renewals failed for half the lease time: the cluster must close its shards now. */
  readonly onFence: (clusterId: number) => void;
}

/**
 * The fence check, on its own timer (a renewal stuck on a dead link must not delay it): fences every
 * cluster one of whose leases was last renewed (sent) the fence time ago or more, unless the check
 * itself ran late after an event-loop stall (leaseStall.ts fenceVerdict).
 */
export class LeaseFences {
  private checkTimer: NodeJS.Timeout | undefined;
  /** When the fence check is due next (its lateness is how long the loop stalled). */
  private checkDueAt: number | undefined;
  /** A fence check dealing with a stall of the loop (see check). */
  private recheck: Promise<void> | null = null;

  public constructor(
    private readonly state: HeldLeases,
    /** After a stall, one fresh round may spare a fence. */
    private readonly renewals: LeaseRenewals,
    private readonly hooks: LeaseFencesHooks,
  ) {}

  /** Checks every fence check period in force. */
  public start(): void {
    this.checkDueAt = this.state.clock() + this.state.times.checkEveryMs;
    this.checkTimer = setInterval(() => this.check(true), this.state.times.checkEveryMs);
  }

  /** Stops the periodic checks ({@link start} again for another period, or for good on close). */
  public stop(): void {
    clearInterval(this.checkTimer);
  }

  /**
   * Fences every cluster one of whose leases was last renewed (sent) the fence time ago or more.
   * `timed`: the periodic check, whose lateness tells a stall of the loop; after one, the replies
   * received meanwhile are read first, then one fresh renewal is tried before fencing (leaseStall.ts
   * fenceVerdict).
   */
  public check(timed = false): void {
    const { state } = this;
    if (state.closed) return;
    const now = state.clock();
    let stallMs = 0;
    if (timed) {
      stallMs = this.checkDueAt === undefined ? 0 : lateness(this.checkDueAt, now);
      this.checkDueAt = now + state.times.checkEveryMs;
    }
    // Already dealing with a stall: that check judges again when done.
    if (this.recheck) return;
    if (this.judge(stallMs, false).length === 0) return;
    state.logger.info(
      { stallMs: Math.round(stallMs) },
      'fence check after an event-loop stall: reading the replies received meanwhile before judging the leases',
    );
    this.recheck = this.afterStall(stallMs).finally(() => (this.recheck = null));
  }

  private async afterStall(stallMs: number): Promise<void> {
    const { state } = this;
    await drainIo();
    if (state.closed) return;
    const renew = this.judge(stallMs, true);
    if (renew.length > 0) {
      // One fresh renewal, bounded by the grace of the stalest cluster.
      const now = state.clock();
      const deadline = Math.min(...renew.map((held) => oldestRenewal(held))) + state.times.fenceAfterMs;
      const graceLeft = deadline + stallGraceMs(state.times) - now;
      state.logger.info(
        { clusters: renew.map((held) => held.claim.clusterId), graceMs: Math.round(graceLeft) },
        'leases renewed before the stall are older than the fence time: renewing them now before fencing',
      );
      const fresh = this.renewals.freshRound();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        fresh,
        new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, graceLeft)))),
      ]);
      clearTimeout(timer);
      await drainIo();
      if (state.closed) return;
    }
    this.judge(0, true);
  }

  /**
   * Fences the clusters whose verdict is `fence`; returns those whose verdict asks for a drain or
   * a fresh renewal first.
   */
  private judge(stallMs: number, drained: boolean): HeldCluster[] {
    const { state } = this;
    const now = state.clock();
    const pending: HeldCluster[] = [];
    for (const held of state.clusters.values()) {
      if (held.fenced || held.lost || held.shards.size === 0) continue;
      const verdict = fenceVerdict(oldestRenewal(held), now, state.times, stallMs, drained);
      if (verdict === 'renewed') continue;
      if (verdict !== 'fence') {
        pending.push(held);
        continue;
      }
      const stale = [...held.shards.values()].filter(
        (shard) => now - shard.renewedAt >= state.times.fenceAfterMs,
      );
      held.fenced = true;
      state.logger.warn(
        {
          clusterId: held.claim.clusterId,
          shards: stale.map((shard) => shard.shardId),
          fenceAfterMs: state.times.fenceAfterMs,
          ...(stallMs > 0 ? { stallMs: Math.round(stallMs) } : {}),
        },
        'leases not renewed for half the lease time: fencing the cluster',
      );
      this.hooks.onFence(held.claim.clusterId);
    }
    return pending;
  }
}
