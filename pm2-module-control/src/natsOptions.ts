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
  type ControlConfig,
  type NatsAccess,
} from 'discluster-protocol';
import type { Logger } from './logger.js';

/** Longest wait between two failed first-connect attempts. */
const MAX_CONNECT_RETRY_MS = 5_000;
/** One connect attempt; a server that rejects our client certificate after a TLS 1.3 handshake shows only as this timeout. */
const CONNECT_TIMEOUT_MS = 5_000;

/** NATS connection options from the `nats_*` settings. */
export function natsConnectOptions(config: ControlConfig): NodeConnectionOptions {
  const options: NodeConnectionOptions = {
    servers: [...config.nats_url],
    name: `discluster-control:${config.host_id}`,
    // Replies (commands' answers, KV reads) under CONTROL's own prefix: the permission template
    // grants each role its own inboxes only (docs/nats-security.md).
    inboxPrefix: natsInboxPrefix(config.bot, 'control'),
    // A daemon must never give up on NATS (the default closes for good after ~10 attempts), and it
    // may start before nats-server does.
    maxReconnectAttempts: -1,
    waitOnFirstConnect: true,
    reconnectTimeWait: Math.min(config.retry_ms, 2_000),
    // A link that silently stops forwarding (a partition) gives no socket error: frequent pings
    // replace the dead socket within seconds after the network heals, not minutes.
    pingInterval: 5_000,
    maxPingOut: 2,
  };
  if (config.nats_token !== undefined) options.token = config.nats_token;
  if (config.nats_user !== undefined) options.user = config.nats_user;
  if (config.nats_pass !== undefined) options.pass = config.nats_pass;
  if (config.nats_creds !== undefined)
    options.authenticator = credsAuthenticator(fs.readFileSync(config.nats_creds));
  if (natsRequiresTls(config)) {
    // Set even without files (a tls:// URL alone): the client then refuses a server without TLS.
    options.tls = {
      ...(config.nats_tls_ca ? { caFile: config.nats_tls_ca } : {}),
      ...(config.nats_tls_cert ? { certFile: config.nats_tls_cert } : {}),
      ...(config.nats_tls_key ? { keyFile: config.nats_tls_key } : {}),
    };
  }
  return options;
}

/**
 * Connects CONTROL to NATS: warns loudly if the traffic would be plaintext across a network, and
 * retries until the server accepts us. A refusal (wrong password, untrusted CA, …) is logged as an
 * error naming the setting to fix; CONTROL never exits over it (pm2 would restart it into the same
 * refusal, in a loop). Once connected, the client reconnects by itself for ever.
 */
export async function connectNats(config: ControlConfig, logger: Logger): Promise<NatsConnection> {
  const warning = plaintextNatsWarning(config);
  if (warning) logger.warn({ nats: config.nats_url.map(redactNatsUrl), plaintext: true }, warning);
  return connectNatsWithRetry({
    settings: config,
    logger,
    maxDelayMs: Math.min(config.retry_ms, MAX_CONNECT_RETRY_MS),
    // Our loop explains each failed first attempt; the client's own wait would retry silently.
    connect: async () =>
      connect({ ...natsConnectOptions(config), waitOnFirstConnect: false, timeout: CONNECT_TIMEOUT_MS }),
  });
}

/**
 * What a cluster needs to reach NATS, handed over pm2 IPC (never the environment). File contents,
 * not paths, so a cluster does not need read access to CONTROL's files. The identity is the
 * `cluster_nats_*` settings if any is set (a least-privilege cluster user), else CONTROL's own.
 */
export function natsAccessForClusters(config: ControlConfig): NatsAccess {
  const read = (file: string) => fs.readFileSync(file, 'utf8');
  const access: NatsAccess = { servers: [...config.nats_url], kvReplicas: config.kv_replicas };
  const clusterIdentity =
    config.cluster_nats_user !== undefined ||
    config.cluster_nats_pass !== undefined ||
    config.cluster_nats_token !== undefined ||
    config.cluster_nats_creds !== undefined;
  const identity = clusterIdentity
    ? {
        token: config.cluster_nats_token,
        user: config.cluster_nats_user,
        pass: config.cluster_nats_pass,
        creds: config.cluster_nats_creds,
      }
    : { token: config.nats_token, user: config.nats_user, pass: config.nats_pass, creds: config.nats_creds };
  if (identity.token !== undefined) access.token = identity.token;
  if (identity.user !== undefined) access.user = identity.user;
  if (identity.pass !== undefined) access.pass = identity.pass;
  if (identity.creds !== undefined) access.creds = read(identity.creds);
  if (config.nats_tls_ca || config.nats_tls_cert || config.nats_tls_key) {
    access.tls = {
      ...(config.nats_tls_ca ? { ca: read(config.nats_tls_ca) } : {}),
      ...(config.nats_tls_cert ? { cert: read(config.nats_tls_cert) } : {}),
      ...(config.nats_tls_key ? { key: read(config.nats_tls_key) } : {}),
    };
  }
  return access;
}
