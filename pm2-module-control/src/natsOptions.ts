import fs from 'node:fs';
import { credsAuthenticator, type NodeConnectionOptions } from '@nats-io/transport-node';
import type { ControlConfig, NatsAccess } from 'discluster-protocol';

/** NATS connection options from the `nats_*` settings. */
export function natsConnectOptions(config: ControlConfig): NodeConnectionOptions {
  const options: NodeConnectionOptions = {
    servers: [...config.nats_url],
    name: `discluster-control:${config.host_id}`,
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
  if (config.nats_tls_ca || config.nats_tls_cert || config.nats_tls_key) {
    options.tls = {
      ...(config.nats_tls_ca ? { caFile: config.nats_tls_ca } : {}),
      ...(config.nats_tls_cert ? { certFile: config.nats_tls_cert } : {}),
      ...(config.nats_tls_key ? { keyFile: config.nats_tls_key } : {}),
    };
  }
  return options;
}

/**
 * What a cluster needs to reach NATS, handed over pm2 IPC (never the environment). File contents,
 * not paths, so a cluster does not need read access to CONTROL's files.
 */
export function natsAccessForClusters(config: ControlConfig): NatsAccess {
  const read = (file: string) => fs.readFileSync(file, 'utf8');
  const access: NatsAccess = { servers: [...config.nats_url] };
  if (config.nats_token !== undefined) access.token = config.nats_token;
  if (config.nats_user !== undefined) access.user = config.nats_user;
  if (config.nats_pass !== undefined) access.pass = config.nats_pass;
  if (config.nats_creds !== undefined) access.creds = read(config.nats_creds);
  if (config.nats_tls_ca || config.nats_tls_cert || config.nats_tls_key) {
    access.tls = {
      ...(config.nats_tls_ca ? { ca: read(config.nats_tls_ca) } : {}),
      ...(config.nats_tls_cert ? { cert: read(config.nats_tls_cert) } : {}),
      ...(config.nats_tls_key ? { key: read(config.nats_tls_key) } : {}),
    };
  }
  return access;
}
