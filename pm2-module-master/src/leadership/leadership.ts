import os from 'node:os';
import {
  LeaderRecordSchema,
  decodeRecord,
  encodeRecord,
  leaderKey,
  type LeaderRecord,
} from 'discluster-protocol';
import { isCasConflict } from 'discluster-runtime';
import type { Logger } from '../logger.js';
import type { LeaderBucket } from './leaderBucket.js';

export interface LeadershipOptions {
  readonly bucket: LeaderBucket;
  readonly instanceId: string;
  /** This MASTER's `leader_lease_ms`: the bucket's TTL once it leads. */
  readonly ttlMs: number;
  readonly logger: Logger;
  readonly onElected: () => Promise<void> | void;
  readonly onDeposed: (reason: string) => Promise<void> | void;
}

/**
 * MASTER high availability (issue 5 §7): leadership is one KV key in a bucket whose TTL is the
 * leader lease. The leader renews it by compare-and-set every TTL/3; a standby tries to create it
 * every TTL/4, which succeeds only once it expired (or the leader released it on shutdown). A
 * leader that cannot renew for 2/3 of the TTL steps down by itself, before the key can expire and
 * a standby could take over: never two leaders commanding at once. A leader that cannot act (its
 * term failed, or taking over threw) resigns: it deletes the key and sits out one TTL, so a standby
 * is elected first (issue 13 c).
 *
 * The lease time in force is the bucket's TTL, not necessarily this MASTER's `leader_lease_ms`:
 * only the leader changes the TTL, right after its election (issue 13 d), and times its own
 * renewals by the shorter of the two until the change is made.
 */
export class Leadership {
  private revision = 0;
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  /** Steps down when no renewal succeeded for 2/3 of the TTL, however long a renewal call hangs. */
  private deadline: NodeJS.Timeout | undefined;
  private closed = false;
  private since = 0;
  /** After resigning, no campaign before this (`performance.now()`): a standby goes first. */
  private holdOffUntil = 0;
  /** Counts elections, so a late failure of one term's take-over cannot resign a later term. */
  private elections = 0;
  /** The lease time in force: the bucket's TTL as last known. */
  private ttlMs: number;

  public constructor(private readonly options: LeadershipOptions) {
    this.ttlMs = options.bucket.openedTtlMs > 0 ? options.bucket.openedTtlMs : options.ttlMs;
  }

  /** The lease time in force (the leader bucket's TTL as this MASTER last knew it). */
  public get leaseMs(): number {
    return this.ttlMs;
  }

  public get isLeader(): boolean {
    return this.leading;
  }

  public start(): void {
    void this.tick();
  }

  /** Stops campaigning; a leader releases the key so a standby takes over at once. */
  public async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.deadline);
    if (this.leading) {
      this.leading = false;
      await this.options.bucket.kv.delete(leaderKey(), { previousSeq: this.revision }).catch(() => undefined);
    }
  }

  /**
   * Gives the leadership back while staying a candidate: stops commanding (`onDeposed`), deletes
   * the key, and campaigns again only after one TTL, so a standby takes over first; if none does,
   * this MASTER is elected again and starts afresh.
   */
  public async resign(reason: string): Promise<void> {
    if (!this.leading) return;
    clearTimeout(this.deadline);
    this.leading = false;
    this.holdOffUntil = performance.now() + this.ttlMs;
    this.options.logger.error(
      { reason },
      'stepping down: this MASTER cannot act as leader; releasing the leadership for a standby or a fresh term',
    );
    await this.options.onDeposed(reason);
    // Names our revision: a renewal that slipped in meanwhile leaves the key to expire instead.
    await this.options.bucket.kv.delete(leaderKey(), { previousSeq: this.revision }).catch(() => undefined);
  }

  /** Who leads now, if anyone (for logs and status). */
  public async current(): Promise<LeaderRecord | null> {
    const entry = await this.options.bucket.kv.get(leaderKey()).catch(() => null);
    if (!entry || entry.operation !== 'PUT') return null;
    const decoded = decodeRecord(LeaderRecordSchema, entry.value);
    return decoded.ok ? decoded.value : null;
  }

  private record(): string {
    const now = Date.now();
    const record: LeaderRecord = {
      v: 1,
      instanceId: this.options.instanceId,
      hostname: os.hostname().slice(0, 255),
      since: this.since || now,
      renewedAt: now,
    };
    return encodeRecord(record);
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    if (this.closed) return;
    const { logger } = this.options;
    const kv = this.options.bucket.kv;
    if (!this.leading) {
      if (performance.now() < this.holdOffUntil) {
        this.schedule(this.ttlMs / 4);
        return;
      }
      try {
        this.since = Date.now();
        const writtenAt = performance.now();
        this.revision = await kv.create(leaderKey(), this.record());
        this.leading = true;
        const election = ++this.elections;
        await this.adoptTtl(writtenAt);
        // Stepped down (or closed) while the TTL was being set: this election is over.
        if (!this.leading || election !== this.elections) throw new Error('deposed during the election');
        logger.info({ instanceId: this.options.instanceId }, 'elected leader');
        // Not awaited: taking over may wait for hosts for a long time, and renewals must go on.
        Promise.resolve()
          .then(() => this.options.onElected())
          .catch((failure: unknown) => {
            logger.error({ err: failure }, 'taking over as leader failed');
            // Holding the key without a term would block every standby for good.
            if (election === this.elections)
              void this.resign(
                `taking over failed: ${failure instanceof Error ? failure.message : String(failure)}`,
              );
          });
      } catch (error) {
        if (!isCasConflict(error))
          logger.debug({ err: String(error) }, 'could not campaign for leadership; retrying');
      }
      this.schedule(this.leading ? this.ttlMs / 3 : this.ttlMs / 4);
      return;
    }
    try {
      await this.renew();
    } catch (error) {
      if (this.leading && isCasConflict(error)) await this.renewOwnRecordOrStepDown();
      else if (this.leading) logger.warn({ err: String(error) }, 'leadership renewal failed; retrying');
    }
    this.schedule(this.leading ? this.ttlMs / 3 : this.ttlMs / 4);
  }

  /** One compare-and-set renewal on the revision this term knows. */
  private async renew(): Promise<void> {
    const writtenAt = performance.now();
    const revision = await this.options.bucket.kv.update(
      leaderKey(),
      this.record(),
      this.revision,
      Math.max(500, this.ttlMs / 4),
    );
    // The deadline may have stepped us down while this call hung: then the write proves nothing.
    if (this.leading) {
      this.revision = revision;
      this.renewed(writtenAt);
    }
  }

  /**
   * A renewal met a compare-and-set conflict. If the key still holds this term's own record (our
   * instance and election time: nobody else writes those) under another revision than the one the
   * write returned, the revision is what was wrong, not the leadership: nats-server before 2.9.21
   * can number a replicated stream's messages differently after a node restart (nats-server #4365;
   * the soak saw a leader step down and be re-elected at every renewal for an hour). Then this
   * term renews once on the stored revision, and steps down only if that fails too.
   */
  private async renewOwnRecordOrStepDown(): Promise<void> {
    const { logger, instanceId } = this.options;
    const entry = await this.options.bucket.kv.get(leaderKey()).catch(() => null);
    const decoded = entry?.operation === 'PUT' ? decodeRecord(LeaderRecordSchema, entry.value) : null;
    const ours =
      decoded?.ok === true && decoded.value.instanceId === instanceId && decoded.value.since === this.since;
    if (entry && ours && entry.revision !== this.revision) {
      logger.warn(
        { wrote: this.revision, stored: entry.revision },
        'the leader key holds this term’s record under another revision than its write returned (replicated stream numbering; run nats-server 2.9.21 or later): renewing on the stored one',
      );
      this.revision = entry.revision;
      try {
        await this.renew();
        return;
      } catch (error) {
        if (!isCasConflict(error)) {
          logger.warn({ err: String(error) }, 'leadership renewal failed; retrying');
          return;
        }
      }
    }
    if (this.leading) await this.stepDown('another MASTER holds the leadership');
  }

  /**
   * Just elected: times the lease by the bucket's TTL as it is now (a leader before us may have
   * changed it), then sets this MASTER's `leader_lease_ms` if it differs. Until that change is made
   * the shorter of the two times the renewals, so the key never outlives what we count on.
   */
  private async adoptTtl(writtenAt: number): Promise<void> {
    const { bucket, logger, ttlMs: wanted } = this.options;
    const actual = await bucket.ttlMs().catch(() => this.ttlMs);
    this.ttlMs = actual > 0 ? Math.min(actual, wanted) : wanted;
    this.renewed(writtenAt);
    if (actual === wanted) return;
    try {
      await bucket.setTtlMs(wanted);
      this.ttlMs = wanted;
      this.renewed(writtenAt);
      logger.warn(
        { bucket: bucket.name, fromMs: actual, toMs: wanted },
        'leader bucket TTL set to this MASTER’s leader_lease_ms (it leads now)',
      );
    } catch (error) {
      logger.warn(
        { err: String(error), bucketTtlMs: actual, leaderLeaseMs: wanted },
        'could not set the leader bucket TTL; leading by the shorter of the two',
      );
    }
  }

  /** Restarts the step-down deadline: 2/3 of the lease after the write that started at `writtenAt`. */
  private renewed(writtenAt: number): void {
    clearTimeout(this.deadline);
    const limit = Math.round((this.ttlMs * 2) / 3);
    this.deadline = setTimeout(
      () => {
        if (this.leading) void this.stepDown(`could not renew the leadership for ${limit} ms`);
      },
      Math.max(0, writtenAt + limit - performance.now()),
    );
  }

  private async stepDown(reason: string): Promise<void> {
    if (!this.leading) return;
    clearTimeout(this.deadline);
    this.leading = false;
    this.options.logger.warn({ reason }, 'no longer the leader: stopped commanding');
    await this.options.onDeposed(reason);
  }
}
