import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';

/** The most a WebSocket upgrade request's head may take (ws sends well under 1 KiB). */
const MAX_HEAD_BYTES = 16 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');
/** The relay's private directory: `<tmp>/discluster-gw-<pid>-XXXXXX`, holding its unix socket. */
const DIR_PREFIX = 'discluster-gw-';

/**
 * Binds a cluster's gateway sockets to a local address (`sourceAddress`, CONTROL's
 * `source_addresses`) although @discordjs/ws 2.0.4 has no option for it: its shards create their
 * socket as `new WebSocket(url, [], { handshakeTimeout })` with the `ws` package's class fixed at
 * module load (no WebSocket constructor, agent or socket option), and `ws` would bind only if given
 * `localAddress` there. What the manager does take from us is every URL a shard connects to: the
 * gateway URL (our `rest.get` answers `/gateway/bot`) and the resume URL (our
 * `retrieveSessionInfo` answers it). So each URL is handed out as `ws+unix:<socket>:/<target>`, a
 * form `ws` supports, and this relay, listening on that unix socket in a directory only this user
 * can enter, opens the real connection from `localAddress` (TLS for `wss:`), rewrites the request
 * line and `Host` of the upgrade request for the real server, and then only copies bytes both ways.
 * The WebSocket handshake, compression and frames stay end to end between @discordjs/ws and
 * Discord.
 */
export class GatewaySourceRelay {
  readonly #server: net.Server;
  readonly #dir: string;
  readonly #socketPath: string;
  readonly #sockets = new Set<net.Socket>();
  /** Relay URLs by real URL, and back (a handful per cluster: the gateway and the resume URLs). */
  readonly #wrapped = new Map<string, string>();
  readonly #unwrapped = new Map<string, string>();
  #closed = false;

  private constructor(
    public readonly localAddress: string,
    private readonly onDebug: (message: string) => void,
    private readonly tlsOptions: tls.ConnectionOptions,
  ) {
    this.#dir = fs.mkdtempSync(path.join(os.tmpdir(), `${DIR_PREFIX}${process.pid}-`));
    this.#socketPath = path.join(this.#dir, 'gw.sock');
    this.#server = net.createServer((client) => this.#accept(client));
  }

  /**
   * Listens on a fresh unix socket; every connection through it leaves from `localAddress`.
   * `tlsOptions` add to the `wss:` connections' (tests give a `ca`; Discord needs none).
   */
  public static async open(
    localAddress: string,
    onDebug: (message: string) => void = () => undefined,
    tlsOptions: tls.ConnectionOptions = {},
  ): Promise<GatewaySourceRelay> {
    removeStaleDirs();
    const relay = new GatewaySourceRelay(localAddress, onDebug, tlsOptions);
    try {
      await new Promise<void>((resolve, reject) => {
        relay.#server.once('error', reject);
        relay.#server.listen(relay.#socketPath, () => {
          relay.#server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      await relay.close();
      throw error;
    }
    return relay;
  }

  /**
   * The URL to give @discordjs/ws for a gateway URL (`wss://gateway.discord.gg`, a resume URL):
   * the same server, reached through this relay. Already-relayed URLs and other schemes are
   * returned as they are.
   */
  public wrap(url: string): string {
    if (!/^wss?:\/\//i.test(url)) return url;
    let wrapped = this.#wrapped.get(url);
    if (wrapped === undefined) {
      wrapped = `ws+unix:${this.#socketPath}:/${Buffer.from(url).toString('base64url')}`;
      this.#wrapped.set(url, wrapped);
      this.#unwrapped.set(wrapped, url);
    }
    return wrapped;
  }

  /** The real URL behind a URL of {@link wrap} (what the session store keeps); others unchanged. */
  public unwrap(url: string): string {
    return this.#unwrapped.get(url) ?? url;
  }

  public async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    fs.rmSync(this.#dir, { recursive: true, force: true });
  }

  #track(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
  }

  #accept(client: net.Socket): void {
    this.#track(client);
    client.on('error', () => client.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf(HEAD_END);
      if (end < 0) {
        if (head.length > MAX_HEAD_BYTES) client.destroy();
        return;
      }
      client.off('data', onData);
      client.pause();
      this.#forward(client, head.subarray(0, end).toString('latin1'), head.subarray(end + HEAD_END.length));
    };
    client.on('data', onData);
  }

  /** Connects to the target named in the request line and joins the two sockets. */
  #forward(client: net.Socket, head: string, rest: Buffer): void {
    const lines = head.split('\r\n');
    const requestLine = /^GET \/([A-Za-z0-9_-]+)(\?\S*)? (HTTP\/1\.1)$/.exec(lines[0] ?? '');
    const target = requestLine ? this.#unwrapped.get(this.#wrappedOf(requestLine[1] ?? '')) : undefined;
    if (!requestLine || target === undefined) {
      // Only URLs this relay handed out: the socket is private, but a stray client gets nothing.
      client.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      return;
    }
    const url = new URL(target);
    const secure = url.protocol === 'wss:';
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const port = Number(url.port || (secure ? 443 : 80));
    // tls.connect hands socket options such as localAddress on to net's connect.
    const options: net.TcpNetConnectOpts & tls.ConnectionOptions = {
      host,
      port,
      localAddress: this.localAddress,
    };
    const upstream = secure
      ? tls.connect({ ...this.tlsOptions, ...options, servername: net.isIP(host) === 0 ? host : undefined })
      : net.connect(options);
    this.#track(upstream);
    const requestPath = `${url.pathname === '' ? '/' : url.pathname}${requestLine[2] ?? ''}`;
    const headers = lines
      .slice(1)
      .filter((line) => !/^host:/i.test(line))
      .concat(`Host: ${url.host}`);
    upstream.write(`GET ${requestPath} ${requestLine[3]}\r\n${headers.join('\r\n')}\r\n\r\n`, 'latin1');
    if (rest.length > 0) upstream.write(rest);
    upstream.on(secure ? 'secureConnect' : 'connect', () =>
      this.onDebug(`gateway socket to ${url.host} from ${this.localAddress}:${upstream.localPort ?? '?'}`),
    );
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      from.pipe(to);
      from.on('error', () => to.destroy());
      from.on('close', () => to.destroy());
    }
    upstream.on('error', (error) =>
      this.onDebug(`gateway socket to ${url.host} from ${this.localAddress} failed: ${error.message}`),
    );
    client.resume();
  }

  #wrappedOf(segment: string): string {
    return `ws+unix:${this.#socketPath}:/${segment}`;
  }
}

/** Removes the directories of relays whose process is gone (killed before it could remove its own). */
function removeStaleDirs(): void {
  try {
    for (const name of fs.readdirSync(os.tmpdir())) {
      const pid = new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(name)?.[1];
      if (pid !== undefined && !alive(Number(pid)))
        fs.rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
    }
  } catch {
    // Best effort: a directory left behind costs nothing but its entry.
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
