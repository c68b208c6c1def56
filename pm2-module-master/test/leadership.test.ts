import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  startNatsServer,
  startTcpProxy,
  waitFor,
  type NatsServerHandle,
  type TcpProxyHandle,
} from 'discluster-testing';
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

async function candidate(name: string, url: string, log: string[]) {
  const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  connections.push(nc);
  const bucket = await LeaderBucket.open({ nc, bot: 'lead', ttlMs: TTL, logger: pino({ level: 'silent' }) });
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
});
