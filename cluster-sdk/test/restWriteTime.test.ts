/**
 * A global slot counts from when a request really reaches its socket (run 2 of session 9's busy
 * runs: one global 429 while a host was killed and the machine starved). undici writes a request
 * queued behind another on a busy connection only when that one is done: the limiter must move the
 * slot to then, not keep the time it handed the request over.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Kvm } from '@nats-io/kv';
import { startNatsServer, waitFor, type NatsServerHandle } from 'discluster-testing';
import { restBucket } from 'discluster-protocol/kv';
import { RestGlobalSlotRecordSchema } from 'discluster-protocol/restRecords';
import { decodeRecord } from 'discluster-protocol/schemas';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FleetRestLimiter } from '../src';
import { reportingWriteTime } from '../src/rest/writeTime';
import { Cleanup, connectNats, uniqueBot } from './helpers';

const HOLD_MS = 600;
let nats: NatsServerHandle;
const cleanup = new Cleanup();

beforeAll(async () => {
  nats = await startNatsServer();
});
afterEach(async () => {
  await cleanup.run();
});
afterAll(async () => {
  await nats?.stop();
});

/** An HTTP server that answers `/slow` after HOLD_MS and anything else at once. */
async function slowServer(): Promise<string> {
  const server = http.createServer((req, res) => {
    const answer = (): void => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    };
    if (req.url?.includes('slow')) setTimeout(answer, HOLD_MS);
    else answer();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.add(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** One connection: a second request waits in undici until the first is answered. */
function oneConnection(): Agent {
  const agent = new Agent({ connections: 1, pipelining: 1 });
  cleanup.add(() => agent.close());
  return agent;
}

describe('the real send time of a request', () => {
  it('is reported when undici writes it, not when it was handed over', async () => {
    const base = await slowServer();
    const agent = oneConnection();
    const handedOver = Date.now();
    const written: number[] = [];
    const first = request(`${base}/slow`, { dispatcher: reportingWriteTime(agent, () => undefined) });
    const second = request(`${base}/fast`, {
      dispatcher: reportingWriteTime(agent, (at) => written.push(at)),
    });
    await (await first).body.dump();
    await (await second).body.dump();
    expect(written).toHaveLength(1);
    // Written only once the first was answered: at least HOLD_MS after it was handed over.
    expect(written[0]! - handedOver).toBeGreaterThanOrEqual(HOLD_MS - 50);
  });

  it("moves the global slot of a request undici sent late to the request's real send time", async () => {
    const base = await slowServer();
    const agent = oneConnection();
    const bot = uniqueBot('wt');
    const nc = await connectNats(nats.url, 'rest-write-time');
    cleanup.add(() => nc.close());
    const limiter = await FleetRestLimiter.open(nc, { bot, token: 'write-time-token', processes: 1 });
    cleanup.add(() => limiter.close());
    const handedOver = Date.now();
    const first = limiter.makeRequest(`${base}/slow`, { method: 'GET', dispatcher: agent });
    const second = limiter.makeRequest(`${base}/fast`, { method: 'GET', dispatcher: agent });
    await Promise.all([first, second]);
    // The move is a KV write of its own: give it a moment after the answer (a liveness bound).
    const kv = await new Kvm(nc).open(restBucket(bot));
    const latestSlotTime = async (): Promise<number> => {
      let latest = 0;
      for await (const key of await kv.keys('g.>')) {
        const entry = await kv.get(key);
        const record = entry && decodeRecord(RestGlobalSlotRecordSchema, entry.value);
        if (record?.ok) latest = Math.max(latest, record.value.at);
      }
      return latest;
    };
    let latest = 0;
    await waitFor(async () => (latest = await latestSlotTime()) >= handedOver + HOLD_MS - 50, {
      timeoutMs: 30_000,
      intervalMs: 100,
      description: "a global slot moved to the late request's send time",
    }).catch(() => undefined);
    // Without the report both slots keep the time the requests were handed over (about handedOver).
    expect(latest - handedOver).toBeGreaterThanOrEqual(HOLD_MS - 50);
  });
});
