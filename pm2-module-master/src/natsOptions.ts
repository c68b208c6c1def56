import fs from 'node:fs';
import {
  connect,
  credsAuthenticator,
  type NatsConnection,
  type NodeConnectionOptions,
} from '@nats-io/transport-node';
import {
  connectNatsWithRetry,
  natsInboxPrefix,
  natsRequiresTls,
  plaintextNatsWarning,
  redactNatsUrl,
  type MasterConfig,
} from 'discluster-protocol';
import type { Logger } from './logger.js';

/** Longest wait between two failed first-connect attempts. */
const MAX_CONNECT_RETRY_MS = 5_000;
/** One connect attempt; a server that rejects our client certificate after a TLS 1.3 handshake shows only as this timeout. */
const CONNECT_TIMEOUT_MS = 5_000;

/** The `nats_*` settings every Discluster process connects with (MASTER's config or the CLI's flags). */
export type NatsSettings = Pick<
  MasterConfig,
  | 'nats_url'
  | 'nats_token'
  | 'nats_user'
  | 'nats_pass'
  | 'nats_creds'
  | 'nats_tls_ca'
  | 'nats_tls_cert'
  | 'nats_tls_key'
>;

/**
 * NATS connection options from the `nats_*` settings. `daemon`: never give up reconnecting (the
 * client's default closes for good after ~10 attempts) and wait for a server that is not up yet.
 * `inboxPrefix`: where replies arrive (MASTER uses its role's, see docs/nats-security.md).
 */
export function natsConnectOptions(
  settings: NatsSettings,
  name: string,
  mode: 'daemon' | 'once',
  inboxPrefix?: string,
): NodeConnectionOptions {
  const options: NodeConnectionOptions = {
    servers: [...settings.nats_url],
    name,
    noAsyncTraces: true,
    ...(inboxPrefix !== undefined ? { inboxPrefix } : {}),
    ...(mode === 'daemon'
      ? // Frequent pings: a silently dead link (a partition) is otherwise noticed only after minutes.
        {
          maxReconnectAttempts: -1,
          waitOnFirstConnect: true,
          reconnectTimeWait: 1_000,
          pingInterval: 5_000,
          maxPingOut: 2,
        }
      : { maxReconnectAttempts: 0, timeout: 5_000 }),
  };
  if (settings.nats_token !== undefined) options.token = settings.nats_token;
  if (settings.nats_user !== undefined) options.user = settings.nats_user;
  if (settings.nats_pass !== undefined) options.pass = settings.nats_pass;
  if (settings.nats_creds !== undefined)
    options.authenticator = credsAuthenticator(fs.readFileSync(settings.nats_creds));
  if (natsRequiresTls(settings)) {
    // Set even without files (a tls:// URL alone): the client then refuses a server without TLS.
    options.tls = {
      ...(settings.nats_tls_ca ? { caFile: settings.nats_tls_ca } : {}),
      ...(settings.nats_tls_cert ? { certFile: settings.nats_tls_cert } : {}),
      ...(settings.nats_tls_key ? { keyFile: settings.nats_tls_key } : {}),
    };
  }
  return options;
}

/**
 * Connects MASTER to NATS: warns loudly if the traffic would be plaintext across a network, and
 * retries until the server accepts us. A refusal (wrong password, untrusted CA, …) is logged as an
 * error naming the setting to fix; MASTER never exits over it (pm2 would restart it into the same
 * refusal, in a loop). Once connected, the client reconnects by itself for ever.
 */
export async function connectNats(
  config: MasterConfig,
  name: string,
  logger: Logger,
): Promise<NatsConnection> {
  const warning = plaintextNatsWarning(config);
  if (warning) logger.warn({ nats: config.nats_url.map(redactNatsUrl), plaintext: true }, warning);
  return connectNatsWithRetry({
    settings: config,
    logger,
    maxDelayMs: MAX_CONNECT_RETRY_MS,
    // Our loop explains each failed first attempt; the client's own wait would retry silently.
    connect: async () =>
      connect({
        ...natsConnectOptions(config, name, 'daemon', natsInboxPrefix(config.bot, 'master')),
        waitOnFirstConnect: false,
        timeout: CONNECT_TIMEOUT_MS,
      }),
  });
}
