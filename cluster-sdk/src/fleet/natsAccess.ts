import { credsAuthenticator, type ConnectionOptions } from '@nats-io/transport-node';
import { natsInboxPrefix, type NatsAccess } from 'discluster-protocol';
import { registerSecret } from '../util/redact.js';

/**
 * Connection options for the NATS access CONTROL sent with the assignment. Credentials arrive as
 * contents, not paths (the cluster may run as another user than CONTROL), so creds and TLS material
 * are passed to the client in memory and never touch the disk or the environment. Replies arrive
 * under the cluster role's inbox prefix of `bot`, the only inboxes the permission template lets a
 * cluster subscribe to (docs/nats-security.md).
 */
export function natsConnectionOptions(access: NatsAccess, bot: string): ConnectionOptions {
  for (const secret of [access.token, access.pass, access.creds, access.tls?.key]) registerSecret(secret);
  const options: ConnectionOptions = {
    servers: [...access.servers],
    inboxPrefix: natsInboxPrefix(bot, 'cluster'),
  };
  if (access.token !== undefined) options.token = access.token;
  if (access.user !== undefined) options.user = access.user;
  if (access.pass !== undefined) options.pass = access.pass;
  if (access.creds !== undefined) {
    options.authenticator = credsAuthenticator(new TextEncoder().encode(access.creds));
  }
  const tls = access.tls;
  // A tls:// server alone also makes TLS required: the client then refuses a server without it.
  if (tls !== undefined || access.servers.some((url) => /^(tls|wss):\/\//i.test(url))) {
    options.tls = {
      ...(tls?.ca !== undefined && { ca: tls.ca }),
      ...(tls?.cert !== undefined && { cert: tls.cert }),
      ...(tls?.key !== undefined && { key: tls.key }),
    };
  }
  return options;
}
