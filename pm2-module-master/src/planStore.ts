import type { KV } from '@nats-io/kv';
import {
  DisclusterError,
  ErrorCode,
  PlanRecordSchema,
  decodeRecord,
  encodeRecord,
  planKey,
  type PlanRecord,
} from 'discluster-protocol';
import { isCasConflict } from 'discluster-runtime';

/** The plan as stored, with the revision a compare-and-set write must name. */
export interface StoredPlan {
  readonly plan: PlanRecord;
  readonly revision: number;
}

/**
 * MASTER's plan in KV (issue 5 §3): read on election, so a restarted or replaced MASTER picks up
 * the running plan without moving a shard, and written only by compare-and-set, so a MASTER that
 * lost the leadership without noticing cannot overwrite its successor's plan.
 */
export class PlanStore {
  public constructor(private readonly kv: KV) {}

  /** The stored plan, or null if there is none. A record that fails validation is an error, never "no plan". */
  public async load(): Promise<StoredPlan | null> {
    const entry = await this.kv.get(planKey());
    if (!entry || entry.operation !== 'PUT') return null;
    const decoded = decodeRecord(PlanRecordSchema, entry.value);
    if (!decoded.ok)
      throw new DisclusterError(
        ErrorCode.InvalidRecord,
        `the stored plan (KV key ${planKey()}) is invalid: ${decoded.error}. MASTER will not overwrite it; ` +
          'delete it (`nats kv del`) to plan from scratch.',
      );
    return { plan: decoded.value, revision: entry.revision };
  }

  /**
   * Writes `plan` if the stored one is still at `revision` (0: there must be none). Throws
   * `DISCLUSTER_ERR_STALE_EPOCH` when another MASTER wrote meanwhile.
   */
  public async save(plan: PlanRecord, revision: number): Promise<number> {
    const data = encodeRecord(plan);
    try {
      return revision === 0
        ? await this.kv.create(planKey(), data)
        : await this.kv.update(planKey(), data, revision);
    } catch (error) {
      if (isCasConflict(error))
        throw new DisclusterError(
          ErrorCode.StaleEpoch,
          'the plan changed in KV under this MASTER: another MASTER is leading; not overwriting it',
        );
      throw error;
    }
  }
}
