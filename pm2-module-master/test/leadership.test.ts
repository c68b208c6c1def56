import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  startNatsServer,
  startTcpProxy,
  waitFor,
  type NatsServerHandle,
  type TcpProxyHandle,
} from 'discluster-testing';
import { encodeRecord, leaderKey } from 'discluster-protocol';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaderBucket } from '../src/leadership/leaderBucket';
import { Leadership } from '../src/leadership/leadership';

const TTL = 1500;
let nats: NatsServerHandle;
let proxy: TcpProxyHandle;
const connections: NatsConnection[] = [];
const leaderships: Leadership[] = [];

beforeAll(async () => {
  nats = await startNatsServer({ jetstream: true });
  proxy = await startTcpProxy(nats.port);
});

afterAll(async () => {
  for (const leadership of leaderships) await leadership.close().catch(() => undefined);
  for (const nc of connections) await nc.close().catch(() => undefined);
  await proxy?.close();
  await nats?.stop();
});

/**
 * A bucket whose `create` answers another revision than the stored one, as nats-server before
 * 2.9.21 could after a node restart (nats-server #4365): the first renewal on it meets a conflict.
 */
function withDriftedCreate(bucket: LeaderBucket): LeaderBucket {
  const kv = new Proxy(bucket.kv, {
    get: (target, key) =>
      key === 'create'
        ? async (...args: Parameters<typeof target.create>) => (await target.create(...args)) + 1000
        : (Reflect.get(target, key) as unknown),
  });
  return new Proxy(bucket, {
    get: (target, key) => (key === 'kv' ? kv : (Reflect.get(target, key) as unknown)),
  });
}

async function candidate(
  name: string,
  url: string,
  log: string[],
  options: { bot?: string; bucket?: (bucket: LeaderBucket) => LeaderBucket } = {},
) {
  const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  connections.push(nc);
  const opened = await LeaderBucket.open({
    nc,
    bot: options.bot ?? 'lead',
    ttlMs: TTL,
    logger: pino({ level: 'silent' }),
  });
  const bucket = options.bucket ? options.bucket(opened) : opened;
  const leadership = new Leadership({
    bucket,
    instanceId: `${name}-instance-id`,
    ttlMs: TTL,
    logger: pino({ level: 'silent' }),
    onElected: () => void log.push(`${name} elected`),
    onDeposed: (reason) => void log.push(`${name} deposed: ${reason}`),
  });
  leaderships.push(leadership);
  leadership.start();
  return leadership;
}

describe('MASTER leadership', () => {
  it('one leader at a time: a leader cut off from NATS steps down before a standby can take over', async () => {
    const log: string[] = [];
    const a = await candidate('a', proxy.url('nats'), log);
    await waitFor(() => a.isLeader, { description: 'a leading' });
    const b = await candidate('b', nats.url, log);
    await new Promise((resolve) => setTimeout(resolve, TTL));
    expect(b.isLeader).toBe(false);
    proxy.cut('blackhole');
    await waitFor(() => b.isLeader, { description: 'b taking over', timeoutMs: 10_000 });
    // a stepped down (by its own deadline, 2/3 of the lease) before b could be elected (full lease).
    expect(log).toEqual(['a elected', expect.stringMatching(/^a deposed: could not renew/), 'b elected']);
    proxy.restore();
    await new Promise((resolve) => setTimeout(resolve, TTL * 2));
    // a campaigns again once NATS is back, but b holds the lease.
    expect(a.isLeader).toBe(false);
    expect(b.isLeader).toBe(true);
  });

  it('a leader whose write came back with another revision than the stored one keeps leading on the stored one (nats-server #4365)', async () => {
    const log: string[] = [];
    const a = await candidate('a', nats.url, log, { bot: 'lead-drift', bucket: withDriftedCreate });
    await waitFor(() => a.isLeader, { description: 'a leading' });
    // Several renewals (every TTL/3): each would have met the conflict and stepped down.
    await new Promise((resolve) => setTimeout(resolve, TTL * 3));
    expect(a.isLeader).toBe(true);
    expect(log).toEqual(['a elected']);
  });

  it('a leader whose key holds another MASTER’s record steps down', async () => {
    const log: string[] = [];
    const a = await candidate('a', nats.url, log, { bot: 'lead-stolen' });
    await waitFor(() => a.isLeader, { description: 'a leading' });
    // Someone else's record lands on the key (as if written by another MASTER).
    const nc = await connect({ servers: nats.url });
    connections.push(nc);
    const thief = await LeaderBucket.open({
      nc,
      bot: 'lead-stolen',
      ttlMs: TTL,
      logger: pino({ level: 'silent' }),
    });
    const stolen = {
      v: 1,
      instanceId: 'thief-instance-id',
      hostname: 'elsewhere',
      since: Date.now(),
      renewedAt: Date.now(),
    };
    await thief.kv.put(leaderKey(), encodeRecord(stolen));
    await waitFor(() => !a.isLeader, { description: 'a stepping down', timeoutMs: 10_000 });
    expect(log).toEqual(['a elected', 'a deposed: another MASTER holds the leadership']);
  });
});
