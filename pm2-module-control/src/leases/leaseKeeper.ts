import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { DisclusterError, ErrorCode, leaseBucket, leaseKey } from 'discluster-protocol';
import type { Logger } from '../logger.js';
import { describeError, isCasConflict, openBucket } from 'discluster-runtime';
import { LeaseRecords, type ShardClaim } from './leaseRecords.js';
import { leaseTimes, requestTimeout, type LeaseTimes } from './leaseTimes.js';
import { LeaseTtlWatch } from './leaseTtlWatch.js';
import {
  drainIo,
  fenceVerdict,
  keepaliveVerdict,
  lateness,
  stallGraceMs,
  withDeadline,
} from './leaseStall.js';
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
 * the lease time; the owner renews every TTL/6 by compare-and-set (a failed round again after
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
  readonly onRenewed?: (clusterIds: readonly number[]) => void;
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

interface HeldShard {
  readonly shardId: number;
  readonly key: string;
  revision: number;
  /** When the request of the last write NATS acknowledged was sent (the lease lives ttlMs from no earlier). */
  renewedAt: number;
}

interface HeldCluster {
  /** Updated in place by a restart's acquire (new epoch, same shards). */
  claim: LeaseClaim;
  readonly shards: Map<number, HeldShard>;
  fenced: boolean;
  lost: boolean;
}

/** Opens (or creates) the lease bucket of `bot` and keeps this host's leases. */
export class LeaseKeeper implements ShardLeases {
  private current: LeaseTimes;
  private readonly records: LeaseRecords;
  private readonly clock: () => number;
  private readonly clusters = new Map<number, HeldCluster>();
  private renewTimer: NodeJS.Timeout | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private renewal: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly ttlWatch: LeaseTtlWatch;
  private lastRenewError = '';
  private closed = false;
  /** When the fence check is due next (its lateness is how long the loop stalled). */
  private checkDueAt: number | undefined;
  /** A fence check dealing with a stall of the loop (see checkFences). */
  private recheck: Promise<void> | null = null;

  private constructor(
    nc: NatsConnection,
    private readonly bucket: string,
    kv: KV,
    ttlMs: number,
    private readonly options: LeaseKeeperOptions,
  ) {
    this.current = leaseTimes(ttlMs);
    this.records = new LeaseRecords(kv, {
      hostId: options.hostId,
      instanceId: options.instanceId,
      logger: options.logger,
      requestTimeoutMs: () => this.current.requestTimeoutMs,
    });
    this.clock = options.clock ?? (() => performance.now());
    this.ttlWatch = new LeaseTtlWatch({
      nc,
      bucket,
      records: this.records,
      logger: options.logger,
      ttlMs: () => this.current.ttlMs,
      onChange: (ttlMs) => this.follow(ttlMs),
    });
    this.ttlWatch.start(this.current.checkEveryMs);
  }

  /** The lease time in force: the bucket's TTL as last read. */
  public get ttlMs(): number {
    return this.current.ttlMs;
  }

  /** What clusters are told to fence after, without NATS: half the lease time. */
  public get fenceAfterMs(): number {
    return this.current.fenceAfterMs;
  }

  /** Every period derived from the lease time in force. */
  public get times(): LeaseTimes {
    return this.current;
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

  public async acquire(claim: LeaseClaim, options: AcquireOptions): Promise<AcquireOutcome> {
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
        if (options.signal.aborted || this.closed) return { kind: 'aborted' };
        if (held.lost) return { kind: 'aborted' };
        // Held and renewed lately (a restart): nothing to ask. Stale: CONTROL must vouch for it again.
        const known = held.shards.get(shardId);
        if (known && this.clock() - known.renewedAt < this.current.fenceAfterMs) break;
        try {
          const sentAt = this.clock();
          const result = await this.records.claim(claim, shardId);
          if (result.kind === 'ours') {
            this.hold(held, shardId, result.revision, sentAt);
            break;
          }
          if (result.kind === 'held') {
            if (options.whenHeld === 'fail') return { kind: 'held', holder: result.holder };
            if (!reported.has(result.holder.hostId)) {
              reported.add(result.holder.hostId);
              this.options.logger.info(
                { clusterId: claim.clusterId, shardId, holder: result.holder },
                `shard ${shardId} is leased by host ${result.holder.hostId}; waiting until it expires or is released`,
              );
            }
            block();
          }
          // raced: someone wrote the key meanwhile; look again at once.
          if (result.kind === 'raced') continue;
        } catch (error) {
          this.options.logger.warn(
            { clusterId: claim.clusterId, shardId, err: describeError(error) },
            'could not take a shard lease; retrying',
          );
          block();
        }
        await sleep(this.current.pollMs, options.signal);
      }
    }
    held.fenced = false;
    return { kind: 'acquired' };
  }

  public async confirm(clusterId: number): Promise<ConfirmOutcome> {
    const held = this.clusters.get(clusterId);
    if (!held) return 'unknown';
    if (held.lost) return 'refused';
    try {
      for (const shardId of held.claim.shardIds) {
        let result: ShardClaim;
        let sentAt: number;
        do {
          sentAt = this.clock();
          result = await this.records.claim(held.claim, shardId);
        } while (result.kind === 'raced');
        if (result.kind === 'held') {
          this.options.logger.warn(
            { clusterId, shardId, holder: result.holder },
            `lease of shard ${shardId} is held by host ${result.holder.hostId}: not confirming`,
          );
          return 'refused';
        }
        if (this.clusters.get(clusterId) !== held) return 'unknown';
        this.hold(held, shardId, result.revision, sentAt);
      }
    } catch (error) {
      this.options.logger.info({ clusterId, err: describeError(error) }, 'cannot check leases yet');
      return 'unknown';
    }
    held.fenced = false;
    return 'confirmed';
  }

  public async release(clusterId: number): Promise<void> {
    const held = this.clusters.get(clusterId);
    if (!held) return;
    this.clusters.delete(clusterId);
    // A renewal in flight could otherwise land after the delete and look like a lost lease.
    await this.renewal;
    await Promise.all(
      [...held.shards.values()].map((shard) => this.records.deleteIfOurs(shard.key, shard.revision)),
    );
    this.options.logger.info({ clusterId, shards: [...held.shards.keys()] }, 'shard leases released');
  }

  public async sweep(keep: readonly LeaseClaim[]): Promise<void> {
    const wanted = new Set(keep.flatMap((c) => c.shardIds.map((id) => leaseKey(c.shardCount, id))));
    for (const held of this.clusters.values())
      for (const shard of held.shards.values()) wanted.add(shard.key);
    let released: string[] = [];
    try {
      released = await this.records.deleteOursExcept(wanted);
    } catch (error) {
      // Best effort: a lease left over simply expires after the TTL.
      this.options.logger.warn({ err: describeError(error) }, 'could not sweep leftover leases');
    }
    if (released.length > 0)
      this.options.logger.info({ keys: released }, 'released leases left by an earlier CONTROL boot');
  }

  /** Stops renewing; leases stay (CONTROL restarts while its clusters keep running). */
  public close(): void {
    this.closed = true;
    clearInterval(this.renewTimer);
    clearTimeout(this.retryTimer);
    clearInterval(this.checkTimer);
    this.ttlWatch.close();
    this.clusters.clear();
  }

  private track(claim: LeaseClaim): HeldCluster {
    const existing = this.clusters.get(claim.clusterId);
    // Same shards (a restart): keep the revisions we have, renewals never stopped.
    if (existing && !existing.lost && sameShards(existing.claim, claim)) {
      existing.claim = claim;
      return existing;
    }
    const held: HeldCluster = { claim, shards: new Map(), fenced: false, lost: false };
    this.clusters.set(claim.clusterId, held);
    this.startTimers();
    return held;
  }

  private hold(held: HeldCluster, shardId: number, revision: number, sentAt: number): void {
    const key = leaseKey(held.claim.shardCount, shardId);
    held.shards.set(shardId, { shardId, key, revision, renewedAt: sentAt });
  }

  private startTimers(): void {
    if (this.renewTimer || this.closed) return;
    this.renewTimer = setInterval(() => this.startRound(), this.current.renewEveryMs);
    this.checkDueAt = this.clock() + this.current.checkEveryMs;
    this.checkTimer = setInterval(() => this.checkFences(true), this.current.checkEveryMs);
  }

  /**
   * Adopts another lease time at once. A shorter one may have cut the life of leases renewed under
   * the old one (an entry lives by the new TTL from its last write): those renewed longer ago than
   * the new fence time are fenced now, and every lease is renewed now rather than a period later.
   */
  private follow(ttlMs: number): void {
    const before = this.current;
    this.current = leaseTimes(ttlMs);
    this.options.logger.warn(
      { bucket: this.bucket, fromMs: before.ttlMs, toMs: ttlMs, fenceAfterMs: this.current.fenceAfterMs },
      'the lease time changed (bucket TTL): following it',
    );
    if (this.renewTimer) {
      clearInterval(this.renewTimer);
      clearInterval(this.checkTimer);
      this.renewTimer = undefined;
      this.startTimers();
    }
    this.ttlWatch.start(this.current.checkEveryMs);
    void this.ttlWatch.rebind(ttlMs);
    this.checkFences();
    if (ttlMs < before.ttlMs) this.startRound();
    this.options.onTimesChanged?.(this.current);
  }

  /** One renewal round at a time: on a dead link a round waits for its timeouts. */
  private startRound(): void {
    if (this.renewal || this.closed) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const startedAt = this.clock();
    this.renewal = this.renewAll().finally(() => {
      this.renewal = null;
      // It outlasted its period (a stall, slow answers): the tick that came meanwhile was skipped,
      // so the next round starts now rather than up to a period later.
      if (!this.closed && this.clock() - startedAt >= this.current.renewEveryMs) this.startRound();
    });
  }

  private async renewAll(): Promise<void> {
    const startedAt = this.clock();
    const results = await Promise.all(
      [...this.clusters.values()].map(async (held) => {
        const renewed = await Promise.all([...held.shards.values()].map((shard) => this.renew(held, shard)));
        // Its keepalive now, not after the other clusters' renewals.
        this.reportRenewed(held, startedAt);
        return renewed;
      }),
    );
    if (this.closed) return;
    // A renewal failed (NATS restarting, a request lost): try again soon, not a whole round later.
    if (results.flat().includes(false))
      this.retryTimer ??= setTimeout(() => this.startRound(), this.current.retryMs);
  }

  /** A cluster whose every lease was renewed in the round started at `since` gets its keepalive. */
  private reportRenewed(held: HeldCluster, since: number): void {
    if (this.closed || held.lost || this.clusters.get(held.claim.clusterId) !== held) return;
    if (!this.allRenewedSince(held, since)) return;
    const oldest = Math.min(...[...held.shards.values()].map((shard) => shard.renewedAt));
    if (!keepaliveVerdict(oldest, this.clock(), this.current)) {
      this.options.logger.info(
        { clusterId: held.claim.clusterId, renewedMsAgo: Math.round(this.clock() - oldest) },
        'leases renewed, but by requests sent too long ago to vouch for them (event loop stalled?): no keepalive',
      );
      return;
    }
    this.options.onRenewed?.([held.claim.clusterId]);
  }

  /** Every shard of the claim is held and was renewed (or taken) at `since` or later. */
  private allRenewedSince(held: HeldCluster, since: number): boolean {
    return held.claim.shardIds.every((shardId) => {
      const shard = held.shards.get(shardId);
      return shard !== undefined && shard.renewedAt >= since;
    });
  }

  /**
   * Renews one lease; false when NATS did not answer (the round is retried soon). The request is
   * bounded by the request timeout in this process's own time (withDeadline), and a reply that
   * comes after that still renews the lease, as of when the request was sent.
   */
  private async renew(held: HeldCluster, shard: HeldShard): Promise<boolean> {
    const stillHeld = (): boolean =>
      !this.closed &&
      this.clusters.get(held.claim.clusterId) === held &&
      held.shards.get(shard.shardId) === shard;
    const from = shard.revision;
    const sentAt = this.clock();
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
      this.current.fenceAfterMs + stallGraceMs(this.current),
    );
    try {
      written(await withDeadline(request, this.current.requestTimeoutMs, this.clock));
      this.lastRenewError = '';
      return true;
    } catch (error) {
      request.then(written, () => undefined);
      if (!isCasConflict(error)) {
        const problem = describeError(error);
        // Logged when the problem changes, not every round of an outage.
        if (problem !== this.lastRenewError)
          this.options.logger.warn({ err: problem }, 'lease renewal failed; retrying');
        this.lastRenewError = problem;
        return false;
      }
    }
    // Someone wrote the key since our last renewal: us (an answer we missed), or, after it expired, another host.
    try {
      if (!stillHeld()) return true;
      const claimedAt = this.clock();
      const result = await this.records.claim(held.claim, shard.shardId);
      if (!stillHeld()) return true;
      if (result.kind === 'ours') {
        shard.revision = result.revision;
        shard.renewedAt = Math.max(shard.renewedAt, claimedAt);
      } else if (result.kind === 'held') {
        held.shards.delete(shard.shardId);
        if (held.lost) return true;
        held.lost = true;
        this.options.logger.error(
          { clusterId: held.claim.clusterId, shardId: shard.shardId, holder: result.holder },
          `lease of shard ${shard.shardId} was taken by host ${result.holder.hostId}: stopping cluster ${held.claim.clusterId}`,
        );
        this.options.onLost(held.claim.clusterId, result.holder);
      }
      return true;
    } catch (error) {
      this.options.logger.warn({ err: describeError(error) }, 'lease renewal failed; retrying');
      return false;
    }
  }

  /**
   * Fences every cluster one of whose leases was last renewed (sent) the fence time ago or more.
   * `timed`: the periodic check, whose lateness tells a stall of the loop; after one, the replies
   * received meanwhile are read first, then one fresh renewal is tried before fencing (leaseStall.ts
   * fenceVerdict).
   */
  private checkFences(timed = false): void {
    if (this.closed) return;
    const now = this.clock();
    let stallMs = 0;
    if (timed) {
      stallMs = this.checkDueAt === undefined ? 0 : lateness(this.checkDueAt, now);
      this.checkDueAt = now + this.current.checkEveryMs;
    }
    // Already dealing with a stall: that check judges again when done.
    if (this.recheck) return;
    if (this.judge(stallMs, false).length === 0) return;
    this.options.logger.info(
      { stallMs: Math.round(stallMs) },
      'fence check after an event-loop stall: reading the replies received meanwhile before judging the leases',
    );
    this.recheck = this.afterStall(stallMs).finally(() => (this.recheck = null));
  }

  private async afterStall(stallMs: number): Promise<void> {
    await drainIo();
    if (this.closed) return;
    const renew = this.judge(stallMs, true);
    if (renew.length > 0) {
      // One fresh renewal, bounded by the grace of the stalest cluster.
      const now = this.clock();
      const deadline = Math.min(...renew.map((held) => this.oldestRenewal(held))) + this.current.fenceAfterMs;
      const graceLeft = deadline + stallGraceMs(this.current) - now;
      this.options.logger.info(
        { clusters: renew.map((held) => held.claim.clusterId), graceMs: Math.round(graceLeft) },
        'leases renewed before the stall are older than the fence time: renewing them now before fencing',
      );
      const fresh = (async () => {
        await this.renewal;
        this.startRound();
        await this.renewal;
      })();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        fresh,
        new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, graceLeft)))),
      ]);
      clearTimeout(timer);
      await drainIo();
      if (this.closed) return;
    }
    this.judge(0, true);
  }

  /** Send time of the stalest lease of a cluster. */
  private oldestRenewal(held: HeldCluster): number {
    return Math.min(...[...held.shards.values()].map((shard) => shard.renewedAt));
  }

  /**
   * Fences the clusters whose verdict is `fence`; returns those whose verdict asks for a drain or
   * a fresh renewal first.
   */
  private judge(stallMs: number, drained: boolean): HeldCluster[] {
    const now = this.clock();
    const pending: HeldCluster[] = [];
    for (const held of this.clusters.values()) {
      if (held.fenced || held.lost || held.shards.size === 0) continue;
      const verdict = fenceVerdict(this.oldestRenewal(held), now, this.current, stallMs, drained);
      if (verdict === 'renewed') continue;
      if (verdict !== 'fence') {
        pending.push(held);
        continue;
      }
      const stale = [...held.shards.values()].filter(
        (shard) => now - shard.renewedAt >= this.current.fenceAfterMs,
      );
      held.fenced = true;
      this.options.logger.warn(
        {
          clusterId: held.claim.clusterId,
          shards: stale.map((shard) => shard.shardId),
          fenceAfterMs: this.current.fenceAfterMs,
          ...(stallMs > 0 ? { stallMs: Math.round(stallMs) } : {}),
        },
        'leases not renewed for half the lease time: fencing the cluster',
      );
      this.options.onFence(held.claim.clusterId);
    }
    return pending;
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
