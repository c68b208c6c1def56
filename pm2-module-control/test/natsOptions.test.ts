import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ControlConfigSchema, loadModuleConfig, type ControlConfig } from 'discluster-protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { natsAccessForClusters, natsConnectOptions } from '../src/natsOptions';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-nats-opts-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function config(env: Record<string, string>): ControlConfig {
  const result = loadModuleConfig(ControlConfigSchema, { moduleName: 'discluster-control', env });
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.config;
}

describe('NATS options from the nats_* settings', () => {
  it('never gives up reconnecting and waits for a server that is not up yet', () => {
    const options = natsConnectOptions(config({ DISCLUSTER_NATS_URL: 'nats://a:1,nats://b:2' }));
    expect(options).toMatchObject({
      servers: ['nats://a:1', 'nats://b:2'],
      maxReconnectAttempts: -1,
      waitOnFirstConnect: true,
    });
    expect(options.token).toBeUndefined();
    expect(options.tls).toBeUndefined();
  });

  it('maps token, user/pass and TLS files; clusters get file contents, not paths', () => {
    const files = Object.fromEntries(
      ['ca', 'cert', 'key'].map((name) => {
        const file = path.join(dir, `${name}.pem`);
        fs.writeFileSync(file, `${name}-contents`);
        return [name, file];
      }),
    );
    const settings = config({
      DISCLUSTER_NATS_TOKEN: 'tok',
      DISCLUSTER_NATS_USER: 'me',
      DISCLUSTER_NATS_PASS: 'pw',
      DISCLUSTER_NATS_TLS_CA: files['ca']!,
      DISCLUSTER_NATS_TLS_CERT: files['cert']!,
      DISCLUSTER_NATS_TLS_KEY: files['key']!,
    });
    expect(natsConnectOptions(settings)).toMatchObject({
      token: 'tok',
      user: 'me',
      pass: 'pw',
      tls: { caFile: files['ca'], certFile: files['cert'], keyFile: files['key'] },
    });
    expect(natsAccessForClusters(settings)).toEqual({
      servers: ['nats://127.0.0.1:4222'],
      kvReplicas: 1,
      token: 'tok',
      user: 'me',
      pass: 'pw',
      tls: { ca: 'ca-contents', cert: 'cert-contents', key: 'key-contents' },
    });
  });

  it('hands clusters the kv_replicas setting with their NATS access', () => {
    expect(natsAccessForClusters(config({ DISCLUSTER_KV_REPLICAS: '3' })).kvReplicas).toBe(3);
  });

  it('uses a creds file through an authenticator and hands clusters its contents', () => {
    const creds = path.join(dir, 'user.creds');
    fs.writeFileSync(creds, 'creds-contents');
    const settings = config({ DISCLUSTER_NATS_CREDS: creds });
    expect(typeof natsConnectOptions(settings).authenticator).toBe('function');
    expect(natsAccessForClusters(settings).creds).toBe('creds-contents');
  });
});
