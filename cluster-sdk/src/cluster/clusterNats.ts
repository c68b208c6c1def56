import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';

/**
 * The cluster's NATS connection: the one bot code passed in (`owned: false`: the cluster never
 * closes it), or a new one from connection options with the settings fencing relies on.
 */
export async function connectClusterNats(
  nats: ConnectionOptions | NatsConnection,
  clusterId: number,
): Promise<{ readonly nc: NatsConnection; readonly owned: boolean }> {
  if ('publish' in nats && typeof nats.publish === 'function') return { nc: nats, owned: false };
  const nc = await connect({
    // Never give up reconnecting: fencing, not a dead connection, is how NATS loss is handled.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    // The client otherwise builds two stack-capturing Errors per request in case it fails; IPC
    // latency halves without them (bench/results/sdk.md). Errors still carry a message and code.
    noAsyncTraces: true,
    // A link that silently stops forwarding (a cut-off machine) gives no socket error; without
    // frequent pings the client would keep the dead socket for minutes after the network heals.
    pingInterval: 5_000,
    maxPingOut: 2,
    name: `discluster-cluster-${clusterId}`,
    ...(nats as ConnectionOptions),
  });
  return { nc, owned: true };
}

/** A started cluster's NATS connection. */
export interface ClusterNats {
  readonly nc: NatsConnection;
  /** Drains the connection if the cluster opened it; one bot code passed in stays open. */
  close(): Promise<void>;
}

/**
 * Connects (see {@link connectClusterNats}) and calls `onClosed` once the connection closes for good
 * (nats.js gives up after repeated auth errors: rotated credentials, an expired JWT).
 */
export async function openClusterNats(
  nats: ConnectionOptions | NatsConnection,
  clusterId: number,
  onClosed: (error: Error | void) => void,
): Promise<ClusterNats> {
  const { nc, owned } = await connectClusterNats(nats, clusterId);
  void nc.closed().then(onClosed);
  return {
    nc,
    close: async () => {
      if (owned) await nc.drain().catch(() => nc.close());
    },
  };
}
