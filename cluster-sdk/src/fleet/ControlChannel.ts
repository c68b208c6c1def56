import type { ClusterToControl } from 'discluster-protocol/clusterControl';

/**
 * The link between a cluster process and CONTROL: pm2's own IPC channel between the daemon and its
 * child. An interface so the protocol logic ({@link FleetLink}) can be tested without pm2.
 */
export interface ControlChannel {
  /** Sends one message; resolves once it was handed to the OS (rejects if the channel is closed). */
  send(message: ClusterToControl): Promise<void>;
  /** Subscribes to every packet the parent sends; returns the unsubscribe. */
  onMessage(listener: (packet: unknown) => void): () => void;
  /** Subscribes to the loss of the channel (the pm2 daemon, and with it CONTROL, is gone). */
  onDisconnect(listener: () => void): () => void;
}

/**
 * The channel of this process, or null when it has no IPC parent (not started by pm2): fleet mode
 * then cannot work and the caller says how to run standalone instead.
 */
export function processControlChannel(): ControlChannel | null {
  if (typeof process.send !== 'function') return null;
  return {
    send: (message) =>
      new Promise<void>((resolve, reject) => {
        if (typeof process.send !== 'function' || !process.connected) {
          reject(new Error('the IPC channel to pm2 is closed'));
          return;
        }
        // pm2 forwards `{ type, data }` to its bus as event `type`; CONTROL listens to `process:msg`.
        process.send({ type: 'process:msg', data: message }, (error: Error | null) =>
          error ? reject(error) : resolve(),
        );
      }),
    onMessage: (listener) => {
      process.on('message', listener);
      return () => process.off('message', listener);
    },
    onDisconnect: (listener) => {
      process.on('disconnect', listener);
      return () => process.off('disconnect', listener);
    },
  };
}
