/**
 * The gateway relay behind a cluster's `sourceAddress` (net/GatewaySourceRelay.ts) on its `wss:`
 * path, the one Discord uses: a WebSocket client given the relayed URL reaches a TLS WebSocket
 * server with the server's name (SNI and `Host`), the real path and query, from the source address,
 * and frames pass both ways. 127.0.0.2 is local on Linux without any setup.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { GatewaySourceRelay } from '../src/net/GatewaySourceRelay';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function selfSigned(): Promise<{ cert: string; key: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-tls-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const [certFile, keyFile] = [path.join(dir, 'cert.pem'), path.join(dir, 'key.pem')];
  await promisify(execFile)(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost',
    ],
    { timeout: 30_000 },
  );
  return { cert: fs.readFileSync(certFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8') };
}

describe('GatewaySourceRelay', () => {
  it('relays a wss: URL from the source address with the server’s name, path and query', async () => {
    const { cert, key } = await selfSigned();
    const server = https.createServer({ cert, key });
    const wss = new WebSocketServer({ server });
    const seen: Array<{ host?: string; url?: string; remote?: string; sni: string | false | null }> = [];
    wss.on('connection', (socket, request) => {
      seen.push({
        host: request.headers.host,
        url: request.url,
        remote: request.socket.remoteAddress,
        sni: (request.socket as TLSSocket).servername,
      });
      socket.on('message', (data) => socket.send(`echo ${String(data)}`));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    cleanups.push(() => wss.clients.forEach((client) => client.terminate()));
    const port = (server.address() as { port: number }).port;

    const relay = await GatewaySourceRelay.open('127.0.0.2', () => undefined, { ca: cert });
    cleanups.push(() => relay.close());
    const target = `wss://localhost:${port}/resume`;
    const wrapped = relay.wrap(target);
    expect(wrapped).toMatch(/^ws\+unix:\/.+:\/[A-Za-z0-9_-]+$/);
    expect(relay.unwrap(wrapped)).toBe(target);
    expect(relay.wrap('http://example.com')).toBe('http://example.com');

    // As @discordjs/ws builds its URL: the gateway URL, then the query.
    const client = new WebSocket(`${wrapped}?v=10&encoding=json`);
    cleanups.push(() => client.terminate());
    const reply = await new Promise<string>((resolve, reject) => {
      client.once('open', () => client.send('hello'));
      client.once('message', (data) => resolve(String(data)));
      client.once('error', reject);
    });
    expect(reply).toBe('echo hello');
    expect(seen).toEqual([
      { host: `localhost:${port}`, url: '/resume?v=10&encoding=json', remote: '127.0.0.2', sni: 'localhost' },
    ]);
  });

  it('answers 400 to a URL it did not hand out, and removes its directory on close', async () => {
    const relay = await GatewaySourceRelay.open('127.0.0.2');
    const wrapped = relay.wrap('ws://127.0.0.1:9/');
    const forged = wrapped.replace(
      /:\/[^:]+$/,
      `:/${Buffer.from('ws://127.0.0.1:10/').toString('base64url')}`,
    );
    const status = await new Promise<number>((resolve, reject) => {
      const client = new WebSocket(forged);
      client.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
      client.once('error', reject);
    });
    expect(status).toBe(400);
    const socketDir = path.dirname(wrapped.slice('ws+unix:'.length, wrapped.lastIndexOf(':/')));
    expect(fs.existsSync(socketDir)).toBe(true);
    await relay.close();
    expect(fs.existsSync(socketDir)).toBe(false);
  });
});
