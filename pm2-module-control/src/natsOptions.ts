import fs from 'node:fs';
import type { NatsConnection, NodeConnectionOptions } from '@nats-io/transport-node';
import { natsInboxPrefix, type ControlConfig, type NatsAccess } from 'discluster-protocol';
import {
  connectNatsDaemon,
  natsConnectOptions as optionsFromSettings,
  type NatsClientOptions,
} from 'discluster-runtime';
import type { Logger } from './logger.js';

/** Who CONTROL is on NATS: its host's name, its role's inboxes, reconnects at most every 2 s. */
function client(config: ControlConfig): Omit<NatsClientOptions, 'mode'> {
  return {
    name: `discluster-control:${config.host_id}`,
    inboxPrefix: natsInboxPrefix(config.bot, 'control'),
    reconnectTimeWaitMs: Math.min(config.retry_ms, 2_000),
  };
}

/** CONTROL's NATS connection options from its `nats_*` settings. */
export function natsConnectOptions(config: ControlConfig): NodeConnectionOptions {
  return optionsFromSettings(config, { ...client(config), mode: 'daemon' });
}

/** Connects CONTROL to NATS, retrying until the server accepts it (discluster-runtime's `connectNatsDaemon`). */
export function connectNats(config: ControlConfig, logger: Logger): Promise<NatsConnection> {
  return connectNatsDaemon(config, client(config), logger, config.retry_ms);
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
