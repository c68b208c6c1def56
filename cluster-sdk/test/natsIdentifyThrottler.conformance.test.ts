import type { NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, type NatsServerHandle } from 'discluster-testing';
import { afterAll, beforeAll } from 'vitest';
import { NatsIdentifyThrottler } from '../src';
import { FULL_BUDGET, connectNats, uniqueBot } from './helpers';
import { identifyThrottlerConformance } from './identifyThrottler.conformance';

let server: NatsServerHandle;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connectNats(server.url, 'conformance');
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

// A fresh bot namespace per throttler keeps tests apart on one server.
identifyThrottlerConformance('NatsIdentifyThrottler', async ({ maxConcurrency, windowMs, shardCount }) => {
  const throttler = await NatsIdentifyThrottler.create(nc, {
    bot: uniqueBot(),
    maxConcurrency,
    windowMs,
    shardCount,
  });
  await throttler.updateBudget({ ...FULL_BUDGET, max_concurrency: maxConcurrency });
  return throttler;
});
