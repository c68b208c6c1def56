import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ControlConfigSchema, loadModuleConfig, type ControlConfig } from 'discluster-protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { natsAccessForClusters, natsConnectOptions } from '../src/natsOptions';

/** docs/nats-security.md: the cluster identity, TLS from a tls:// URL, and the role's inbox prefix. */

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-nats-security-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function config(env: Record<string, string>): ControlConfig {
  const result = loadModuleConfig(ControlConfigSchema, { moduleName: 'discluster-control', env });
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.config;
}

describe('CONTROL NATS security settings', () => {
  it('hands clusters the cluster_nats_* identity instead of its own, keeping servers and TLS', () => {
    const ca = path.join(dir, 'ca.pem');
    fs.writeFileSync(ca, 'ca-contents');
    const creds = path.join(dir, 'cluster.creds');
    fs.writeFileSync(creds, 'cluster-creds-contents');
    const own = {
      DISCLUSTER_NATS_URL: 'tls://nats.example.com:4222',
      DISCLUSTER_NATS_USER: 'control',
      DISCLUSTER_NATS_PASS: 'control-pw',
      DISCLUSTER_NATS_TLS_CA: ca,
    };
    expect(
      natsAccessForClusters(
        config({
          ...own,
          DISCLUSTER_CLUSTER_NATS_USER: 'cluster',
          DISCLUSTER_CLUSTER_NATS_PASS: 'cluster-pw',
        }),
      ),
    ).toEqual({
      servers: ['tls://nats.example.com:4222'],
      kvReplicas: 1,
      user: 'cluster',
      pass: 'cluster-pw',
      tls: { ca: 'ca-contents' },
    });
    expect(natsAccessForClusters(config({ ...own, DISCLUSTER_CLUSTER_NATS_TOKEN: 't' }))).toEqual({
      servers: ['tls://nats.example.com:4222'],
      kvReplicas: 1,
      token: 't',
      tls: { ca: 'ca-contents' },
    });
    expect(natsAccessForClusters(config({ ...own, DISCLUSTER_CLUSTER_NATS_CREDS: creds }))).toEqual({
      servers: ['tls://nats.example.com:4222'],
      kvReplicas: 1,
      creds: 'cluster-creds-contents',
      tls: { ca: 'ca-contents' },
    });
    // None set: CONTROL's own identity, as before.
    expect(natsAccessForClusters(config(own))).toMatchObject({ user: 'control', pass: 'control-pw' });
  });

  it('requires TLS for a tls:// URL even without files, and receives replies under its role prefix', () => {
    const options = natsConnectOptions(
      config({ DISCLUSTER_NATS_URL: 'tls://nats.example.com:4222', DISCLUSTER_BOT: 'mybot' }),
    );
    expect(options.tls).toEqual({});
    expect(options.inboxPrefix).toBe('_INBOX.discluster.mybot.control');
    expect(natsConnectOptions(config({})).tls).toBeUndefined();
  });
});
