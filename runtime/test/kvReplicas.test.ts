import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  startNatsCluster,
  startNatsServer,
  type NatsClusterHandle,
  type NatsServerHandle,
} from 'discluster-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ControlConfigSchema,
  DisclusterError,
  ErrorCode,
  MasterConfigSchema,
  formatConfigIssues,
  loadModuleConfig,
} from 'discluster-protocol';
import { openBucket } from '../src/natsKv';

const control = (env: Record<string, string>) =>
  loadModuleConfig(ControlConfigSchema, { moduleName: 'discluster-control', env });
const master = (env: Record<string, string>) =>
  loadModuleConfig(MasterConfigSchema, { moduleName: 'discluster-master', env });

describe('the kv_replicas setting', () => {
  it('defaults to 1 in both modules and reads 1..5 from pm2 or the environment', () => {
    expect(control({})).toMatchObject({ ok: true, config: { kv_replicas: 1 } });
    expect(master({})).toMatchObject({ ok: true, config: { kv_replicas: 1 } });
    expect(control({ DISCLUSTER_KV_REPLICAS: '3' })).toMatchObject({ ok: true, config: { kv_replicas: 3 } });
    const fromPm2 = master({ 'discluster-master': JSON.stringify({ kv_replicas: '5' }) });
    expect(fromPm2).toMatchObject({ ok: true, config: { kv_replicas: 5 } });
  });

  it.each(['0', '6', '2.5', 'three', '-1', ''])('rejects %j with an error naming the key', (value) => {
    const result = control({ DISCLUSTER_KV_REPLICAS: value });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues.map((issue) => issue.key)).toEqual(['kv_replicas']);
    expect(formatConfigIssues('discluster-control', result.issues)).toMatch(/kv_replicas: .*1 to 5/);
  });
});

const spec = (name: string, replicas: number) => ({
  name,
  ttlMs: 0,
  description: 'kv_replicas test',
  timeoutMs: 10_000,
  replicas,
});

async function streamReplicas(nc: NatsConnection, bucket: string): Promise<number> {
  const jsm = await jetstreamManager(nc, { timeout: 10_000 });
  return (await jsm.streams.info(`KV_${bucket}`)).config.num_replicas;
}

describe('openBucket replicas on a single nats-server', () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it('creates with 1 replica by default', async () => {
    const { replicas: _unused, ...withoutReplicas } = spec('single_default', 1);
    const bucket = await openBucket(nc, withoutReplicas);
    expect(bucket.replicas).toBe(1);
  });

  it('refuses 3 replicas with DISCLUSTER_ERR_BUCKET_REPLICAS naming the bucket and the setting', async () => {
    const error = await openBucket(nc, spec('single_three', 3)).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(DisclusterError);
    expect((error as DisclusterError).code).toBe(ErrorCode.BucketReplicas);
    expect((error as Error).message).toMatch(/single_three.*3 replicas.*kv_replicas/s);
  });

  it('reports an existing 1-replica bucket it cannot raise: wanted, actual and what to do', async () => {
    await openBucket(nc, spec('single_existing', 1));
    const error = await openBucket(nc, spec('single_existing', 3)).catch((thrown: unknown) => thrown);
    expect((error as DisclusterError).code).toBe(ErrorCode.BucketReplicas);
    expect((error as Error).message).toMatch(
      /single_existing has 1 replica but kv_replicas is 3.*nats stream edit KV_single_existing --replicas 3/s,
    );
  });
});

describe('openBucket replicas on a 3-node NATS cluster', () => {
  let cluster: NatsClusterHandle;
  let nc: NatsConnection;
  beforeAll(async () => {
    cluster = await startNatsCluster({ nodes: 3 });
    nc = await connect({ servers: [...cluster.urls] });
  }, 120_000);
  afterAll(async () => {
    await nc?.close();
    await cluster?.stop();
  });

  it('creates a new bucket with kv_replicas replicas', async () => {
    const bucket = await openBucket(nc, spec('cluster_new', 3));
    expect(bucket.replicas).toBe(3);
    expect(await streamReplicas(nc, 'cluster_new')).toBe(3);
  });

  it('raises an existing bucket with fewer replicas, keeping its entries', async () => {
    const old = await openBucket(nc, spec('cluster_raised', 1));
    await old.kv.put('kept', 'yes');
    const raised = await openBucket(nc, spec('cluster_raised', 3));
    expect(raised.replicas).toBe(3);
    expect(await streamReplicas(nc, 'cluster_raised')).toBe(3);
    expect((await raised.kv.get('kept'))?.string()).toBe('yes');
  });

  it('never lowers a bucket: a process on the default 1 keeps the fleet redundancy', async () => {
    await openBucket(nc, spec('cluster_kept', 3));
    const bound = await openBucket(nc, spec('cluster_kept', 1));
    expect(bound.replicas).toBe(3);
    expect(await streamReplicas(nc, 'cluster_kept')).toBe(3);
  });
});
