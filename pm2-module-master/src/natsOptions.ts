import fs from 'node:fs';
import { credsAuthenticator, type NodeConnectionOptions } from '@nats-io/transport-node';
import type { MasterConfig } from 'discluster-protocol';

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
 */
export function natsConnectOptions(
  settings: NatsSettings,
  name: string,
  mode: 'daemon' | 'once',
): NodeConnectionOptions {
  const options: NodeConnectionOptions = {
    servers: [...settings.nats_url],
    name,
    noAsyncTraces: true,
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
  if (settings.nats_tls_ca || settings.nats_tls_cert || settings.nats_tls_key) {
    options.tls = {
      ...(settings.nats_tls_ca ? { caFile: settings.nats_tls_ca } : {}),
      ...(settings.nats_tls_cert ? { certFile: settings.nats_tls_cert } : {}),
      ...(settings.nats_tls_key ? { keyFile: settings.nats_tls_key } : {}),
    };
  }
  return options;
}
