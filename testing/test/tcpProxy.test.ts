import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startTcpProxy, type TcpProxyHandle } from '../src/tcpProxy';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** An echo server on loopback. */
async function echoServer(): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as net.AddressInfo).port;
}

async function proxyTo(port: number): Promise<TcpProxyHandle> {
  const proxy = await startTcpProxy(port);
  closers.push(() => proxy.close());
  return proxy;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
    closers.push(async () => {
      socket.destroy();
    });
  });
}

function echo(socket: net.Socket, text: string, waitMs = 2000): Promise<string | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.off('data', onData);
      resolve(null);
    }, waitMs);
    const onData = (chunk: Buffer): void => {
      clearTimeout(timer);
      resolve(chunk.toString());
    };
    socket.once('data', onData);
    socket.write(text);
  });
}

describe('startTcpProxy', () => {
  it('forwards both ways until cut', async () => {
    const proxy = await proxyTo(await echoServer());
    const socket = await connect(proxy.port);
    await expect(echo(socket, 'ping')).resolves.toBe('ping');
    expect(proxy.url('nats')).toBe(`nats://127.0.0.1:${proxy.port}`);
  });

  it('blackhole: the socket stays open but nothing gets through; restore lets new connections work', async () => {
    const proxy = await proxyTo(await echoServer());
    const socket = await connect(proxy.port);
    let closed = false;
    socket.on('close', () => (closed = true));
    proxy.cut('blackhole');
    expect(proxy.isCut).toBe(true);
    // A liveness bound, not a performance check: silence is what a cut link looks like.
    await expect(echo(socket, 'lost', 300)).resolves.toBeNull();
    expect(closed).toBe(false);
    proxy.restore();
    expect(proxy.isCut).toBe(false);
    const fresh = await connect(proxy.port);
    await expect(echo(fresh, 'again')).resolves.toBe('again');
  });

  it('reset: sockets are destroyed and new ones refused while cut', async () => {
    const proxy = await proxyTo(await echoServer());
    const socket = await connect(proxy.port);
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => {});
    proxy.cut('reset');
    await closed;
    const refused = await new Promise<boolean>((resolve) => {
      const attempt = net.connect(proxy.port, '127.0.0.1');
      attempt.on('error', () => resolve(true));
      attempt.on('close', () => resolve(true));
      attempt.on('data', () => resolve(false));
    });
    expect(refused).toBe(true);
  });
});
