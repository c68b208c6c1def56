/**
 * Issue 13 (b): no path reaches IDENTIFY without a slot. @discordjs/ws 2.0.4 answers a rejected
 * `waitForIdentify` (other than its own abort) by reconnecting and sending IDENTIFY anyway; the
 * throttler rejects when it is closed or when the NATS connection closes for good (e.g. after two
 * auth errors in a row). The shard must be held instead, and a cluster whose connection closed
 * for good stops its shards.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { DisclusterError, ErrorCode } from 'discluster-protocol';
import { waitFor, type SimJson } from 'discluster-testing';
import { describe, expect, it } from 'vitest';
import { holdOnFailure } from '../src/identify/holdOnFailure';
import { connectNats, uniqueBot } from './helpers';
import { gatewayOf, inProcessCluster, useNatsAndSim } from './standaloneHarness';

const TOKEN = 'hold-test-token';

describe('holdOnFailure', () => {
  it('passes a grant through', async () => {
    const held: number[] = [];
    const wrapped = holdOnFailure({ waitForIdentify: async () => undefined }, (id) => held.push(id));
    await expect(wrapped.waitForIdentify(3, new AbortController().signal)).resolves.toBeUndefined();
    expect(held).toEqual([]);
  });

  it('passes the shard’s own abort through', async () => {
    const controller = new AbortController();
    const abortError = new Error('aborted by the shard');
    const wrapped = holdOnFailure(
      {
        waitForIdentify: (_id, signal) =>
          new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(abortError))),
      },
      () => {
        throw new Error('must not hold an aborted wait');
      },
    );
    const waiting = wrapped.waitForIdentify(0, controller.signal);
    controller.abort();
    await expect(waiting).rejects.toBe(abortError);
  });

  it('holds a shard whose wait failed for another reason until its signal aborts, never resolving', async () => {
    const controller = new AbortController();
    const held: Array<[number, unknown]> = [];
    const failure = new DisclusterError(ErrorCode.NatsClosed, 'the NATS connection is closed');
    const wrapped = holdOnFailure({ waitForIdentify: async () => Promise.reject(failure) }, (id, error) =>
      held.push([id, error]),
    );
    let settled: 'resolved' | 'rejected' | null = null;
    const waiting = wrapped.waitForIdentify(5, controller.signal).then(
      () => (settled = 'resolved'),
      (error: unknown) => {
        settled = 'rejected';
        return error;
      },
    );
    await waitFor(() => held.length === 1, { timeoutMs: 5_000, description: 'the hold reported' });
    expect(held[0]).toEqual([5, failure]);
    // Many turns of the event loop later it is still pending: only the abort ends it.
    for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBeNull();
    controller.abort();
    const error = await waiting;
    expect(settled).toBe('rejected');
    expect((error as DisclusterError).code).toBe(ErrorCode.IdentifyAborted);
  });
});

describe('a cluster whose NATS connection closes for good while a shard waits to identify', () => {
  // One rate-limit key: shard 1 waits for shard 0's slot, and asks NATS again once it expires.
  const env = useNatsAndSim(TOKEN, {
    guilds: 20,
    shards: 2,
    'max-concurrency': 1,
    'identify-window-ms': 3_000,
  });

  it('holds the waiting shard (no IDENTIFY without a slot), reports why, and stops its shards', async () => {
    const gateway = await gatewayOf(env.sim, TOKEN);
    const nc: NatsConnection = await connectNats(env.nats.url, 'hold-test');
    const cluster = inProcessCluster(
      { token: TOKEN, bot: uniqueBot('hold'), gateway, shardCount: 2, nats: nc },
      { identifyWindowMs: 3_000 },
    );
    const errors: DisclusterError[] = [];
    cluster.on('error', (error) => errors.push(error as DisclusterError));
    let stopped = false;
    void cluster.start().catch(() => undefined);
    await waitFor(() => cluster.status().some((shard) => shard.id === 0 && shard.state === 'ready'), {
      timeoutMs: 60_000,
      description: 'shard 0 ready',
    });
    await waitFor(() => cluster.status().some((shard) => shard.id === 1 && shard.state === 'waiting'), {
      timeoutMs: 60_000,
      description: 'shard 1 waiting for the slot shard 0 holds',
    });

    const opened = ((await env.sim.state()) as SimJson)['connectionsOpened'] as number;
    await nc.close();
    await waitFor(
      async () => {
        const state = (await env.sim.state()) as SimJson;
        stopped = state['liveSessions'].length === 0;
        // Before the fix, shard 1 identified right after the rejection: a second IDENTIFY.
        return stopped || state['identifies'] + state['violations'].identifyRate >= 2;
      },
      { timeoutMs: 60_000, description: 'the cluster to stop its shards (or shard 1 to identify)' },
    );
    const state = (await env.sim.state()) as SimJson;
    const identifies = (await (await fetch(`${env.sim.admin}/identifies`)).json()) as unknown[];
    expect(identifies).toHaveLength(1);
    expect(state['violations'].identifyRate).toBe(0);
    expect(stopped).toBe(true);
    // Held, not churned: before the fix @discordjs/ws reconnected shard 1 every 500 ms, each time
    // failing the wait again (and sending IDENTIFYs without a slot once a wait succeeded).
    expect(state['connectionsOpened']).toBe(opened);
    expect(
      errors.some((error) => error.code === ErrorCode.NatsClosed && /closed for good/.test(error.message)),
    ).toBe(true);
    await cluster.stop();
  });
});
