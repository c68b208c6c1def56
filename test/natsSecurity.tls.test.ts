import { afterAll, afterEach, beforeAll, describe, it } from 'vitest';
import type { Fleet } from './support/fleet';
import {
  makeTempDir,
  makeTestPki,
  tlsServerConfig,
  type TempDir,
  type TestPki,
} from './support/natsSecurity';
import { expectFleetServes, expectRefusedAndRetrying } from './support/securedFleet';

/**
 * Issue 8 §2, TLS: a real nats-server that requires TLS with a certificate signed by a test CA made
 * here with openssl (clients verify it with `nats_tls_ca`), and one that also requires client
 * certificates (mutual TLS: `nats_tls_cert` / `nats_tls_key`). A whole fleet serves every shard
 * through it; the clusters get the CA, certificate and key as contents over pm2 IPC. With an
 * untrusted CA, or a client certificate the server does not trust, MASTER and CONTROL log an error
 * naming the setting, keep retrying, and nothing is planned.
 */

let fleet: Fleet | undefined;
let temp: TempDir;
let pki: TestPki;

beforeAll(async () => {
  temp = await makeTempDir('discluster-nats-tls-');
  pki = await makeTestPki(temp);
}, 60_000);

afterEach(async () => {
  await fleet?.stop();
  fleet = undefined;
}, 120_000);

afterAll(async () => {
  await temp?.remove();
});

describe('NATS TLS (server certificate verified with nats_tls_ca)', () => {
  const server = () => ({ config: tlsServerConfig(pki, false), scheme: 'tls' as const });

  it('a fleet over tls:// with nats_tls_ca serves every shard', { timeout: 150_000 }, async () => {
    fleet = await expectFleetServes({
      bot: 'tls',
      server: server(),
      good: { DISCLUSTER_NATS_TLS_CA: pki.ca },
    });
  });

  it(
    'a server certificate from an untrusted CA is an error naming nats_tls_ca; both keep retrying',
    {
      timeout: 150_000,
    },
    async () => {
      fleet = await expectRefusedAndRetrying({
        bot: 'tls',
        server: server(),
        good: { DISCLUSTER_NATS_TLS_CA: pki.ca },
        bad: { DISCLUSTER_NATS_TLS_CA: pki.otherCa },
        names: ['nats_tls_ca'],
        serverRefusal: /TLS handshake error/,
      });
    },
  );
});

describe('NATS mutual TLS (client certificate nats_tls_cert / nats_tls_key)', () => {
  const server = () => ({ config: tlsServerConfig(pki, true), scheme: 'tls' as const });
  const good = () => ({
    DISCLUSTER_NATS_TLS_CA: pki.ca,
    DISCLUSTER_NATS_TLS_CERT: pki.clientCert,
    DISCLUSTER_NATS_TLS_KEY: pki.clientKey,
  });

  it('a fleet with a client certificate serves every shard', { timeout: 150_000 }, async () => {
    fleet = await expectFleetServes({ bot: 'mtls', server: server(), good: good() });
  });

  it(
    'a client certificate from an untrusted CA is an error naming nats_tls_cert; both keep retrying',
    {
      timeout: 150_000,
    },
    async () => {
      fleet = await expectRefusedAndRetrying({
        bot: 'mtls',
        server: server(),
        good: good(),
        bad: { ...good(), DISCLUSTER_NATS_TLS_CERT: pki.otherClientCert },
        names: ['nats_tls_cert'],
        serverRefusal: /TLS handshake error: .*(certificate signed by unknown authority|bad certificate)/,
      });
    },
  );
});
