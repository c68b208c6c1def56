import { setTimeout as sleep } from 'node:timers/promises';
import { Bucket, Kvm, type KvEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  ErrorCode,
  identifyBucket,
  identifySlotKey,
  identifyWaitersBucket,
  isDisclusterError,
} from 'discluster-protocol';
import { startNatsServer, waitFor, type NatsServerHandle } from 'discluster-testing';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { NatsIdentifyThrottler, type IdentifyWaitReason, type NatsIdentifyThrottlerOptions } from '../src';
import { Cleanup, FULL_BUDGET, connectNats, uniqueBot } from './helpers';
import {
  expectWindowSpacing,
  rejectionOf,
  requestAll,
  stall,
  type Grant,
} from './identifyThrottler.conformance';

let server: NatsServerHandle;
const cleanup = new Cleanup();

beforeAll(async () => {
  server = await startNatsServer();
});

afterEach(async () => {
  await cleanup.run();
});

afterAll(async () => {
  await server?.stop();
});

/** One "process": its own NATS connection and throttler. */
async function instance(
  name: string,
  options: NatsIdentifyThrottlerOptions,
  url = server.url,
): Promise<{ nc: NatsConnection; throttler: NatsIdentifyThrottler }> {
  const nc = await connectNats(url, name);
  cleanup.add(() => nc.close());
  const throttler = await NatsIdentifyThrottler.create(nc, options);
  cleanup.add(() => throttler.close());
  return { nc, throttler };
}

describe('NatsIdentifyThrottler across processes', () => {
  it('never grants one key twice inside a window across independent instances', async () => {
    const options = { bot: uniqueBot(), maxConcurrency: 4, windowMs: 150, shardCount: 32 };
    const instances = await Promise.all([0, 1, 2, 3].map((index) => instance(`p${index}`, options)));
    await instances[0]?.throttler.updateBudget({ ...FULL_BUDGET, max_concurrency: 4 });
    const grants: Grant[] = [];
    // Each "process" runs one contiguous block of 8 shards: two per rate-limit key.
    await Promise.all(
      instances.map(({ throttler }, index) =>
        requestAll(
          throttler,
          Array.from({ length: 8 }, (_, offset) => index * 8 + offset),
          options.maxConcurrency,
          grants,
        ),
      ),
    );
    expect(grants).toHaveLength(32);
    expectWindowSpacing(grants, options.windowMs);
    const budget = await instances[1]?.throttler.readBudget();
    expect(budget?.remaining).toBe(1000 - 32);
  });

  it('keeps the rate when ordering cannot help: instances racing for the same shard ids', async () => {
    // Equal ids are never "lower" than each other, so only the slot's compare-and-set separates them.
    const options = { bot: uniqueBot(), maxConcurrency: 2, windowMs: 150, shardCount: 4, orderingDelayMs: 0 };
    const instances = await Promise.all([0, 1, 2, 3].map((index) => instance(`dup${index}`, options)));
    await instances[0]?.throttler.updateBudget({ ...FULL_BUDGET, max_concurrency: 2 });
    const grants: Grant[] = [];
    await Promise.all(instances.map(({ throttler }) => requestAll(throttler, [0, 1, 2, 3], 2, grants)));
    expect(grants).toHaveLength(16);
    expectWindowSpacing(grants, options.windowMs);
  });

  it('lets the lower shard id of a key go first across instances', async () => {
    const options = { bot: uniqueBot(), maxConcurrency: 4, windowMs: 300, shardCount: 16 };
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((name) => instance(name, options)));
    await a?.throttler.updateBudget({ ...FULL_BUDGET, max_concurrency: 4 });
    const grants: Grant[] = [];
    await requestAll(a!.throttler, [0], 4, grants);
    // While key 0 is busy, a higher id asks first, from another process.
    const later = requestAll(b!.throttler, [12], 4, grants);
    const lower = requestAll(c!.throttler, [4], 4, grants);
    await Promise.all([later, lower]);
    expect(grants.map((grant) => grant.shardId)).toEqual([0, 4, 12]);
    expectWindowSpacing(grants, options.windowMs);
  });

  it('does not let a killed instance block others beyond the TTLs', async () => {
    const options = { bot: uniqueBot(), maxConcurrency: 4, windowMs: 150, shardCount: 16, waiterTtlMs: 600 };
    const killed = await instance('killed', options);
    const survivor = await instance('survivor', options);
    await survivor.throttler.updateBudget({ ...FULL_BUDGET, max_concurrency: 4 });
    const grants: Grant[] = [];
    // The killed process holds key 0's slot and has a lower waiter (shard 4) announced.
    await requestAll(killed.throttler, [0], 4, grants);
    const orphan = rejectionOf(killed.throttler.waitForIdentify(4, new AbortController().signal));
    await waitFor(async () => (await survivorSeesWaiters(survivor.nc, options.bot)) > 0, {
      description: 'the waiter of shard 4 to be announced',
    });
    // Killed: its connection is gone, nothing is released or withdrawn.
    await killed.nc.close();
    expect(isDisclusterError(await orphan, ErrorCode.NatsClosed)).toBe(true);
    await requestAll(survivor.throttler, [8], 4, grants);
    expect(grants.map((grant) => grant.shardId)).toEqual([0, 8]);
    expectWindowSpacing(grants, options.windowMs);
  });
});

describe('NatsIdentifyThrottler budget', () => {
  it('waits at the safety floor with a reason, then proceeds when fresh data raises remaining', async () => {
    const options = { bot: uniqueBot(), maxConcurrency: 4, windowMs: 150, shardCount: 16, budgetFloor: 10 };
    const { throttler } = await instance('floor', options);
    const refresher = await instance('refresher', options);
    // The period ends in a few seconds: only data observed after that starts a new one.
    await throttler.updateBudget({ total: 1000, remaining: 12, reset_after: 4_000, max_concurrency: 4 });
    const resetAt = (await throttler.readBudget())!.resetAt;
    const reasons: Array<[number, IdentifyWaitReason]> = [];
    throttler.on('waiting', (shardId, reason) => reasons.push([shardId, reason]));
    const granted: number[] = [];
    const all = Promise.all(
      [0, 1, 2, 3].map((shardId) =>
        throttler.waitForIdentify(shardId, new AbortController().signal).then(() => granted.push(shardId)),
      ),
    );
    await waitFor(() => granted.length === 2 && reasons.length === 2, {
      description: 'two grants and two shards reporting the floor',
    });
    // Exactly two starts fit above the floor; the budget never goes below it.
    expect((await throttler.readBudget())?.remaining).toBe(10);
    for (const [, reason] of reasons) {
      expect(reason.kind).toBe('budget-floor');
      expect(reason.message).toMatch(
        /^session_start_limit\.remaining 10 is at the safety floor 10; resets in \ds$/,
      );
    }
    const blocked = reasons.map(([shardId]) => shardId).sort();
    expect(blocked).toEqual([0, 1, 2, 3].filter((shardId) => !granted.includes(shardId)));
    // A new daily period observed by another process after the reset lets them through.
    await waitFor(() => Date.now() > resetAt, { description: 'the stored period to end' });
    await refresher.throttler.updateBudget({ ...FULL_BUDGET, max_concurrency: 4 });
    await all;
    expect(granted.sort()).toEqual([0, 1, 2, 3]);
    expect((await throttler.readBudget())?.remaining).toBe(998);
  });

  it('a shard queued behind a lower one of its key that waits at the floor says why too', async () => {
    // One rate-limit key: shards 1 and 2 queue behind each other; only one start fits above the floor.
    const options = { bot: uniqueBot(), maxConcurrency: 1, windowMs: 150, shardCount: 4, budgetFloor: 10 };
    const { throttler } = await instance('queued', options);
    await throttler.updateBudget({ total: 1000, remaining: 11, reset_after: 3_600_000, max_concurrency: 1 });
    const reasons = new Map<number, IdentifyWaitReason>();
    throttler.on('waiting', (shardId, reason) => reasons.set(shardId, reason));
    const granted: number[] = [];
    const waits = [0, 1, 2].map((shardId) => {
      const abort = new AbortController();
      cleanup.add(() => abort.abort());
      return {
        abort,
        done: throttler.waitForIdentify(shardId, abort.signal).then(
          () => granted.push(shardId),
          () => undefined,
        ),
      };
    });
    await waitFor(() => granted.length === 1 && reasons.size === 2, {
      description: 'one grant, and both other shards reporting the floor',
    });
    expect(granted).toEqual([0]);
    expect([...reasons.keys()].sort()).toEqual([1, 2]);
    for (const reason of reasons.values()) expect(reason.kind).toBe('budget-floor');
    expect((await throttler.readBudget())?.remaining).toBe(10);
    for (const wait of waits) wait.abort.abort();
    await Promise.all(waits.map((wait) => wait.done));
  });

  it('a shard that reserved the last start above the floor gives it back when a lower shard of its key arrives', async () => {
    // Clusters start in any order: shard 2 reserves the only start above the floor and waits for the
    // slot (held by shard 1); then shard 0 of the same key arrives. Shard 2 must step back and refund,
    // or shard 0 (first in line) could never reserve and neither would ever identify.
    const options = { bot: uniqueBot(), maxConcurrency: 1, windowMs: 400, shardCount: 4, budgetFloor: 10 };
    const early = await instance('early', options);
    const late = await instance('late', options);
    await early.throttler.updateBudget({
      total: 1000,
      remaining: 12,
      reset_after: 3_600_000,
      max_concurrency: 1,
    });
    const granted: number[] = [];
    const waits: Array<Promise<unknown>> = [];
    const wait = (throttler: NatsIdentifyThrottler, shardId: number): void => {
      const abort = new AbortController();
      cleanup.add(() => abort.abort());
      waits.push(
        throttler.waitForIdentify(shardId, abort.signal).then(
          () => granted.push(shardId),
          () => undefined,
        ),
      );
    };
    wait(early.throttler, 1);
    await waitFor(() => granted.length === 1, { description: 'shard 1 granted' });
    wait(early.throttler, 2);
    await waitFor(async () => (await early.throttler.readBudget())?.remaining === 10, {
      description: 'shard 2 to reserve the last start above the floor',
    });
    wait(late.throttler, 0);
    await waitFor(() => granted.length === 2, { description: 'a second grant' });
    expect(granted).toEqual([1, 0]);
    expect((await early.throttler.readBudget())?.remaining).toBe(10);
  });

  it('does not let stale data from the same period raise remaining', async () => {
    const options = { bot: uniqueBot(), maxConcurrency: 1, windowMs: 150, shardCount: 4 };
    const { throttler } = await instance('stale', options);
    const fetchedAt = Date.now();
    await throttler.updateBudget(
      { total: 1000, remaining: 500, reset_after: 3_600_000, max_concurrency: 1 },
      fetchedAt,
    );
    await requestAll(throttler, [0], 1, []);
    // The same /gateway/bot answer arriving again (fetched before that identify) changes nothing.
    const merged = await throttler.updateBudget(
      { total: 1000, remaining: 500, reset_after: 3_600_000 - 1000, max_concurrency: 1 },
      fetchedAt + 1000,
    );
    expect(merged.remaining).toBe(499);
  });

  it('waits while no budget is known and reports it', async () => {
    const options = { bot: uniqueBot(), maxConcurrency: 1, windowMs: 150, shardCount: 4 };
    const { throttler } = await instance('unknown', options);
    const reasons: IdentifyWaitReason[] = [];
    throttler.on('waiting', (_shardId, reason) => reasons.push(reason));
    const controller = new AbortController();
    const wait = rejectionOf(throttler.waitForIdentify(0, controller.signal));
    await waitFor(() => reasons.length > 0, { description: 'a budget-unknown report' });
    expect(reasons[0]?.kind).toBe('budget-unknown');
    controller.abort();
    expect(isDisclusterError(await wait, ErrorCode.IdentifyAborted)).toBe(true);
  });

  it('refunds the reservation of an aborted wait', async () => {
    const options = { bot: uniqueBot(), maxConcurrency: 1, windowMs: 1000, shardCount: 4 };
    const { throttler } = await instance('refund', options);
    await throttler.updateBudget({ ...FULL_BUDGET, max_concurrency: 1 });
    await requestAll(throttler, [0], 1, []);
    const controller = new AbortController();
    const wait = rejectionOf(throttler.waitForIdentify(1, controller.signal));
    // Shard 1 reserves a start, then waits for the slot.
    await waitFor(async () => (await throttler.readBudget())?.remaining === 998, {
      description: 'shard 1 to reserve a session start',
    });
    controller.abort();
    await wait;
    await waitFor(async () => (await throttler.readBudget())?.remaining === 999, {
      description: 'the unused start to be refunded',
    });
  });
});

describe('NatsIdentifyThrottler when NATS fails', () => {
  it('never grants while NATS is down, reports it, and rejects promptly on abort', async () => {
    const own = await startNatsServer();
    cleanup.add(() => own.stop());
    const options = {
      bot: uniqueBot(),
      maxConcurrency: 1,
      windowMs: 150,
      shardCount: 4,
      requestTimeoutMs: 300,
      retryMaxMs: 300,
    };
    const { throttler } = await instance('down', options, own.url);
    await throttler.updateBudget({ ...FULL_BUDGET, max_concurrency: 1 });
    await requestAll(throttler, [0], 1, []);
    const reasons: IdentifyWaitReason[] = [];
    throttler.on('waiting', (_shardId, reason) => reasons.push(reason));
    await own.stop();
    const controller = new AbortController();
    let granted = false;
    const wait = rejectionOf(
      throttler.waitForIdentify(1, controller.signal).then(() => {
        granted = true;
      }),
    );
    await waitFor(() => reasons.some((reason) => reason.kind === 'nats-unavailable'), {
      description: 'a nats-unavailable report',
    });
    expect(granted).toBe(false);
    controller.abort();
    expect(isDisclusterError(await wait, ErrorCode.IdentifyAborted)).toBe(true);
  });

  it('keeps slots across a nats-server restart and recovers without a crash', async () => {
    const own = await startNatsServer();
    cleanup.add(() => own.stop());
    const options = {
      bot: uniqueBot(),
      maxConcurrency: 1,
      windowMs: 150,
      shardCount: 4,
      requestTimeoutMs: 500,
    };
    const { throttler } = await instance('restart', options, own.url);
    await throttler.updateBudget({ ...FULL_BUDGET, max_concurrency: 1 });
    const grants: Grant[] = [];
    await requestAll(throttler, [0], 1, grants);
    const next = requestAll(throttler, [1], 1, grants);
    await own.restart();
    await next;
    expect(grants.map((grant) => grant.shardId)).toEqual([0, 1]);
    expectWindowSpacing(grants, options.windowMs);
  });
});

describe('NatsIdentifyThrottler margin', () => {
  it('gives back a slot whose taking took longer than the margin, and retries', async () => {
    const create = Bucket.prototype.create;
    let slowed = false;
    // The first slot taken answers 60 ms late, as if the event loop or the network stalled.
    const spy = vi.spyOn(Bucket.prototype, 'create').mockImplementation(async function (
      this: Bucket,
      ...args: Parameters<Bucket['create']>
    ) {
      const revision = await create.apply(this, args);
      if (args[0].startsWith('slot.') && !slowed) {
        slowed = true;
        await sleep(60);
      }
      return revision;
    });
    cleanup.add(() => spy.mockRestore());
    const options = { bot: uniqueBot(), maxConcurrency: 1, windowMs: 150, shardCount: 4, safetyMarginMs: 25 };
    const { throttler } = await instance('slow', options);
    await throttler.updateBudget({ ...FULL_BUDGET, max_concurrency: 1 });
    const debug: string[] = [];
    throttler.on('debug', (message) => debug.push(message));
    const grants: Grant[] = [];
    await requestAll(throttler, [0, 1], 1, grants);
    expect(debug.some((message) => /took \d+\.\d ms \(> margin 25 ms\); retrying/.test(message))).toBe(true);
    expect(grants.map((grant) => grant.shardId)).toEqual([0, 1]);
    expectWindowSpacing(grants, options.windowMs);
    // The discarded attempt cost no session start.
    expect((await throttler.readBudget())?.remaining).toBe(998);
  });
});

describe('NatsIdentifyThrottler re-stamp', () => {
  it('re-writes a granted slot once the IDENTIFY is sent, so its TTL runs from there', async () => {
    // A long window: on a busy machine the slot must still be there when the test reads it back.
    const options = { bot: uniqueBot(), maxConcurrency: 1, windowMs: 10_000, shardCount: 4 };
    const { nc, throttler } = await instance('restamp', options);
    await throttler.updateBudget({ ...FULL_BUDGET, max_concurrency: 1 });
    const slots = await new Kvm(nc).open(identifyBucket(options.bot));
    let sentAt = 0;
    await throttler.waitForIdentify(0, new AbortController().signal).then(() => {
      // The caller's IDENTIFY, sent late in the grant's microtasks.
      stall(40);
      sentAt = Date.now();
    });
    // The grant's create was the bucket's first message (revision 1); the re-stamp comes after it.
    let entry: KvEntry | null = null;
    await waitFor(
      async () => {
        entry = await slots.get(identifySlotKey(0));
        return entry !== null && entry.revision > 1;
      },
      { description: 'the slot to be re-stamped' },
    );
    const restamped = entry as KvEntry | null;
    expect(restamped?.operation).toBe('PUT');
    // nats-server stored the re-write after the send: the slot expires window + margin after it.
    expect(restamped?.created.getTime()).toBeGreaterThanOrEqual(sentAt);
  });

  it('keeps window + margin between IDENTIFYs of processes whose sender stalled after its grant', async () => {
    const options = { bot: uniqueBot(), maxConcurrency: 1, windowMs: 150, shardCount: 4, safetyMarginMs: 25 };
    const [a, b] = await Promise.all(['stalls', 'next'].map((name) => instance(name, options)));
    await a!.throttler.updateBudget({ ...FULL_BUDGET, max_concurrency: 1 });
    const sent: Grant[] = [];
    const identify = (throttler: NatsIdentifyThrottler, shardId: number, stallMs: number): Promise<void> =>
      throttler.waitForIdentify(shardId, new AbortController().signal).then(() => {
        stall(stallMs);
        sent.push({ shardId, key: 0, at: performance.now() });
      });
    await identify(a!.throttler, 0, 80);
    await identify(b!.throttler, 1, 0);
    // Without the re-stamp the slot would expire window + margin after it was created, 80 ms before
    // the send: shard 1 would go 95 ms after shard 0's IDENTIFY.
    expectWindowSpacing(sent, options.windowMs + options.safetyMarginMs);
  });

  it('still blocks the key a full window after an IDENTIFY sent once the slot had expired', async () => {
    // The sender stalls longer than window + margin between its grant and its IDENTIFY: its slot
    // expires meanwhile, and a shard that asks then must still wait a window after that IDENTIFY.
    const options = { bot: uniqueBot(), maxConcurrency: 1, windowMs: 150, shardCount: 4, safetyMarginMs: 25 };
    const [a, b] = await Promise.all(['stalls-long', 'asks-late'].map((name) => instance(name, options)));
    await a!.throttler.updateBudget({ ...FULL_BUDGET, max_concurrency: 1 });
    const sent: Grant[] = [];
    let next: Promise<void> | undefined;
    await a!.throttler.waitForIdentify(0, new AbortController().signal).then(() => {
      stall(250);
      sent.push({ shardId: 0, key: 0, at: performance.now() });
      next = b!.throttler.waitForIdentify(1, new AbortController().signal).then(() => {
        sent.push({ shardId: 1, key: 0, at: performance.now() });
      });
    });
    await next;
    expect(sent.map((grant) => grant.shardId)).toEqual([0, 1]);
    expectWindowSpacing(sent, options.windowMs + options.safetyMarginMs);
  });

  it('reports a failed re-stamp and still spaces grants by the window', async () => {
    const put = Bucket.prototype.put;
    // Fails the re-stamps only: a plain put of a slot (create and update set previousSeq).
    const spy = vi.spyOn(Bucket.prototype, 'put').mockImplementation(async function (
      this: Bucket,
      ...args: Parameters<Bucket['put']>
    ) {
      if (args[0].startsWith('slot.') && args[2]?.previousSeq === undefined)
        throw new Error('simulated NATS failure');
      return put.apply(this, args);
    });
    cleanup.add(() => spy.mockRestore());
    const options = { bot: uniqueBot(), maxConcurrency: 1, windowMs: 150, shardCount: 4 };
    const { throttler } = await instance('restamp-fails', options);
    await throttler.updateBudget({ ...FULL_BUDGET, max_concurrency: 1 });
    const debug: string[] = [];
    throttler.on('debug', (message) => debug.push(message));
    const grants: Grant[] = [];
    await requestAll(throttler, [0, 1, 2], 1, grants);
    expect(grants.map((grant) => grant.shardId)).toEqual([0, 1, 2]);
    expectWindowSpacing(grants, options.windowMs);
    await waitFor(() => debug.filter((message) => message.startsWith('Could not re-stamp')).length >= 2, {
      description: 'the failed re-stamps to be reported',
    });
    expect(debug.find((message) => message.startsWith('Could not re-stamp'))).toMatch(
      /^Could not re-stamp identify slot slot\.0 after its grant: .*simulated NATS failure/,
    );
  });
});

describe('NatsIdentifyThrottler configuration', () => {
  it('refuses an existing slot bucket whose TTL is shorter than window + margin', async () => {
    const bot = uniqueBot();
    const nc = await connectNats(server.url, 'config');
    cleanup.add(() => nc.close());
    const first = await NatsIdentifyThrottler.create(nc, {
      bot,
      maxConcurrency: 1,
      windowMs: 150,
      shardCount: 1,
    });
    cleanup.add(() => first.close());
    const error = await rejectionOf(
      NatsIdentifyThrottler.create(nc, { bot, maxConcurrency: 1, windowMs: 5000, shardCount: 1 }),
    );
    expect(isDisclusterError(error, ErrorCode.BucketConfigMismatch)).toBe(true);
    expect((error as Error).message).toMatch(/TTL of 175 ms, but .* needs at least 5100 ms/);
  });

  it.each([
    [{ windowMs: 50, safetyMarginMs: 25 }, /windowMs/],
    [{ budgetFloor: -1 }, /budgetFloor/],
    [{ storage: 'disk' as 'file' }, /storage/],
    [{ bot: 'no spaces' }, /`bot` setting/],
    [{ shardCount: 0 }, /shardCount/],
  ])('rejects bad options %j with an error naming them', async (bad, message) => {
    const nc = await connectNats(server.url, 'options');
    cleanup.add(() => nc.close());
    const error = await rejectionOf(
      NatsIdentifyThrottler.create(nc, { maxConcurrency: 1, shardCount: 1, ...bad }),
    );
    expect(isDisclusterError(error)).toBe(true);
    expect((error as Error).message).toMatch(message);
  });
});

/** How many waiter announcements a fresh reader sees in the bot's waiter bucket. */
async function survivorSeesWaiters(nc: NatsConnection, bot: string): Promise<number> {
  const kv = await new Kvm(nc).open(identifyWaitersBucket(bot));
  return (await kv.status()).values;
}
