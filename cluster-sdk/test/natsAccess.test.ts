import { describe, expect, it } from 'vitest';
import { natsConnectionOptions } from '../src/fleet/natsAccess';

/** docs/nats-security.md: what a cluster builds from the NATS access CONTROL sent. */
describe('cluster NATS options from CONTROL access', () => {
  it('receives replies under the cluster role prefix of its bot', () => {
    expect(natsConnectionOptions({ servers: ['nats://127.0.0.1:4222'] }, 'mybot')).toEqual({
      servers: ['nats://127.0.0.1:4222'],
      inboxPrefix: '_INBOX.discluster.mybot.cluster',
    });
  });

  it('passes TLS material as contents, and requires TLS for a tls:// server even without any', () => {
    expect(
      natsConnectionOptions({ servers: ['tls://n:4222'], tls: { ca: 'CA', cert: 'CERT', key: 'KEY' } }, 'b')
        .tls,
    ).toEqual({ ca: 'CA', cert: 'CERT', key: 'KEY' });
    expect(natsConnectionOptions({ servers: ['tls://n:4222'] }, 'b').tls).toEqual({});
    expect(natsConnectionOptions({ servers: ['nats://n:4222'] }, 'b').tls).toBeUndefined();
  });

  it('uses creds contents through an authenticator', () => {
    const options = natsConnectionOptions({ servers: ['nats://n:4222'], creds: 'creds-contents' }, 'b');
    expect(typeof options.authenticator).toBe('function');
  });
});
