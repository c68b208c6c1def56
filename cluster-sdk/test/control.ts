/**
 * The test's side of the CONTROL ↔ cluster contract (not a test file): builds CONTROL's messages
 * and waits for the cluster's, whatever carries them (a forked child's IPC, or a real pm2 daemon).
 */
import type { AssignMessage, ClusterToControl } from 'discluster-protocol';
import { waitFor } from 'discluster-testing';

/** One cluster process as CONTROL sees it. */
export interface ControlPeer {
  /** Every message the cluster sent so far, in order. */
  readonly received: ClusterToControl[];
  /** Sends `data` as a CONTROL message (`{ topic: CLUSTER_CONTROL_TOPIC, data }`). */
  send(data: unknown): Promise<void>;
}

export interface AssignOptions {
  readonly epoch: number;
  readonly clusterId?: number;
  readonly shardIds: number[];
  readonly shardCount: number;
  readonly clusterIds?: number[];
  readonly bot: string;
  readonly token: string;
  readonly gateway: AssignMessage['gateway'];
  readonly natsServers: string[];
  /** CONTROL's fence time (derived from the lease time); absent: the cluster's own setting. */
  readonly fenceAfterMs?: number;
  /** CONTROL's kv_replicas; absent: an older CONTROL that does not send it. */
  readonly kvReplicas?: number;
}

export function assignMessage(options: AssignOptions): AssignMessage {
  return {
    v: 1,
    type: 'assign',
    epoch: options.epoch,
    clusterId: options.clusterId ?? 0,
    shardIds: options.shardIds,
    shardCount: options.shardCount,
    bot: options.bot,
    token: options.token,
    gateway: options.gateway,
    clusterIds: options.clusterIds ?? [options.clusterId ?? 0],
    nats: {
      servers: options.natsServers,
      ...(options.kvReplicas !== undefined && { kvReplicas: options.kvReplicas }),
    },
    ...(options.fenceAfterMs !== undefined && { fenceAfterMs: options.fenceAfterMs }),
  };
}

type MessageOf<T extends ClusterToControl['type']> = Extract<ClusterToControl, { type: T }>;

/**
 * The first message of `type` at index `from` or later that satisfies `predicate`; waits for it.
 * Returns it with its index, so the next wait can start after it.
 */
export async function waitForMessage<T extends ClusterToControl['type']>(
  peer: ControlPeer,
  type: T,
  options: {
    readonly from?: number;
    readonly where?: (message: MessageOf<T>) => boolean;
    readonly description: string;
    readonly timeoutMs?: number;
  },
): Promise<{ message: MessageOf<T>; index: number }> {
  let found: { message: MessageOf<T>; index: number } | undefined;
  await waitFor(
    () => {
      for (let index = options.from ?? 0; index < peer.received.length; index++) {
        const message = peer.received[index]!;
        if (message.type === type && (options.where?.(message as MessageOf<T>) ?? true)) {
          found = { message: message as MessageOf<T>, index };
          return true;
        }
      }
      return false;
    },
    { description: options.description, timeoutMs: options.timeoutMs ?? 60_000 },
  );
  return found!;
}

/** True when a status message reports every shard in `state`. */
export function allShards(state: string): (message: MessageOf<'status'>) => boolean {
  return (message) => message.shards.length > 0 && message.shards.every((shard) => shard.state === state);
}
