import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { AdminApi, ADMIN_PREFIX } from './admin';
import { sendJson } from './httpUtil';
import { resolveSimOptions, type DiscordSimOptions } from './options';
import { RestApi } from './rest/RestApi';
import { GatewaySimulator } from './simulator';
import { TrafficGenerator } from './traffic';

/** Where a running simulator can be reached: the JSON line the CLI prints. */
export interface DiscordSimUrls {
  readonly rest: string;
  readonly gateway: string;
  readonly admin: string;
}

/** Paths a gateway client may connect to (libraries build the URL differently). */
const GATEWAY_PATHS = new Set(['/', '', '/gateway', '/gateway/']);
const RESUME_PATHS = new Set(['/resume', '/resume/']);
// ws rejects frames above this itself (1009); below it the simulator applies Discord's 4096-byte rule.
const SOCKET_MAX_PAYLOAD = 1024 * 1024;

/**
 * An offline Discord: gateway v10 over WebSocket, the REST routes bots use, and an
 * admin API for tests, all on one port.
 */
export class DiscordSim {
  public readonly options: Readonly<DiscordSimOptions>;
  public readonly simulator: GatewaySimulator;
  private readonly traffic: TrafficGenerator;
  private readonly rest: RestApi;
  private readonly admin: AdminApi;
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private port = 0;
  /** Connections that arrived on the session's resume URL (as Discord asks) vs elsewhere. */
  private resumeUrlConnections = 0;

  private readonly log: Logger;

  /** `logger` defaults to a silent one: tests and embedders opt in to logs. */
  public constructor(options: Partial<DiscordSimOptions> = {}, { logger }: { logger?: Logger } = {}) {
    this.options = resolveSimOptions(options);
    this.log = logger ?? pino({ level: 'silent' });
    this.simulator = new GatewaySimulator(
      this.options,
      () => `ws://${this.hostForUrls()}:${this.port}/resume`,
      this.log,
    );
    this.traffic = new TrafficGenerator(this.simulator);
    this.rest = new RestApi(this.options, this.simulator, () => this.urls.gateway, [this.traffic.authorId]);
    this.admin = new AdminApi(this.simulator, this.traffic, this.rest, () => ({
      resumeUrlConnections: this.resumeUrlConnections,
      rest: { ...this.rest.counters, byClient: { ...this.rest.counters.byClient } },
    }));
    this.server = createServer((request, response) => this.onRequest(request, response));
    // Idle keep-alive sockets stay open longer than any client keeps them (undici: 4 s), so a client
    // never sends a request on a socket the simulator is closing ("other side closed") when busy.
    this.server.keepAliveTimeout = 65_000;
    this.server.headersTimeout = 66_000;
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: SOCKET_MAX_PAYLOAD,
      perMessageDeflate: false,
    });
    this.server.on('upgrade', (request, socket, head) => {
      const path = new URL(request.url ?? '/', 'ws://sim').pathname;
      const isResumePath = RESUME_PATHS.has(path);
      if (!GATEWAY_PATHS.has(path) && !isResumePath) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        return;
      }
      if (isResumePath) this.resumeUrlConnections++;
      this.wss.handleUpgrade(request, socket, head, (ws) => this.simulator.accept(ws, request));
    });
    this.server.on('clientError', (_error, socket) => socket.destroy());
  }

  /** Starts listening; resolves with the URLs once the port is bound. */
  public async listen(): Promise<DiscordSimUrls> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
    this.log.info(
      {
        ...this.urls,
        guilds: this.options.guilds,
        shards: this.options.shards,
        maxConcurrency: this.options.maxConcurrency,
      },
      'discord-sim listening',
    );
    return this.urls;
  }

  public get urls(): DiscordSimUrls {
    const base = `${this.hostForUrls()}:${this.port}`;
    return {
      rest: `http://${base}/api/v10`,
      gateway: `ws://${base}`,
      admin: `http://${base}${ADMIN_PREFIX}`,
    };
  }

  public async close(): Promise<void> {
    this.traffic.stopAll();
    this.simulator.shutdown();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private hostForUrls(): string {
    const host = this.options.host;
    if (host === '0.0.0.0') return '127.0.0.1';
    return host.includes(':') ? `[${host}]` : host;
  }

  private onRequest(request: IncomingMessage, response: ServerResponse): void {
    let url: URL;
    try {
      url = new URL(request.url ?? '/', 'http://sim');
    } catch {
      sendJson(response, 400, { message: '400: Bad Request', code: 0 });
      return;
    }
    if (this.rest.handle(request, response, url)) return;
    if (this.admin.handle(request, response, url)) return;
    sendJson(response, 404, { message: '404: Not Found', code: 0 });
  }
}
