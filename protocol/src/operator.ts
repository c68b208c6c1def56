import { z } from 'zod';
import { ShardStateSchema } from './shardStates.js';
import { HostIdSchema } from './fleet.js';
import { replySchema } from './reply.js';

/**
 * Operator ↔ MASTER over NATS (subject `fleetSubjects(bot).master`, request/reply): what the
 * `discluster` CLI sends and what the leading MASTER answers. Validated on both sides.
 */

/** A Discord snowflake as text (guild ids exceed 2^53). */
export const SnowflakeSchema = z.string().regex(/^\d{1,20}$/, 'must be a Discord id (digits)');

/** Every request the leading MASTER answers. */
export const MasterRequestSchema = z.discriminatedUnion('type', [
  z.object({ v: z.literal(1), type: z.literal('status') }),
  z.object({ v: z.literal(1), type: z.literal('which'), guildId: SnowflakeSchema }),
  /** Move the fewest shards so shares follow the hosts' weights again (new hosts get theirs). */
  z.object({ v: z.literal(1), type: z.literal('rebalance') }),
  /** Stop every cluster of the fleet; nothing restarts until `restart`. */
  z.object({ v: z.literal(1), type: z.literal('stop'), reason: z.string().max(512).optional() }),
  /**
   * `rolling: true`: restart every cluster one at a time, each resuming its sessions (deploys).
   * `rolling: false`: clear a stop (fatal error or `discluster stop`) and run the plan again.
   */
  z.object({ v: z.literal(1), type: z.literal('restart'), rolling: z.boolean() }),
  /**
   * Start a zero-downtime reshard to `shards` (default: Discord's recommendation, at least one
   * `max_concurrency` step above the running count). Answered once it started (or was refused).
   */
  z.object({
    v: z.literal(1),
    type: z.literal('reshard'),
    shards: z.number().int().positive().max(1_000_000).optional(),
  }),
  /**
   * Change the fleet's shards per cluster (a multiple of `max_concurrency`) with a rolling re-split:
   * one group of clusters per host at a time, every shard resuming. Answered once it started.
   */
  z.object({
    v: z.literal(1),
    type: z.literal('resplit'),
    shardsPerCluster: z.number().int().min(1).max(1000),
  }),
  /** Move every shard off `hostId` (each resumes elsewhere) and hold it empty until `undrain`. */
  z.object({ v: z.literal(1), type: z.literal('drain'), hostId: HostIdSchema }),
  /** Let a drained host hold shards again: MASTER rebalances, giving it its share (or its pins). */
  z.object({ v: z.literal(1), type: z.literal('undrain'), hostId: HostIdSchema }),
]);
export type MasterRequest = z.infer<typeof MasterRequestSchema>;

/** One shard in `discluster status` (docs/architecture.md "Contracts"). */
export const ShardStatusEntrySchema = z.object({
  id: z.number().int().nonnegative(),
  state: ShardStateSchema,
  ping: z.number(),
  guilds: z.number().int().nonnegative(),
});

/**
 * A cluster that gave up and what MASTER did (`failed_cluster_action`): `moved` its shards to
 * another host (the cluster is listed there now), or `held` them (they stay down until
 * `discluster rebalance`).
 */
export const ClusterFailureStatusSchema = z.object({
  /** The host it gave up on last. */
  host: HostIdSchema,
  /** Every host it gave up on, in order. */
  hosts: z.array(HostIdSchema),
  attempts: z.number().int().positive(),
  /** CONTROL's reason for the give-up. */
  reason: z.string(),
  action: z.enum(['moved', 'held']),
  /** `moved`: where its shards went; `held`: null. */
  movedTo: HostIdSchema.nullable(),
  /** Why MASTER moved or held them. */
  why: z.string(),
  at: z.number(),
});
export type ClusterFailureStatus = z.infer<typeof ClusterFailureStatusSchema>;

/** One cluster in `discluster status`. */
export const ClusterStatusEntrySchema = z.object({
  id: z.number().int().nonnegative(),
  state: z.enum(['starting', 'online', 'restarting', 'failed', 'stopped', 'missing']),
  restarts: z.number().int().nonnegative(),
  shards: z.array(ShardStatusEntrySchema),
  /** It gave up (here or on another host): what MASTER did. Absent or null: no failure stands. */
  failure: ClusterFailureStatusSchema.nullable().optional(),
});

/** One host in `discluster status`. */
export const HostStatusEntrySchema = z.object({
  id: HostIdSchema,
  role: z.enum(['active', 'standby']),
  /** online: heartbeating; lost: missed heartbeats (its shards move once its leases expire). */
  state: z.enum(['online', 'lost']),
  cores: z.number().int().positive(),
  load15: z.number().nonnegative(),
  /** Epoch of the assignment the host runs (null: none yet). */
  epoch: z.number().int().nonnegative().nullable(),
  clusters: z.array(ClusterStatusEntrySchema),
  /**
   * Another running CONTROL uses this host id too (cloned machines share the default, the
   * hostname): the instances refused, assigned nothing. Absent or null: no conflict.
   */
  conflict: z
    .object({ refusedInstanceIds: z.array(z.string()).min(1), message: z.string() })
    .nullable()
    .optional(),
  /** `discluster drain`: MASTER moved every shard off it and holds it empty until `undrain`. */
  drained: z.boolean().optional(),
  /** The host's `weight` (absent: 1). */
  weight: z.number().positive().optional(),
  /** The host's `pin_shards` as written (`0-127,256-300`); absent or null: no pin. */
  pinShards: z.string().nullable().optional(),
});

/** Progress of a reshard (`discluster status`, the status page, `discluster reshard`). */
export const ReshardProgressSchema = z.object({
  id: z.string(),
  from: z.number().int().positive(),
  to: z.number().int().positive(),
  phase: z.enum(['starting', 'switching']),
  reason: z.string(),
  /** New-generation shards READY with all their guilds received. */
  ready: z.number().int().nonnegative(),
  total: z.number().int().positive(),
  startedAt: z.number(),
  /** Estimated time until every new shard is ready, from the identify limit (ms; null: unknown). */
  etaMs: z.number().nonnegative().nullable(),
});
export type ReshardProgress = z.infer<typeof ReshardProgressSchema>;

/** Progress of a re-split (`discluster status`, the status page, `discluster resplit`). */
export const ResplitProgressSchema = z.object({
  id: z.string(),
  shardsPerCluster: z.number().int().positive(),
  reason: z.string(),
  /** Clusters of the target size serving, of all the target layout has. */
  clustersDone: z.number().int().nonnegative(),
  clustersTotal: z.number().int().nonnegative(),
  /** New clusters of the running step that are not ready yet. */
  waitingFor: z.array(z.number().int().nonnegative()),
  steps: z.number().int().nonnegative(),
  startedAt: z.number(),
  stepStartedAt: z.number(),
});
export type ResplitProgress = z.infer<typeof ResplitProgressSchema>;

/**
 * `discluster status --json`: the CLI contract of docs/architecture.md (`bot`, `shardCount`, `maxConcurrency`,
 * `master.up`, `hosts[]`) plus `epoch`, `stopped` and `source` (who answered: MASTER, or the
 * CONTROLs themselves when MASTER is down).
 */
export const FleetStatusSchema = z.object({
  bot: z.string(),
  shardCount: z.number().int().nonnegative().nullable(),
  maxConcurrency: z.number().int().positive().nullable(),
  master: z.object({ up: z.boolean() }),
  source: z.enum(['master', 'controls']),
  epoch: z.number().int().nonnegative().nullable(),
  stopped: z.object({ reason: z.string(), code: z.number().int().nullable(), at: z.number() }).nullable(),
  hosts: z.array(HostStatusEntrySchema),
  /** A reshard in progress: its new generation's progress (absent or null: none). */
  reshard: ReshardProgressSchema.nullable().optional(),
  /** The fleet's shards per cluster set by `discluster resplit` (absent or null: each host's setting). */
  shardsPerCluster: z.number().int().positive().nullable().optional(),
  /** A re-split in progress (absent or null: none). */
  resplit: ResplitProgressSchema.nullable().optional(),
  /**
   * Why MASTER refuses to place shards (overlapping pins, a pin outside the shard count): it keeps
   * the running plan until the hosts' `pin_shards` are fixed. Absent or null: no problem.
   */
  placementProblem: z.string().nullable().optional(),
});
export type FleetStatus = z.infer<typeof FleetStatusSchema>;

/** Where a guild is served (`discluster which <guildId>`). */
export const WhichResultSchema = z.object({
  guildId: SnowflakeSchema,
  shardId: z.number().int().nonnegative(),
  shardCount: z.number().int().positive(),
  clusterId: z.number().int().nonnegative().nullable(),
  hostId: HostIdSchema.nullable(),
});
export type WhichResult = z.infer<typeof WhichResultSchema>;

/** MASTER's answer to a {@link MasterRequest}; `result` depends on the request type. */
export const MasterReplySchema = replySchema({ result: z.unknown() });
export type MasterReply = z.infer<typeof MasterReplySchema>;
