import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger.js';
import { EventStream } from './eventStream.js';
import { pageSnapshot } from './pageSnapshot.js';
import { createRequestHandler } from './routes.js';
import type { StatusSource } from './statusSource.js';

export interface HttpServerOptions {
  /** Address to listen on (`http_host`). */
  readonly host: string;
  /** Port (`http_port`); 0 picks a free one. */
  readonly port: number;
  readonly bot: string;
  readonly source: StatusSource;
  readonly logger: Logger;
  /**
   * How often `/api/events` checks for a change to push.
   * @defaultValue 1000
   */
  readonly pushIntervalMs?: number;
}

/** A listening status server. */
export interface HttpServerHandle {
  /** Where it listens, e.g. `http://127.0.0.1:9100/`. */
  readonly url: string;
  /** Ends every event stream and connection, and stops listening. */
  close(): Promise<void>;
}

function urlOf(host: string, address: AddressInfo): string {
  const shown = host.includes(':') ? `[${host}]` : host;
  return `http://${shown}:${address.port}/`;
}

/** Starts the status page, JSON API and `/metrics` server (node:http, no framework). */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServerHandle> {
  const { logger, source } = options;
  const events = new EventStream({
    snapshot: async () => JSON.stringify(await pageSnapshot(source)),
    intervalMs: options.pushIntervalMs ?? 1_000,
    onError: (error) => logger.warn({ err: String(error) }, 'status page: could not build the live status'),
  });
  const server = createServer(
    createRequestHandler({ bot: options.bot, source, events }, (error, req) =>
      logger.error({ err: error, path: req.url }, 'status page: request failed'),
    ),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => logger.error({ err: error }, 'status page server error'));
  const url = urlOf(options.host, server.address() as AddressInfo);
  let closing: Promise<void> | undefined;
  return {
    url,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        events.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
