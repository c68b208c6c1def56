import net from 'node:net';

export interface TcpProxyHandle {
  /** `host:port` clients should dial instead of the target. */
  readonly port: number;
  readonly url: (scheme: string) => string;
  /**
   * Cuts the link. `blackhole` keeps sockets open but drops every byte both ways (a machine cut off
   * by the network: no error, no close); `reset` destroys every socket and refuses new ones.
   */
  cut(mode?: 'blackhole' | 'reset'): void;
  /** Forwards again; new connections get through (blackholed sockets stay dead, as after a partition). */
  restore(): void;
  readonly isCut: boolean;
  close(): Promise<void>;
}

/**
 * A loopback TCP proxy a test can cut, to make a process lose NATS (or any server) while both
 * stay alive.
 */
export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxyHandle> {
  const sockets = new Set<net.Socket>();
  let cutMode: 'blackhole' | 'reset' | null = null;
  const blackholed = new Set<net.Socket>();

  const server = net.createServer((client) => {
    if (cutMode !== null) {
      // While cut, a new connection is as dead as the old ones.
      if (cutMode === 'reset') client.destroy();
      else blackhole(client);
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
    }
    client.on('data', (chunk) => {
      if (!blackholed.has(client)) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!blackholed.has(client)) client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });

  function blackhole(socket: net.Socket): void {
    blackholed.add(socket);
    sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      sockets.delete(socket);
      blackholed.delete(socket);
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    url: (scheme) => `${scheme}://127.0.0.1:${port}`,
    get isCut() {
      return cutMode !== null;
    },
    cut(mode = 'blackhole') {
      cutMode = mode;
      for (const socket of [...sockets]) {
        if (mode === 'reset') socket.destroy();
        else blackholed.add(socket);
      }
    },
    restore() {
      cutMode = null;
      // Blackholed sockets never recover: the client must notice and reconnect, as after a real partition.
      for (const socket of [...blackholed]) socket.destroy();
    },
    async close() {
      for (const socket of [...sockets]) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
