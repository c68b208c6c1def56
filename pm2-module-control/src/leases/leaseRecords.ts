import type { KV } from '@nats-io/kv';
import {
  ShardLeaseRecordSchema,
  decodeRecord,
  encodeRecord,
  leaseKey,
  type ShardLeaseRecord,
} from 'discluster-protocol';
import type { Logger } from '../logger.js';
import { describeError, isCasConflict } from 'discluster-runtime';
import type { LeaseClaim, LeaseHolder } from './shardLeases.js';

/** One attempt at one shard's key. */
export type ShardClaim =
  | { readonly kind: 'ours'; readonly revision: number }
  | { readonly kind: 'held'; readonly holder: LeaseHolder }
  | { readonly kind: 'raced' };

export interface LeaseRecordsOptions {
  readonly hostId: string;
  readonly instanceId: string;
  readonly logger: Logger;
  /** Bound of an update (the lease time may change, and with it this bound). */
  readonly requestTimeoutMs: () => number;
}

/**
 * This host's shard lease records in the KV bucket, one key per shard (`<shardCount>.<shardId>`).
 * Every write is a compare-and-set, and a key another host holds is never written.
 */
export class LeaseRecords {
  public constructor(
    private kv: KV,
    private readonly options: LeaseRecordsOptions,
  ) {}

  /** Uses another binding of the same bucket from now on (other request timeouts). */
  public rebind(kv: KV): void {
    this.kv = kv;
  }

  /** The bucket's TTL as the server has it now (stream max_age; 0: none). */
  public async ttlMs(): Promise<number> {
    return (await this.kv.status()).ttl;
  }

  /**
   * One attempt at one shard: absent → create; held by this host (any boot of it) → update on its
   * revision; held by another host → report it. CAS races come back as `raced`.
   */
  public async claim(claim: LeaseClaim, shardId: number): Promise<ShardClaim> {
    const key = leaseKey(claim.shardCount, shardId);
    const entry = await this.kv.get(key);
    try {
      if (!entry || entry.operation !== 'PUT') {
        return { kind: 'ours', revision: await this.kv.create(key, this.record(claim, shardId)) };
      }
      const decoded = decodeRecord(ShardLeaseRecordSchema, entry.value);
      if (!decoded.ok)
        return { kind: 'held', holder: { shardId, hostId: '(unreadable record)', clusterId: null } };
      if (decoded.value.hostId !== this.options.hostId)
        return {
          kind: 'held',
          holder: { shardId, hostId: decoded.value.hostId, clusterId: decoded.value.clusterId },
        };
      return { kind: 'ours', revision: await this.renew(key, claim, shardId, entry.revision) };
    } catch (error) {
      if (isCasConflict(error)) return { kind: 'raced' };
      throw error;
    }
  }

  /**
   * Writes the record again on the revision we hold; a CAS conflict means someone wrote it since.
   * `timeoutMs` (default: the request bound) lets the lease keeper keep waiting for a reply past its
   * own deadline, which it counts in its own time (leaseStall.ts).
   */
  public renew(
    key: string,
    claim: LeaseClaim,
    shardId: number,
    revision: number,
    timeoutMs = this.options.requestTimeoutMs(),
  ): Promise<number> {
    return this.kv.update(key, this.record(claim, shardId), revision, timeoutMs);
  }

  /** Deletes a key if it is still ours; false when it is not (or NATS did not answer: it expires). */
  public async deleteIfOurs(key: string, revision: number): Promise<boolean> {
    try {
      await this.kv.delete(key, { previousSeq: revision });
      return true;
    } catch (error) {
      if (!isCasConflict(error)) {
        this.warnNotReleased(key, error);
        return false;
      }
    }
    // Our revision is stale (a renewal whose answer we missed): delete only if it is still ours.
    try {
      const entry = await this.kv.get(key);
      if (!entry || entry.operation !== 'PUT') return false;
      const record = decodeRecord(ShardLeaseRecordSchema, entry.value);
      if (!record.ok || record.value.hostId !== this.options.hostId) return false;
      await this.kv.delete(key, { previousSeq: entry.revision });
      return true;
    } catch (error) {
      this.warnNotReleased(key, error);
      return false;
    }
  }

  /** Deletes every key of this host (any boot) that is not in `keep`; returns the keys deleted. */
  public async deleteOursExcept(keep: ReadonlySet<string>): Promise<string[]> {
    const released: string[] = [];
    for await (const key of await this.kv.keys()) {
      if (keep.has(key)) continue;
      const entry = await this.kv.get(key);
      if (!entry || entry.operation !== 'PUT') continue;
      const record = decodeRecord(ShardLeaseRecordSchema, entry.value);
      if (!record.ok || record.value.hostId !== this.options.hostId) continue;
      if (await this.deleteIfOurs(key, entry.revision)) released.push(key);
    }
    return released;
  }

  private record(claim: LeaseClaim, shardId: number): string {
    const record: ShardLeaseRecord = {
      v: 1,
      shardId,
      shardCount: claim.shardCount,
      hostId: this.options.hostId,
      instanceId: this.options.instanceId,
      clusterId: claim.clusterId,
      epoch: claim.epoch,
      renewedAt: Date.now(),
    };
    return encodeRecord(record);
  }

  private warnNotReleased(key: string, error: unknown): void {
    this.options.logger.warn({ key, err: describeError(error) }, 'could not release a lease; it will expire');
  }
}
