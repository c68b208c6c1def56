import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startNatsServer, type NatsServerHandle } from '../src/index.js';

/** Connects a raw TCP socket and returns the JSON of the server's first (INFO) line. */
function readInfo(port: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let received = '';
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      received += chunk.toString('utf8');
      const end = received.indexOf('\r\n');
      if (end === -1) return;
      socket.destroy();
      const line = received.slice(0, end);
      if (!line.startsWith('INFO ')) {
        reject(new Error(`expected an INFO line, got: ${line}`));
        return;
      }
      resolve(JSON.parse(line.slice('INFO '.length)) as Record<string, unknown>);
    });
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// Servers a test started; stopped after each test even when it failed.
const started: NatsServerHandle[] = [];
async function start(options?: Parameters<typeof startNatsServer>[0]): Promise<NatsServerHandle> {
  const server = await startNatsServer(options);
  started.push(server);
  return server;
}
afterEach(async () => {
  await Promise.all(started.splice(0).map((server) => server.stop()));
});

describe('startNatsServer with JetStream (default)', () => {
  let server: NatsServerHandle;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('serves the NATS protocol on loopback at the reported url', async () => {
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    const info = await readInfo(server.port);
    expect(info['port']).toBe(server.port);
    expect(info['host']).toBe('127.0.0.1');
    expect(typeof info['version']).toBe('string');
  });

  it('enables JetStream and stores under storeDir', async () => {
    const info = await readInfo(server.port);
    expect(info['jetstream']).toBe(true);
    expect(fs.existsSync(path.join(server.storeDir, 'jetstream'))).toBe(true);
  });
});

describe('startNatsServer options and lifecycle', () => {
  it('can run without JetStream', async () => {
    const server = await start({ jetstream: false });
    const info = await readInfo(server.port);
    expect(info['jetstream']).not.toBe(true);
  });

  it('applies a config file text', async () => {
    const server = await start({ jetstream: false, config: 'server_name: discluster-config-test\n' });
    const info = await readInfo(server.port);
    expect(info['server_name']).toBe('discluster-config-test');
  });

  it('restart() keeps the port and the store, with a new process', async () => {
    const server = await start();
    const { port, storeDir } = server;
    const firstPid = server.pid;
    const marker = path.join(storeDir, 'jetstream');
    expect(fs.existsSync(marker)).toBe(true);

    await server.restart();

    expect(server.port).toBe(port);
    expect(server.url).toBe(`nats://127.0.0.1:${port}`);
    expect(server.pid).not.toBe(firstPid);
    expect(isAlive(firstPid)).toBe(false);
    expect(fs.existsSync(marker)).toBe(true);
    const info = await readInfo(port);
    expect(info['port']).toBe(port);
    expect(info['jetstream']).toBe(true);
  });

  it('stop() ends exactly that pid and removes the temp dir', async () => {
    const server = await start();
    const pid = server.pid;
    expect(isAlive(pid)).toBe(true);

    await server.stop();

    expect(() => process.kill(pid, 0)).toThrow();
    expect(fs.existsSync(server.storeDir)).toBe(false);
    await expect(readInfo(server.port)).rejects.toThrow();
    // Idempotent: a second stop (e.g. from afterEach) is harmless.
    await server.stop();
  });

  it('reports the server stderr when it exits before it is ready', async () => {
    await expect(start({ args: ['--no-such-flag-for-discluster'] })).rejects.toThrow(
      /exited before it was ready[\s\S]*no-such-flag-for-discluster/,
    );
  });

  it('explains how to install nats-server when the binary is missing', async () => {
    const saved = process.env['NATS_SERVER_BIN'];
    process.env['NATS_SERVER_BIN'] = '/nonexistent/discluster/nats-server';
    try {
      const attempt = start();
      await expect(attempt).rejects.toThrow(/apt-get install -y nats-server/);
      await expect(attempt).rejects.toThrow(/NATS_SERVER_BIN/);
    } finally {
      if (saved === undefined) delete process.env['NATS_SERVER_BIN'];
      else process.env['NATS_SERVER_BIN'] = saved;
    }
  });
});
