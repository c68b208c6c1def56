import type { MasterConfig } from 'discluster-protocol';
import type { Logger } from '../logger.js';
import { startHttpServer, type HttpServerHandle } from './httpServer.js';
import type { StatusSource } from './statusSource.js';

/**
 * Serves the status page and `/metrics` when `http_port` is set, logging the URL (`url` in the
 * log line). A port that cannot be bound is logged as an error naming the settings, and MASTER
 * runs on without the page: planning and failover matter more than the view of them.
 */
export async function startStatusHttp(
  config: MasterConfig,
  source: StatusSource,
  logger: Logger,
): Promise<HttpServerHandle | null> {
  if (config.http_port === undefined) return null;
  try {
    const server = await startHttpServer({
      host: config.http_host,
      port: config.http_port,
      bot: config.bot,
      source,
      logger,
    });
    logger.info({ url: server.url }, `status page and /metrics at ${server.url}`);
    return server;
  } catch (error) {
    logger.error(
      {
        err: error instanceof Error ? error.message : String(error),
        http_host: config.http_host,
        http_port: config.http_port,
      },
      'status page and /metrics not served: cannot listen on http_host:http_port; fix the setting (MASTER runs on without them)',
    );
    return null;
  }
}
