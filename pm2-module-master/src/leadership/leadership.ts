import os from 'node:os';
import type { KV } from '@nats-io/kv';
import {
  LeaderRecordSchema,
  decodeRecord,
  encodeRecord,
  leaderKey,
  type LeaderRecord,
} from 'discluster-protocol';
import { isCasConflict } from '../kvBuckets.js';
import type { Logger } from '../logger.js';

export interface LeadershipOptions {
  readonly kv: KV;
  readonly instanceId: string;
  /** The leader bucket's TTL (`leader_lease_ms`). */
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

  public constructor(private readonly options: LeadershipOptions) {}

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
      await this.options.kv.delete(leaderKey(), { previousSeq: this.revision }).catch(() => undefined);
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
    this.holdOffUntil = performance.now() + this.options.ttlMs;
    this.options.logger.error(
      { reason },
      'stepping down: this MASTER cannot act as leader; releasing the leadership for a standby or a fresh term',
    );
    await this.options.onDeposed(reason);
    // Names our revision: a renewal that slipped in meanwhile leaves the key to expire instead.
    await this.options.kv.delete(leaderKey(), { previousSeq: this.revision }).catch(() => undefined);
  }

  /** Who leads now, if anyone (for logs and status). */
  public async current(): Promise<LeaderRecord | null> {
    const entry = await this.options.kv.get(leaderKey()).catch(() => null);
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
    const { kv, ttlMs, logger } = this.options;
    if (!this.leading) {
      if (performance.now() < this.holdOffUntil) {
        this.schedule(ttlMs / 4);
        return;
      }
      try {
        this.since = Date.now();
        this.revision = await kv.create(leaderKey(), this.record());
        this.leading = true;
        const election = ++this.elections;
        this.renewed();
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
      this.schedule(this.leading ? ttlMs / 3 : ttlMs / 4);
      return;
    }
    try {
      const revision = await kv.update(leaderKey(), this.record(), this.revision, Math.max(500, ttlMs / 4));
      // The deadline may have stepped us down while this call hung: then the write proves nothing.
      if (this.leading) {
        this.revision = revision;
        this.renewed();
      }
    } catch (error) {
      if (this.leading && isCasConflict(error)) await this.stepDown('another MASTER holds the leadership');
      else if (this.leading) logger.warn({ err: String(error) }, 'leadership renewal failed; retrying');
    }
    this.schedule(this.leading ? ttlMs / 3 : ttlMs / 4);
  }

  private renewed(): void {
    clearTimeout(this.deadline);
    const limit = Math.round((this.options.ttlMs * 2) / 3);
    this.deadline = setTimeout(() => {
      if (this.leading) void this.stepDown(`could not renew the leadership for ${limit} ms`);
    }, limit);
  }

  private async stepDown(reason: string): Promise<void> {
    if (!this.leading) return;
    clearTimeout(this.deadline);
    this.leading = false;
    this.options.logger.warn({ reason }, 'no longer the leader: stopped commanding');
    await this.options.onDeposed(reason);
  }
}
