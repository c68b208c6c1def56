import { z } from 'zod';
import { GatewayBotSchema } from './clusterControl.js';

/**
 * Schemas of every value Discluster stores in NATS KV. Values are JSON objects tagged with a
 * format version `v`, so a later format can be told apart instead of misread. Readers validate
 * every value with these schemas and treat a mismatch as "no usable record", never as a crash.
 */

const shardId = z.number().int().nonnegative();
const shardCount = z.number().int().positive();
const epochMs = z.number().int().nonnegative();
const token = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const hostId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);

const shardInRange = (record: { shardId: number; shardCount: number }): boolean =>
  record.shardId < record.shardCount;
const shardInRangeError = { message: 'shardId must be below shardCount', path: ['shardId'] };

/** A gateway session as @discordjs/ws stores it, kept so another process can RESUME it. */
export const SessionRecordSchema = z
  .object({
    v: z.literal(1),
    sessionId: z.string().min(1),
    sequence: z.number().int().nonnegative(),
    shardId,
    shardCount,
    resumeURL: z.url({ protocol: /^wss?$/ }),
    /** When the writer last changed it (epoch ms, writer's clock; informational). */
    updatedAt: epochMs,
    /**
     * The session store that wrote it (one per process start). Writes are compare-and-set on the
     * revision the writer last saw; after a conflict, a record of its own is its own write whose
     * reply was lost, anyone else's means another owner took the shard over.
     */
    writer: token.optional(),
  })
  .refine(shardInRange, shardInRangeError);

/** A session record as stored in KV. */
export type SessionRecord = z.infer<typeof SessionRecordSchema>;

/**
 * The holder of an identify slot. Its presence is what matters (the bucket TTL ends it); the
 * fields say who took it, for debugging.
 */
export const IdentifySlotRecordSchema = z
  .object({
    v: z.literal(1),
    shardId,
    shardCount,
    instanceId: token,
    /** When the slot was taken (epoch ms, writer's clock; informational). */
    at: epochMs,
  })
  .refine(shardInRange, shardInRangeError);

/** An identify slot record as stored in KV. */
export type IdentifySlotRecord = z.infer<typeof IdentifySlotRecordSchema>;

/** A shard waiting for IDENTIFY permission; lower shard ids of one rate-limit key go first. */
export const IdentifyWaiterRecordSchema = z
  .object({
    v: z.literal(1),
    shardId,
    shardCount,
    rateLimitKey: z.number().int().nonnegative(),
    instanceId: token,
    waiterId: token,
  })
  .refine(shardInRange, shardInRangeError);

/** An identify waiter record as stored in KV. */
export type IdentifyWaiterRecord = z.infer<typeof IdentifyWaiterRecordSchema>;

/**
 * The daily session-start budget (`session_start_limit` of `GET /gateway/bot`), decremented with
 * compare-and-set for every IDENTIFY the fleet allows.
 */
export const BudgetRecordSchema = z
  .object({
    v: z.literal(1),
    total: z.number().int().nonnegative(),
    remaining: z.number().int().nonnegative(),
    /** When Discord resets `remaining` to `total` (epoch ms, computed from `reset_after`). */
    resetAt: epochMs,
    maxConcurrency: z.number().int().positive(),
    updatedAt: epochMs,
  })
  .refine((record) => record.remaining <= record.total, {
    message: 'remaining must not exceed total',
    path: ['remaining'],
  });

/** Who last claimed the budget refresh, and when (see `budgetRefreshKey`). */
export const BudgetRefreshClaimSchema = z.object({
  v: z.literal(1),
  instanceId: z.string().min(1).max(64),
  at: epochMs,
});

/** A budget refresh claim as stored in KV. */
export type BudgetRefreshClaim = z.infer<typeof BudgetRefreshClaimSchema>;

/** A budget record as stored in KV. */
export type BudgetRecord = z.infer<typeof BudgetRecordSchema>;

/** Result of {@link decodeRecord}. */
export type DecodeResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

/**
 * Parses JSON bytes or text and validates them with `schema`. Never throws: a bad value is
 * reported as `{ ok: false, error }` with a one-line reason.
 */
export function decodeRecord<T>(schema: z.ZodType<T>, data: Uint8Array | string): DecodeResult<T> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data));
  } catch (error) {
    return { ok: false, error: `not JSON (${error instanceof Error ? error.message : String(error)})` };
  }
  const result = schema.safeParse(parsed);
  if (result.success) return { ok: true, value: result.data };
  const issues = result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
  return { ok: false, error: issues.join('; ') };
}

/** Serialises a record for KV (the inverse of {@link decodeRecord}). */
export function encodeRecord<T>(record: T): string {
  return JSON.stringify(record);
}

/**
 * Who owns a shard (promise 2), in the lease bucket. CONTROL creates it before a cluster of its
 * host starts the shard and renews it by compare-and-set; the bucket TTL ends it when renewals
 * stop. Another host may take the shard only once the key is gone.
 */
export const ShardLeaseRecordSchema = z
  .object({
    v: z.literal(1),
    shardId,
    shardCount,
    hostId,
    /** The CONTROL boot that wrote it (a restarted CONTROL of the same host takes its leases over). */
    instanceId: z.string().min(8).max(64),
    clusterId: z.number().int().nonnegative(),
    epoch: z.number().int().nonnegative(),
    /** When it was last renewed (epoch ms, writer's clock; informational: expiry is server-side). */
    renewedAt: epochMs,
  })
  .refine(shardInRange, shardInRangeError);

/** A shard lease as stored in KV. */
export type ShardLeaseRecord = z.infer<typeof ShardLeaseRecordSchema>;

/** MASTER leadership (high availability): the leader renews it; a standby takes it once it expired. */
export const LeaderRecordSchema = z.object({
  v: z.literal(1),
  instanceId: z.string().min(8).max(64),
  /** Where the leader runs (informational). */
  hostname: z.string().max(255),
  since: epochMs,
  renewedAt: epochMs,
});

/** A leadership record as stored in KV. */
export type LeaderRecord = z.infer<typeof LeaderRecordSchema>;

const plannedCluster = z.object({
  clusterId: z.number().int().nonnegative(),
  shardIds: z.array(shardId).min(1),
});

/**
 * A cluster that gave up (CONTROL's `cluster.failed`) and what MASTER did about it
 * (`failed_cluster_action`, issue 17 §1): `moved` its shards to `movedTo`, or `held` them where they
 * are. Kept in the plan record, so a MASTER that takes over knows it, until an operator clears it
 * (`discluster rebalance` or `discluster restart`).
 */
export const ClusterFailureRecordSchema = z.object({
  clusterId: z.number().int().nonnegative(),
  shardIds: z.array(shardId).min(1),
  /** The host it gave up on last. */
  hostId,
  /** Every host it gave up on, in order. */
  failedOn: z.array(hostId).min(1),
  /** Failed starts in a row before that give-up. */
  attempts: z.number().int().positive(),
  /** CONTROL's reason for that give-up (the process's own words, redacted). */
  reason: z.string().max(1024),
  action: z.enum(['moved', 'held']),
  /** `moved`: the host its shards were planned onto; `held`: null. */
  movedTo: hostId.nullable(),
  /** Why MASTER moved or held them, in words. */
  why: z.string().max(1024),
  at: epochMs,
});

/** A cluster failure as stored in the plan record. */
export type ClusterFailureRecord = z.infer<typeof ClusterFailureRecordSchema>;

/**
 * MASTER's running plan, in the master bucket: which host runs which clusters under which epoch.
 * A MASTER restarted or replaced reads it and commands nothing new, so no shard moves. Written
 * with compare-and-set, so a deposed leader cannot overwrite its successor's plan.
 */
export const PlanRecordSchema = z.object({
  v: z.literal(1),
  epoch: z.number().int().nonnegative(),
  shardCount,
  gateway: GatewayBotSchema,
  /** hostId → the clusters it runs (a host without shards has `[]`). */
  hosts: z.record(hostId, z.array(plannedCluster)),
  /** The next unused cluster id (ids are never reused within a shard count). */
  nextClusterId: z.number().int().nonnegative(),
  /**
   * A reshard in progress (issue 7): a second generation of clusters under another shard count,
   * started beside this plan's and switched to once every new shard is ready. Absent or null: none.
   */
  reshard: z
    .object({
      /** Random id; names the handover's subjects and KV keys. */
      id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
      shardCount,
      /** `starting`: the new generation identifies beside the old; `switching`: the handover runs. */
      phase: z.enum(['starting', 'switching']),
      /** hostId → the new generation's clusters (ids disjoint from the running plan's). */
      hosts: z.record(hostId, z.array(plannedCluster)),
      reason: z.string().max(1024),
      startedAt: epochMs,
    })
    .nullable()
    .optional(),
  /**
   * Shards per cluster for the whole fleet, set by `discluster resplit` (a whole multiple of
   * `max_concurrency`); new clusters are split with it. Absent: each host's `shards_per_cluster`.
   */
  clusterSize: z.number().int().min(1).max(1000).optional(),
  /**
   * A rolling re-split in progress (`discluster resplit`): one group of clusters per host at a time
   * is replaced by clusters of `clusterSize` shards, whose shards RESUME; the next group goes once
   * `waitingFor` all reported ready. Absent or null: none.
   */
  resplit: z
    .object({
      id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
      shardsPerCluster: z.number().int().min(1).max(1000),
      reason: z.string().max(1024),
      startedAt: epochMs,
      /** Clusters started by the last step (new ids); the next step waits for their shards. */
      waitingFor: z.array(z.number().int().nonnegative()),
      stepStartedAt: epochMs,
      /** Steps taken so far. */
      steps: z.number().int().nonnegative(),
    })
    .nullable()
    .optional(),
  /**
   * Hosts an operator drained (`discluster drain`): they hold no shards until `undrain`. Kept in
   * the plan so a MASTER that takes over keeps them drained. Absent: none.
   */
  drained: z.array(hostId).optional(),
  /** Clusters that gave up, and whether their shards were moved or held (absent: none). */
  failures: z.array(ClusterFailureRecordSchema).optional(),
  /** Set when the fleet was stopped (fatal gateway error or `discluster stop`); nothing runs until cleared. */
  stopped: z
    .object({ reason: z.string().max(1024), code: z.number().int().nullable(), at: epochMs })
    .nullable(),
  updatedAt: epochMs,
});

/** A plan record as stored in KV. */
export type PlanRecord = z.infer<typeof PlanRecordSchema>;
