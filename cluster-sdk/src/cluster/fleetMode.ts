import type { ConnectionOptions } from '@nats-io/transport-node';
import { CLUSTER_ID_ENV, type AssignMessage } from 'discluster-protocol/clusterControl';
import { DisclusterError, ErrorCode } from 'discluster-protocol/errors';
import { processControlChannel } from '../fleet/ControlChannel.js';
import { FleetLink } from '../fleet/FleetLink.js';
import { natsConnectionOptions } from '../fleet/natsAccess.js';
import { pick } from '../util/pick.js';
import { registerSecret } from '../util/redact.js';
import type { ClusterAssignment } from './ClusterOptions.js';

/** What the cluster does with what CONTROL says. */
export interface FleetHandlers {
  /** How often unanswered `hello` / `confirm` messages are repeated. */
  readonly resendMs: number;
  readonly onError: (error: Error) => void;
  readonly onDebug: (message: string) => void;
  /**
   * A newer epoch of the same assignment (or the same epoch with another `fenceAfterMs`): the
   * plan's cluster list, the gateway info and CONTROL's fence time may have moved.
   */
  readonly onUpdated: (update: FleetUpdate) => void;
  readonly onShutdown: (reason: string) => void;
  /** CONTROL could not renew the shards' leases: fence now (see `FenceMessageSchema`). */
  readonly onFence: (reason: string) => void;
  /** CONTROL renewed the shards' leases (see `KeepaliveMessageSchema`). */
  readonly onKeepalive: (epoch: number, renewedAt: number | undefined) => void;
  readonly onDisconnected: () => void;
}

/** What a later assignment may change in a running cluster. */
export interface FleetUpdate extends Pick<ClusterAssignment, 'clusterIds' | 'gateway' | 'standby'> {
  /** CONTROL's fence time, or undefined when it sends none (the cluster's own setting applies). */
  readonly fenceAfterMs: number | undefined;
}

/**
 * The fence time in force in a fleet: CONTROL derives its `fenceAfterMs` from the shard lease time
 * and it applies, except that a `fenceAfterMs` the bot set is never lengthened (a shorter own
 * setting is the bot author's choice, and fencing early is always safe). The default (10 s) does not
 * cap CONTROL's: with a longer lease (a NATS cluster) the clusters would fence on a node failover
 * that CONTROL's leases ride out.
 */
export function effectiveFenceAfterMs(own: number, fromControl: number | undefined, ownIsSet = true): number {
  if (fromControl === undefined) return own;
  return ownIsSet ? Math.min(own, fromControl) : fromControl;
}

const NOT_UNDER_PM2 =
  'new Cluster() without options.standalone runs in a Discluster fleet: discluster-control starts the ' +
  'process under pm2 and sends its assignment over the pm2 IPC channel, but this process has no IPC ' +
  'channel (process.send is undefined, so pm2 did not start it). To run a cluster on its own, pass ' +
  'options.standalone: { assignment: { clusterId, shardIds, shardCount, bot, token, gateway, clusterIds }, ' +
  "nats: { servers: 'nats://127.0.0.1:4222' } }.";

/** The cluster id CONTROL put in the environment (not a secret: it names the process). */
export function readClusterId(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[CLUSTER_ID_ENV];
  if (raw === undefined || !/^\d{1,9}$/.test(raw)) {
    const got = raw === undefined ? 'it is not set' : `got ${JSON.stringify(raw.slice(0, 20))}`;
    throw new DisclusterError(
      ErrorCode.InvalidClusterId,
      `${CLUSTER_ID_ENV} must hold this cluster's id (a non-negative integer) and ${got}. ` +
        'discluster-control sets it when it starts a cluster; a bot started with plain `pm2 start` ' +
        'has no CONTROL to talk to: run it through discluster-control, or pass options.standalone.',
    );
  }
  return Number(raw);
}

/** Opens the link to CONTROL and says hello; throws a clear error when not started by CONTROL. */
export function openFleetLink(handlers: FleetHandlers): FleetLink {
  const channel = processControlChannel();
  if (!channel) throw new DisclusterError(ErrorCode.InvalidOption, NOT_UNDER_PM2);
  const fleet = new FleetLink(channel, { clusterId: readClusterId(), resendMs: handlers.resendMs });
  fleet.on('error', handlers.onError);
  fleet.on('debug', handlers.onDebug);
  fleet.on('updated', (message) =>
    handlers.onUpdated({
      clusterIds: message.clusterIds,
      gateway: message.gateway,
      fenceAfterMs: message.fenceAfterMs,
      standby: message.standby === true,
    }),
  );
  fleet.on('shutdown', handlers.onShutdown);
  fleet.on('fence', handlers.onFence);
  fleet.on('keepalive', handlers.onKeepalive);
  fleet.on('disconnected', handlers.onDisconnected);
  fleet.start();
  return fleet;
}

/** Waits for CONTROL's assignment; the token only ever lives in memory from here on. */
export async function joinFleet(fleet: FleetLink): Promise<{
  assignment: ClusterAssignment;
  nats: ConnectionOptions;
  fenceAfterMs: number | undefined;
  /** CONTROL sends keepalives: arm the silence watch now, not at the first one. */
  keepalives: boolean;
}> {
  const first = await fleet.assignment();
  // Updates that arrived right behind the first assignment are in the latest one.
  const message = fleet.latest ?? first;
  registerSecret(message.token);
  const nats = natsConnectionOptions(message.nats, message.bot);
  return {
    // Validated once, as CONTROL's message (AssignMessageSchema): no second check here.
    assignment: toClusterAssignment(message),
    nats,
    fenceAfterMs: message.fenceAfterMs,
    keepalives: message.keepalives === true,
  };
}

function toClusterAssignment(message: AssignMessage): ClusterAssignment {
  return {
    ...pick(message, ['clusterId', 'shardIds', 'shardCount', 'bot', 'token', 'gateway', 'clusterIds']),
    standby: message.standby === true,
    ...(message.nats.kvReplicas !== undefined && { kvReplicas: message.nats.kvReplicas }),
    ...(message.sourceAddress !== undefined && { sourceAddress: message.sourceAddress }),
  };
}
