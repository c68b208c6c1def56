import type { ConnectionOptions } from '@nats-io/transport-node';
import type { NatsAccess } from 'discluster-protocol/clusterControl';
import { natsAccessOptions } from 'discluster-runtime';
import { registerSecret } from '../util/redact.js';

/**
 * Connection options for the NATS access CONTROL sent with the assignment (discluster-runtime's
 * `natsAccessOptions`: contents, not paths, and the cluster role's inboxes), its secrets first
 * registered so no diagnostic of the SDK ever shows them.
 */
export function natsConnectionOptions(access: NatsAccess, bot: string): ConnectionOptions {
  for (const secret of [access.token, access.pass, access.creds, access.tls?.key]) registerSecret(secret);
  return natsAccessOptions(access, bot);
}
