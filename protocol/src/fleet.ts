import { z } from 'zod';
import { GatewayBotSchema, ShardStatusSchema } from './clusterControl.js';
import { HostPublicKeySchema, SealedBoxSchema } from './sealedToken.js';
import { replySchema } from './reply.js';
import { ShardRangesSchema } from './shardRanges.js';

/**
 * The MASTER ↔ CONTROL contract over NATS (subjects in {@link fleetSubjects}). Every message is
 * JSON with `v: 1` and is validated with these schemas on arrival; an invalid one is logged and
 * dropped (or answered with `InvalidMessage`), never obeyed.
 *
 * - CONTROL → MASTER: `announce` (request; MASTER's `ok` reply means "accepted, wait for an
 *   assignment"), `heartbeat` (publish, same facts), events `cluster.failed` and `fatal`.
 * - MASTER → one CONTROL: `assign`, `revoke`, `stop-all`, `rolling-restart` (request/reply,
 *   answered with a {@link FleetReply}); `stop-all` may also be published to every host.
 *
 * The bot token only ever travels sealed for the receiving host's announced key (sealedToken.ts).
 */

/** Host ids become subject tokens: the same rule as the `host_id` setting. */
export const HostIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const clusterId = z.number().int().nonnegative();
const shardId = z.number().int().nonnegative();
const epoch = z.number().int().nonnegative();
const reason = z.string().max(512);

/**
 * The CONTROL boot (`instanceId` of its announce) a command is for. Both CONTROLs of a duplicated
 * `host_id` receive the host's commands; the one MASTER refused ignores those naming the other.
 * Optional: CONTROLs and MASTERs before it neither send nor check it.
 */
const targetInstance = z.string().min(8).max(64).optional();

/** A cluster as CONTROL supervises it. */
export const ClusterReportSchema = z.object({
  clusterId,
  /** starting: launched, not ready yet; online: reported its shards; failed: given up (see `cluster.failed`). */
  state: z.enum(['starting', 'online', 'restarting', 'failed', 'stopped']),
  /** Restarts since the assignment (crashes and failed starts). */
  restarts: z.number().int().nonnegative(),
  shardIds: z.array(shardId),
  /** The cluster's last shard report, if it sent one. */
  shards: z.array(ShardStatusSchema).optional(),
});
export type ClusterReport = z.infer<typeof ClusterReportSchema>;

const hostFacts = {
  v: z.literal(1),
  hostId: HostIdSchema,
  /** Random per CONTROL boot: MASTER tells a restarted CONTROL (new key, no clusters) from the old one. */
  instanceId: z.string().min(8).max(64),
  role: z.enum(['active', 'standby']),
  cores: z.number().int().positive(),
  /** 15-minute load average (`os.loadavg()[2]`). */
  load15: z.number().nonnegative(),
  memory: z.object({ total: z.number().nonnegative(), free: z.number().nonnegative() }),
  /** The host's `shards_per_cluster` setting: MASTER passes it to `splitIntoClusters` for this host. */
  shardsPerCluster: z.number().int().positive(),
  /**
   * The host's `pin_shards`: it serves exactly these shards. Absent or null (CONTROLs before
   * placement): no pin.
   */
  pinShards: ShardRangesSchema.nullable().optional(),
  /** The host's `weight`, a multiplier on its share. Absent (CONTROLs before placement): 1. */
  weight: z.number().gt(0).max(1000).optional(),
  /** discluster-control's package version. */
  version: z.string().min(1).max(64),
  /** X25519 key MASTER seals the bot token to (fresh each boot). */
  publicKey: HostPublicKeySchema,
  /** Epoch of the assignment the host runs, null before its first one. */
  epoch: epoch.nullable(),
  clusters: z.array(ClusterReportSchema),
  /** Sender's clock (ms since epoch), for display only: never compare clocks across hosts. */
  sentAt: z.number().int().nonnegative(),
};

/** CONTROL → MASTER: "I exist" (request/reply; retried every `retry_ms` until MASTER answers ok). */
export const HostAnnounceSchema = z.object({ ...hostFacts, type: z.literal('announce') });
export type HostAnnounce = z.infer<typeof HostAnnounceSchema>;

/** CONTROL → MASTER: periodic state (publish). Same facts as the announce. */
export const HostHeartbeatSchema = z.object({ ...hostFacts, type: z.literal('heartbeat') });
export type HostHeartbeat = z.infer<typeof HostHeartbeatSchema>;

/** One cluster of an assignment: MASTER numbers clusters so ids are unique across the fleet. */
export const ClusterAssignmentSchema = z.object({ clusterId, shardIds: z.array(shardId).min(1) });
export type ClusterAssignment = z.infer<typeof ClusterAssignmentSchema>;

/** MASTER → one CONTROL: run exactly these clusters (replacing any earlier assignment). */
export const AssignCommandSchema = z
  .object({
    v: z.literal(1),
    type: z.literal('assign'),
    /** Plan epoch; CONTROL refuses one lower than the epoch it runs. */
    epoch,
    hostId: HostIdSchema,
    instanceId: targetInstance,
    shardCount: z.number().int().positive(),
    gateway: GatewayBotSchema,
    /** This host's clusters, numbered by MASTER. */
    clusters: z.array(ClusterAssignmentSchema),
    /** Every cluster id of the whole plan (for cluster-to-cluster IPC). */
    clusterIds: z.array(clusterId).min(1),
    /** The bot token sealed for this host's announced key, context `tokenContext(bot, hostId, epoch)`. */
    token: SealedBoxSchema,
    /**
     * During a reshard: this host's clusters of the new generation, run beside `clusters` in
     * standby (they identify and warm up but deliver no event until the handover).
     */
    next: z
      .object({
        reshardId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
        shardCount: z.number().int().positive(),
        clusters: z.array(ClusterAssignmentSchema),
        clusterIds: z.array(clusterId).min(1),
      })
      .optional(),
  })
  .superRefine((command, ctx) => {
    const generations = [
      { ...command, path: 'clusters' },
      ...(command.next ? [{ ...command.next, path: 'next' }] : []),
    ];
    const ids = new Set<number>();
    for (const generation of generations) {
      const seen = new Set<number>();
      for (const cluster of generation.clusters) {
        if (!generation.clusterIds.includes(cluster.clusterId))
          ctx.addIssue({ code: 'custom', message: 'cluster not in clusterIds', path: [generation.path] });
        if (ids.has(cluster.clusterId))
          ctx.addIssue({ code: 'custom', message: 'cluster id repeated', path: [generation.path] });
        ids.add(cluster.clusterId);
        for (const id of cluster.shardIds) {
          if (id >= generation.shardCount || seen.has(id))
            ctx.addIssue({
              code: 'custom',
              message: `shard ${id} out of range or repeated`,
              path: [generation.path],
            });
          seen.add(id);
        }
      }
    }
  });
export type AssignCommand = z.infer<typeof AssignCommandSchema>;

/** MASTER → one CONTROL: stop these clusters (closing their shards for resume elsewhere). */
export const RevokeCommandSchema = z.object({
  v: z.literal(1),
  type: z.literal('revoke'),
  epoch,
  instanceId: targetInstance,
  clusterIds: z.array(clusterId).min(1),
  reason,
});

/** MASTER → CONTROL(s): stop every cluster (fatal gateway error, `discluster stop`). */
export const StopAllCommandSchema = z.object({ v: z.literal(1), type: z.literal('stop-all'), reason });

/** MASTER → one CONTROL: restart its clusters one at a time, each resuming its sessions. */
export const RollingRestartCommandSchema = z.object({
  v: z.literal(1),
  type: z.literal('rolling-restart'),
  epoch,
  instanceId: targetInstance,
});

/** Every MASTER → CONTROL command. */
export const HostCommandSchema = z.discriminatedUnion('type', [
  AssignCommandSchema,
  RevokeCommandSchema,
  StopAllCommandSchema,
  RollingRestartCommandSchema,
]);
export type HostCommand = z.infer<typeof HostCommandSchema>;

/** Answer to an announce or a command. `error.code` is an `ErrorCode`. */
export const FleetReplySchema = replySchema({ epoch: epoch.nullable().optional() });
export type FleetReply = z.infer<typeof FleetReplySchema>;

/** A CONTROL event about one of its clusters: the host and cluster, `details`, then why. */
function clusterEvent<T extends string, S extends z.ZodRawShape>(type: T, details: S) {
  return z.object({
    v: z.literal(1),
    type: z.literal(type),
    hostId: HostIdSchema,
    clusterId,
    ...details,
    reason,
  });
}

/** CONTROL → everyone: a cluster failed to start `attempts` times in a row; it is not restarted. */
export const ClusterFailedEventSchema = clusterEvent('cluster.failed', {
  attempts: z.number().int().positive(),
});
export type ClusterFailedEvent = z.infer<typeof ClusterFailedEventSchema>;

/** CONTROL → MASTER: a shard closed with a fatal gateway code; MASTER stops the fleet. */
export const FatalEventSchema = clusterEvent('fatal', { shardId, code: z.number().int() });
export type FatalEvent = z.infer<typeof FatalEventSchema>;

/** Every fleet event. */
export const FleetEventSchema = z.discriminatedUnion('type', [ClusterFailedEventSchema, FatalEventSchema]);
export type FleetEvent = z.infer<typeof FleetEventSchema>;
