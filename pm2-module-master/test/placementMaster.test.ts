import { ErrorCode, type FleetStatus } from 'discluster-protocol';
import { waitFor } from 'discluster-testing';
import { describe, expect, it } from 'vitest';
import { startMaster, type MasterHandle } from '../src/startMaster';
import type { FakeHost, FakeHostOptions } from './fakeHost';
import { useMasterHarness } from './masterHarness';

/**
 * Placement at MASTER (docs/operations.md "Placement") against a real nats-server and discord-sim,
 * the CONTROLs played by the test (FakeHost) so every assignment can be checked: pins, weights,
 * failover of a pinned host and its return, refused pins, and `discluster drain` / `undrain`.
 */

const TOKEN = 'placement-test-token-3d9a';
const env = useMasterHarness(TOKEN, { guilds: 64, shards: 32, 'max-concurrency': 4 });
const { running } = env;

async function master(bot: string, extra: Record<string, string> = {}): Promise<MasterHandle> {
  const handle = await startMaster(
    env.masterEnv(bot, {
      DISCLUSTER_WAIT_FOR_HOSTS_MS: '30000',
      DISCLUSTER_HOST_TIMEOUT_MS: '1000',
      DISCLUSTER_LOG_LEVEL: 'silent',
      ...extra,
    }),
  );
  running.push(handle);
  return handle;
}

function host(bot: string, id: string, options: Partial<FakeHostOptions> = {}): Promise<FakeHost> {
  return env.host({ bot, id, cores: 2, ...options });
}

function range(first: number, last: number): number[] {
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

const ask = (bot: string, request: Record<string, unknown>) => env.ask(bot, request);

const hostOf = (status: FleetStatus, id: string) => status.hosts.find((entry) => entry.id === id);

describe('placement at MASTER', () => {
  it('pinned, weighted and plain hosts mixed; a lost pinned host’s shards go to the standby and come back', async () => {
    const bot = env.nextBot('pin');
    const pinned = await host(bot, 'pinned', {
      pinShards: [
        [0, 7],
        [24, 31],
      ],
    });
    const heavy = await host(bot, 'heavy', { weight: 3 });
    const plain = await host(bot, 'plain'); // an old CONTROL: no weight, no pins
    const spare = await host(bot, 'spare', { role: 'standby' });
    await master(bot, { DISCLUSTER_EXPECTED_HOSTS: '4' });
    await waitFor(() => pinned.epoch === 1 && heavy.epoch === 1 && plain.epoch === 1, {
      description: 'the first assignments',
      timeoutMs: 20_000,
    });
    expect(pinned.shardIds()).toEqual([...range(0, 7), ...range(24, 31)]);
    // 16 shards left, four buckets of 4, weights 3 : 1.
    expect(heavy.shardIds()).toEqual(range(8, 19));
    expect(plain.shardIds()).toEqual(range(20, 23));
    expect(spare.shardIds()).toEqual([]);
    for (const cluster of pinned.lastAssign()?.clusters ?? []) expect(cluster.shardIds).toHaveLength(4);
    const status = await env.status(bot);
    expect(hostOf(status, 'pinned')).toMatchObject({ pinShards: '0-7,24-31', weight: 1, drained: false });
    expect(hostOf(status, 'heavy')).toMatchObject({ pinShards: null, weight: 3 });
    expect(status.placementProblem).toBeNull();

    // The pinned host dies: the empty standby takes its shards (as it would any host's).
    pinned.stop();
    await waitFor(() => spare.shardIds().length === 16, {
      description: 'the standby took the pins',
      timeoutMs: 20_000,
    });
    expect(spare.shardIds()).toEqual([...range(0, 7), ...range(24, 31)]);
    expect(heavy.shardIds()).toEqual(range(8, 19));

    // It comes back (a new boot): its pins return to it by themselves; nothing else moves.
    const back = await host(bot, 'pinned', {
      pinShards: [
        [0, 7],
        [24, 31],
      ],
    });
    await waitFor(() => back.shardIds().length === 16 && spare.shardIds().length === 0, {
      description: 'the pins back on the pinned host',
      timeoutMs: 20_000,
    });
    expect(back.shardIds()).toEqual([...range(0, 7), ...range(24, 31)]);
    expect(heavy.shardIds()).toEqual(range(8, 19));
    expect(plain.shardIds()).toEqual(range(20, 23));
  });

  it('overlapping pins: status says so, rebalance and drain are refused, the plan stays', async () => {
    const bot = env.nextBot('overlap');
    const a = await host(bot, 'a', { pinShards: [[0, 15]] });
    const b = await host(bot, 'b');
    await master(bot, { DISCLUSTER_EXPECTED_HOSTS: '2' });
    await waitFor(() => a.epoch === 1 && b.epoch === 1, { description: 'the first plan', timeoutMs: 20_000 });
    const c = await host(bot, 'c', { pinShards: [[8, 11]] });
    await waitFor(async () => hostOf(await env.status(bot), 'c')?.state === 'online', {
      description: 'c announced',
      timeoutMs: 10_000,
    });
    const status = await env.status(bot);
    expect(status.placementProblem).toMatch(/hosts a and c both pin shards 8-11/);
    for (const request of [{ type: 'rebalance' }, { type: 'drain', hostId: 'b' }]) {
      const answer = await ask(bot, request);
      expect(answer.code, JSON.stringify(answer)).toBe(ErrorCode.PlacementRefused);
      expect(answer.result).toMatch(/both pin shards 8-11/);
    }
    // c is not given anything, and nothing moved.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await env.status(bot)).epoch).toBe(1);
    expect(c.assigns().filter((assign) => assign.clusters.length > 0)).toEqual([]);
    expect(a.shardIds()).toEqual(range(0, 15));
    // The bad host goes away: the problem is gone.
    c.stop();
    await waitFor(async () => (await env.status(bot)).placementProblem === null, {
      description: 'the problem cleared',
      timeoutMs: 10_000,
    });
  });

  it('a pin outside the shard count holds the first plan back until it is fixed', async () => {
    const bot = env.nextBot('outside');
    const wrong = await host(bot, 'p', { pinShards: [[0, 40]] });
    const b = await host(bot, 'b');
    await master(bot, { DISCLUSTER_EXPECTED_HOSTS: '2' });
    await waitFor(async () => (await env.status(bot)).placementProblem !== null, {
      description: 'the problem in status',
      timeoutMs: 20_000,
    });
    expect((await env.status(bot)).placementProblem).toMatch(
      /host p pins shards 0-40, but the bot has 32 shards/,
    );
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(wrong.assigns()).toEqual([]);
    expect(b.assigns()).toEqual([]);
    wrong.stop();
    const fixed = await host(bot, 'p', { pinShards: [[0, 3]] });
    await waitFor(() => fixed.epoch === 1 && b.epoch === 1, {
      description: 'the first plan',
      timeoutMs: 20_000,
    });
    expect(fixed.shardIds()).toEqual(range(0, 3));
    expect(b.shardIds()).toEqual(range(4, 31));
  });

  it('drain moves a host’s shards off and holds it empty, across a MASTER restart; undrain gives them back', async () => {
    const bot = env.nextBot('drain');
    const { alpha, beta, gamma } = await env.threeHostFleet(bot, (extra) => master(bot, extra));
    expect(alpha.shardIds()).toHaveLength(24);
    expect(beta.shardIds()).toEqual(range(24, 31));

    const unknown = await ask(bot, { type: 'drain', hostId: 'zeta' });
    expect(unknown.code).toBe(ErrorCode.PlacementRefused);
    expect(unknown.result).toMatch(/unknown host zeta/);

    const drained = (await ask(bot, { type: 'drain', hostId: 'beta' })).result as {
      moved: number;
      epoch: number;
    };
    expect(drained).toMatchObject({ hostId: 'beta', moved: 8, epoch: 2 });
    await waitFor(() => beta.epoch === 2 && gamma.epoch === 2, { description: 'drained', timeoutMs: 20_000 });
    expect(beta.shardIds()).toEqual([]);
    // Only beta's shards moved: to the empty standby, as on a failover.
    expect(gamma.shardIds()).toEqual(range(24, 31));
    expect(alpha.shardIds()).toHaveLength(24);
    expect(hostOf(await env.status(bot), 'beta')).toMatchObject({ drained: true, state: 'online' });
    // A rebalance keeps it empty.
    await ask(bot, { type: 'rebalance' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(beta.shardIds()).toEqual([]);

    // A new MASTER reads the drain from the stored plan.
    await running.splice(0).reduce((done, handle) => done.then(() => handle.close()), Promise.resolve());
    await master(bot);
    await waitFor(async () => (await ask(bot, { type: 'status' })).code === undefined, {
      description: 'the new MASTER answering',
      timeoutMs: 20_000,
    });
    expect(hostOf(await env.status(bot), 'beta')?.drained).toBe(true);
    // The new MASTER plans only over hosts it has heard from since it took over.
    await waitFor(
      async () => (await env.status(bot)).hosts.filter((host) => host.state === 'online').length === 3,
      { description: 'the new MASTER hearing all three hosts', timeoutMs: 20_000 },
    );

    const undrained = (await ask(bot, { type: 'undrain', hostId: 'beta' })).result as {
      moved: number;
      epoch: number;
    };
    expect(undrained.moved).toBeGreaterThan(0);
    await waitFor(() => beta.shardIds().length === 8 && gamma.shardIds().length === 0, {
      description: 'beta serving again',
      timeoutMs: 20_000,
    });
    expect(alpha.shardIds().length + beta.shardIds().length).toBe(32);
    expect(hostOf(await env.status(bot), 'beta')?.drained).toBe(false);
  });

  it('the last active host cannot be drained; a pinned host whose pins have nowhere to go neither', async () => {
    const bot = env.nextBot('last');
    const solo = await host(bot, 'solo', { pinShards: [[0, 15]] });
    const other = await host(bot, 'other');
    await master(bot, { DISCLUSTER_EXPECTED_HOSTS: '2' });
    await waitFor(() => solo.epoch === 1 && other.epoch === 1, {
      description: 'the first plan',
      timeoutMs: 20_000,
    });
    // Draining the pinned host: its pins move to the unpinned host.
    expect((await ask(bot, { type: 'drain', hostId: 'solo' })).result).toMatchObject({ moved: 16 });
    await waitFor(() => other.shardIds().length === 32, { description: 'pins moved', timeoutMs: 20_000 });
    // Now the unpinned host is the last one that can serve: refused, nothing changes.
    const last = await ask(bot, { type: 'drain', hostId: 'other' });
    expect(last.code).toBe(ErrorCode.PlacementRefused);
    expect(last.result).toMatch(/cannot drain other: shards 0-31 would have nowhere to go/);
    expect((await env.status(bot)).epoch).toBe(2);
    // Undraining the pinned host gives it exactly its pins again.
    await ask(bot, { type: 'undrain', hostId: 'solo' });
    await waitFor(() => solo.shardIds().length === 16, { description: 'pins back', timeoutMs: 20_000 });
    expect(solo.shardIds()).toEqual(range(0, 15));
    expect(other.shardIds()).toEqual(range(16, 31));
  });
});
