/**
 * Issue 13 (a): the daily session-start budget stays monotonic within its period across restarts,
 * and a fleet held at the floor gets fresh data after the real reset without a restart, asking
 * Discord once for the whole fleet.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import {
  startDiscordSimProcess,
  startNatsServer,
  waitFor,
  type DiscordSimProcess,
  type NatsServerHandle,
} from 'discluster-testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NatsIdentifyThrottler, type ClusterAssignment, type NatsIdentifyThrottlerOptions } from '../src';
import { Cleanup, connectNats, uniqueBot } from './helpers';
import { gatewayOf, inProcessCluster } from './standaloneHarness';

const HOUR = 3_600_000;
const TOKEN = 'budget-test-token';

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

async function throttler(
  name: string,
  options: NatsIdentifyThrottlerOptions,
): Promise<NatsIdentifyThrottler> {
  const nc: NatsConnection = await connectNats(nats.url, name);
  cleanup.add(() => nc.close());
  const created = await NatsIdentifyThrottler.create(nc, options);
  cleanup.add(() => created.close());
  return created;
}

describe('a restarted cluster fed an old plan', () => {
  // A simulator per test: both tests use one token under different bot names, so a shared simulator
  // would see the second test's IDENTIFYs inside the first one's rate-limit window and refuse them.
  let sim: DiscordSimProcess;
  beforeEach(async () => {
    sim = await startDiscordSimProcess({
      token: TOKEN,
      guilds: 20,
      shards: 2,
      'max-concurrency': 2,
      'identify-window-ms': 200,
    });
  });
  afterEach(async () => {
    // The test's cluster first, so it does not reconnect to a simulator that is gone.
    await cleanup.run();
    await sim?.stop();
  });

  it('keeps the stored budget: MASTER’s GET /gateway/bot from hours ago does not give back spent starts', async () => {
    const bot = uniqueBot('budget');
    // What the fleet has counted today: 30 starts left, the period ends in an hour.
    const ledger = await throttler('ledger', { bot, shardCount: 2, maxConcurrency: 2 });
    await ledger.updateBudget({ total: 1000, remaining: 30, reset_after: HOUR, max_concurrency: 2 });
    const stored = await ledger.readBudget();

    // The plan MASTER made three hours ago: 990 left then, resetting in four hours (the same reset).
    const live = await gatewayOf(sim, TOKEN);
    const gateway: ClusterAssignment['gateway'] = {
      ...live,
      session_start_limit: { total: 1000, remaining: 990, reset_after: 4 * HOUR, max_concurrency: 2 },
      fetchedAt: Date.now() - 3 * HOUR,
    };
    const nc = await connectNats(nats.url, 'cluster');
    cleanup.add(() => nc.close());
    const cluster = inProcessCluster(
      { token: TOKEN, bot, gateway, shardCount: 2, nats: nc },
      { identifyWindowMs: 200 },
    );
    cluster.on('error', () => undefined);
    cleanup.add(() => cluster.stop());
    await cluster.start();
    const after = await ledger.readBudget();
    // Two IDENTIFYs spent from what was stored; before the fix the record was replaced by 990.
    expect(after?.remaining).toBe(28);
    expect(after?.resetAt).toBe(stored?.resetAt);
  });

  it('held at the floor past the reset, asks Discord (the assignment’s api) and identifies without a restart', async () => {
    const bot = uniqueBot('budget');
    const ledger = await throttler('ledger', { bot, shardCount: 2, maxConcurrency: 2 });
    // At the floor, fetched a day ago: the period is over, but nobody has fresh data.
    await ledger.updateBudget(
      { total: 1000, remaining: 10, reset_after: HOUR, max_concurrency: 2 },
      Date.now() - 24 * HOUR,
    );
    const live = await gatewayOf(sim, TOKEN);
    const gateway: ClusterAssignment['gateway'] = {
      ...live,
      session_start_limit: { total: 1000, remaining: 10, reset_after: HOUR, max_concurrency: 2 },
      fetchedAt: Date.now() - 24 * HOUR,
      api: sim.rest,
    };
    const nc = await connectNats(nats.url, 'cluster');
    cleanup.add(() => nc.close());
    const cluster = inProcessCluster(
      { token: TOKEN, bot, gateway, shardCount: 2, nats: nc },
      { identifyWindowMs: 200 },
    );
    cluster.on('error', () => undefined);
    cleanup.add(() => cluster.stop());
    await cluster.start();
    const state = await sim.state();
    expect((await ledger.readBudget())?.remaining).toBe(state['sessionStartRemaining']);
  });
});

describe('a fleet held at the floor past the reset', () => {
  it('asks for fresh data once for the whole fleet, and the held shards identify', async () => {
    const bot = uniqueBot('refresh');
    let calls = 0;
    const source = async () => {
      calls++;
      return { total: 1000, remaining: 1000, reset_after: 24 * HOUR, max_concurrency: 4 };
    };
    const options: NatsIdentifyThrottlerOptions = {
      bot,
      shardCount: 4,
      // One rate-limit key per process: each shard meets the floor on its own.
      maxConcurrency: 4,
      windowMs: 100,
      budgetFloor: 10,
      budgetPollMs: 100,
      sessionStartLimitSource: source,
      budgetRefreshIntervalMs: 60_000,
    };
    const processes = await Promise.all([0, 1, 2, 3].map((index) => throttler(`p${index}`, options)));
    // At the floor, and the period ended a minute ago (no one has fetched since).
    await processes[0]!.updateBudget(
      { total: 1000, remaining: 10, reset_after: HOUR, max_concurrency: 4 },
      Date.now() - HOUR - 60_000,
    );
    const signal = new AbortController().signal;
    await Promise.all(processes.map((p, shardId) => p.waitForIdentify(shardId, signal)));
    expect(calls).toBe(1);
    await waitFor(async () => (await processes[0]!.readBudget())?.remaining === 996, {
      timeoutMs: 30_000,
      description: 'four starts spent from the fresh budget',
    });
  });
});
