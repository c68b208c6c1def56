import { z } from 'zod';
import { ShardStateSchema } from './shardStates.js';
import { isIpLiteral } from './sourceAddresses.js';

/**
 * Messages between CONTROL and the cluster processes it starts, carried by pm2's own IPC (the
 * local channel between the pm2 daemon and its child), never by NATS or the environment: this is
 * how the bot token reaches a cluster without appearing in `pm2 env`, `pm2 jlist`, argv or logs.
 *
 * - CONTROL → cluster: `pm2.sendDataToProcessId(pmId, { topic, data, type: 'process:msg' })`; the
 *   child receives `{ topic, data }` on `process.on('message')`.
 * - cluster → CONTROL: `process.send({ type: 'process:msg', data })`; CONTROL reads it on the pm2
 *   bus as `process:msg` with `data` as sent.
 *
 * Every message is validated on arrival; an invalid one is dropped with an error, never obeyed.
 */

/** The `topic` of every CONTROL → cluster message. */
export const CLUSTER_CONTROL_TOPIC = 'discluster:control';

/** Environment variable CONTROL sets on each cluster process: its cluster id (not a secret). */
export const CLUSTER_ID_ENV = 'DISCLUSTER_CLUSTER_ID';

const clusterId = z.number().int().nonnegative();
const shardId = z.number().int().nonnegative();
const epoch = z.number().int().nonnegative();

/** How a cluster reaches NATS (same keys as the modules' `nats_*` settings) and replicates its KV. */
export const NatsAccessSchema = z.object({
  servers: z.array(z.string().min(1)).min(1),
  /**
   * CONTROL's `kv_replicas`: the JetStream replicas of every KV bucket the cluster opens. Absent
   * (a CONTROL older than the setting): 1.
   */
  kvReplicas: z.number().int().min(1).max(5).optional(),
  token: z.string().optional(),
  user: z.string().optional(),
  pass: z.string().optional(),
  /** Contents of a `.creds` file (not its path: the cluster may run as another user). */
  creds: z.string().optional(),
  tls: z
    .object({ ca: z.string().optional(), cert: z.string().optional(), key: z.string().optional() })
    .optional(),
});
export type NatsAccess = z.infer<typeof NatsAccessSchema>;

/** `GET /gateway/bot` as the fleet last saw it, with when and where MASTER fetched it. */
export const GatewayBotSchema = z.object({
  url: z.string().min(1),
  shards: z.number().int().positive(),
  session_start_limit: z.object({
    total: z.number().int().nonnegative(),
    remaining: z.number().int().nonnegative(),
    reset_after: z.number().nonnegative(),
    max_concurrency: z.number().int().positive(),
  }),
  /**
   * When the answer arrived (epoch ms). `reset_after` counts from then: a plan hours old must not
   * be read as today's budget. Absent from older MASTERs.
   */
  fetchedAt: z.number().int().nonnegative().optional(),
  /** The REST base it came from (`discord_api`), so clusters can fetch fresh data themselves. */
  api: z.string().url().optional(),
  /**
   * The bot's global REST limit the whole fleet shares (MASTER's `rest_global_per_second`). Absent
   * (older MASTERs, a standalone cluster that does not say): Discord's default, 50.
   */
  restGlobalPerSecond: z.number().int().positive().max(100_000).optional(),
});

/** The shards a cluster runs and what it needs to run them: the same whether CONTROL sends it or bot code passes it. */
const assignmentFields = {
  clusterId,
  shardIds: z.array(shardId).min(1, 'expected a non-empty array of shard ids'),
  shardCount: z.number().int().positive(),
  bot: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  token: z.string().min(1, 'expected the bot token'),
  gateway: GatewayBotSchema,
  clusterIds: z.array(clusterId).min(1),
  /**
   * The local address this cluster binds its gateway and REST sockets to (CONTROL's
   * `source_addresses`, round-robin by cluster id). Absent: the operating system picks.
   */
  sourceAddress: z.string().refine(isIpLiteral, 'expected an IPv4 or IPv6 address literal').optional(),
};

/** Shard ids below the shard count, each listed once (issues point at the offending id). */
function checkShardIds(
  assignment: { readonly shardIds: readonly number[]; readonly shardCount: number },
  ctx: z.RefinementCtx,
): void {
  const seen = new Set<number>();
  assignment.shardIds.forEach((id, index) => {
    if (id >= assignment.shardCount)
      ctx.addIssue({
        code: 'custom',
        path: ['shardIds', index],
        message: 'every shard id must be below shardCount',
      });
    if (seen.has(id))
      ctx.addIssue({ code: 'custom', path: ['shardIds'], message: `shard ${id} is listed twice` });
    seen.add(id);
  });
}

/**
 * A cluster's assignment as bot code passes it to a standalone cluster (`options.standalone`); the
 * SDK validates it with this schema only. In a fleet it arrives inside {@link AssignMessageSchema}.
 */
export const AssignmentSchema = z
  .object({
    ...assignmentFields,
    standby: z.boolean().optional(),
    kvReplicas: z.number().int().min(1).max(5).optional(),
  })
  .superRefine(checkShardIds);

/** CONTROL → cluster: what to run. Sent when the process asks (`hello`) and after any change. */
export const AssignMessageSchema = z
  .object({
    v: z.literal(1),
    type: z.literal('assign'),
    /** MASTER's plan epoch: a cluster ignores an assignment older than the one it runs. */
    epoch,
    ...assignmentFields,
    nats: NatsAccessSchema,
    /**
     * Fence after this long without NATS (CONTROL derives it from the shard lease time so a cut-off
     * cluster closes its shards before its leases can expire). Absent: the cluster's own setting.
     */
    fenceAfterMs: z.number().int().min(100).optional(),
    /**
     * A new-generation cluster of a reshard: its shards identify and warm up, but it delivers no
     * event to bot code (beyond its own READY and guild loading) until MASTER's handover.
     */
    standby: z.boolean().optional(),
    /**
     * CONTROL sends `keepalive` in every lease renewal round: the cluster arms its silence watch
     * from this assignment, so a CONTROL that dies before its first keepalive still fences it.
     * Absent (older CONTROLs): armed by the first keepalive.
     */
    keepalives: z.boolean().optional(),
  })
  .superRefine(checkShardIds);
export type AssignMessage = z.infer<typeof AssignMessageSchema>;

/** CONTROL → cluster: answer to `confirm` after a fence: may the cluster reconnect its shards? */
export const ConfirmReplySchema = z.object({
  v: z.literal(1),
  type: z.literal('confirm-reply'),
  epoch,
  confirmed: z.boolean(),
});

/** CONTROL → cluster: close shards for resume and exit (rolling restart, revoke, stop-all). */
export const ShutdownMessageSchema = z.object({
  v: z.literal(1),
  type: z.literal('shutdown'),
  reason: z.string().max(512),
});

/**
 * CONTROL → cluster: close every shard for resume now and wait for a `confirm-reply` (CONTROL
 * could not renew the shards' leases: another host may take them over once they expire).
 */
export const FenceMessageSchema = z.object({
  v: z.literal(1),
  type: z.literal('fence'),
  reason: z.string().max(512),
});

/**
 * CONTROL → cluster: the leases of this cluster's shards were renewed; sent in every renewal round
 * (every TTL/8) as soon as all of this cluster's leases were renewed, by requests sent at most a
 * quarter of the lease time earlier, and when CONTROL adopts a running cluster. A cluster that got one
 * expects them from then on: none for its fence time (`fenceAfterMs`) means CONTROL is down or hung
 * and nobody renews its leases, so it fences as on `fence`. A cluster that never got one (CONTROL
 * older than this message) does not watch for them. Kept tiny: it goes over pm2 IPC every few
 * seconds per cluster. `epoch` is CONTROL's plan epoch, for logs only.
 */
export const KeepaliveMessageSchema = z.object({
  v: z.literal(1),
  type: z.literal('keepalive'),
  epoch,
  /**
   * When the oldest renewal request behind this keepalive was sent (wall clock, ms; CONTROL and
   * its clusters share the machine's clock). The cluster counts its fence time from here, not from
   * when it read the message: one read late (the cluster stalled) vouches for no more than it
   * should, and one that waited in the socket while the cluster's timers ran first still counts.
   * Absent (older CONTROLs, an adopted cluster's first one): from when it is read.
   */
  renewedAt: z.number().int().nonnegative().optional(),
});

/** Every CONTROL → cluster message. */
export const ControlToClusterSchema = z.union([
  AssignMessageSchema,
  ConfirmReplySchema,
  ShutdownMessageSchema,
  FenceMessageSchema,
  KeepaliveMessageSchema,
]);
export type ControlToCluster = z.infer<typeof ControlToClusterSchema>;

/** One shard's state as a cluster reports it (and CONTROL forwards it to MASTER). */
export const ShardStatusSchema = z.object({
  id: shardId,
  state: ShardStateSchema,
  ping: z.number(),
  guilds: z.number().int().nonnegative(),
  events: z.number().int().nonnegative(),
  waitingReason: z.string().nullable(),
  lastCloseCode: z.number().int().nullable(),
  /** Guilds of the READY payload not yet received as GUILD_CREATE (0 once the shard has them all). */
  loadingGuilds: z.number().int().nonnegative().optional(),
});

/** Every cluster → CONTROL message (the `data` of a pm2 `process:msg`). */
export const ClusterToControlSchema = z.discriminatedUnion('type', [
  /** The process is up and asks for its assignment. */
  z.object({ v: z.literal(1), type: z.literal('hello'), clusterId }),
  /** Per-shard state, sent on change (coalesced) and periodically. */
  z.object({
    v: z.literal(1),
    type: z.literal('status'),
    clusterId,
    epoch,
    shards: z.array(ShardStatusSchema),
  }),
  /** A shard closed with a fatal code: the fleet must stop, not restart. */
  z.object({
    v: z.literal(1),
    type: z.literal('fatal'),
    clusterId,
    shardId,
    code: z.number().int(),
    reason: z.string().max(512),
  }),
  /** Shards are closed: NATS was unreachable for the fence time, or CONTROL sent `fence`. */
  z.object({ v: z.literal(1), type: z.literal('fenced'), clusterId, epoch }),
  /** NATS is back: may the shards reconnect under this epoch? */
  z.object({ v: z.literal(1), type: z.literal('confirm'), clusterId, epoch }),
]);
export type ClusterToControl = z.infer<typeof ClusterToControlSchema>;
