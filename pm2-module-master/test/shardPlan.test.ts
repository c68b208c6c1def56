import { describe, expect, it } from 'vitest';
import { DisclusterError, ErrorCode } from 'discluster-protocol';
import {
  failoverPlan,
  hostWeight,
  initialPlan,
  movedShardCount,
  rebalancePlan,
  targetShareCounts,
  type HostShares,
  type PlanHost,
} from '../src/plan/shardPlan';

// ---------------------------------------------------------------------------------------------
// Property-test helpers: a seeded PRNG (mulberry32) so every run checks the same fleets, and a
// failing seed can be replayed.

type Rng = () => number;

function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function int(rng: Rng, min: number, max: number): number {
  return min + Math.floor(rng() * (max - min + 1));
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  const item = items[int(rng, 0, items.length - 1)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

function shuffle<T>(rng: Rng, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = int(rng, 0, i);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

function randomHost(rng: Rng, id: string, role?: PlanHost['role']): PlanHost {
  return {
    id,
    role: role ?? (rng() < 0.25 ? 'standby' : 'active'),
    cores: int(rng, 1, 64),
    // Exactly 0 sometimes: the guard against a zero load must hold.
    load15: rng() < 0.1 ? 0 : rng() * 20,
  };
}

/** Random, unique ids, so id order differs from creation order. */
function randomIds(rng: Rng, count: number, taken: ReadonlySet<string> = new Set()): string[] {
  const ids = new Set<string>();
  while (ids.size < count) {
    const id = `host-${int(rng, 0, 999)}`;
    if (!taken.has(id)) ids.add(id);
  }
  return [...ids];
}

interface Fleet {
  readonly hosts: PlanHost[];
  readonly shardCount: number;
  readonly mc: number;
}

function randomFleet(rng: Rng): Fleet {
  const hosts = randomIds(rng, int(rng, 1, 12)).map((id) => randomHost(rng, id));
  return { hosts, shardCount: int(rng, 1, 2000), mc: pick(rng, [1, 2, 4, 16]) };
}

/** Runs `check` on `runs` fleets from `seed`; a failure names the run and the fleet. */
function forFleets(seed: number, runs: number, check: (fleet: Fleet, rng: Rng) => void): void {
  const rng = mulberry32(seed);
  for (let run = 0; run < runs; run++) {
    const fleet = randomFleet(rng);
    try {
      check(fleet, rng);
    } catch (error) {
      const where = `seed ${seed}, run ${run}: ${JSON.stringify(fleet)}`;
      if (error instanceof Error) error.message = `${where}\n${error.message}`;
      throw error;
    }
  }
}

function owners(shares: HostShares): Map<number, string> {
  const map = new Map<number, string>();
  for (const [host, shards] of shares) for (const shard of shards) map.set(shard, host);
  return map;
}

function count(shares: HostShares, host: string): number {
  return shares.get(host)?.length ?? 0;
}

/** Every shard 0..n-1 is held exactly once, and each host lists its shards ascending. */
function expectExactCover(shares: HostShares, shardCount: number): void {
  // JSON comparisons: much faster than toEqual on thousands of elements.
  const all = [...shares.values()].flat().sort((a, b) => a - b);
  expect(JSON.stringify(all)).toBe(JSON.stringify(range(0, shardCount)));
  const unsorted = [...shares].filter(([, shards]) =>
    shards.some((s, i) => i > 0 && (shards[i - 1] ?? -1) >= s),
  );
  expect(unsorted.map(([host]) => host)).toEqual([]);
}

/**
 * Blocks (k = shards [k*mc, min((k+1)*mc, n))) whose shards are not all on one host. Empty means
 * every host's share is a union of whole blocks: every count is a multiple of mc except that of
 * the one host holding the last block, which is ≡ n (mod mc).
 */
function splitBlocks(shares: HostShares, shardCount: number, mc: number): number[] {
  const owner = owners(shares);
  const split: number[] = [];
  for (let block = 0; block * mc < shardCount; block++) {
    const first = owner.get(block * mc);
    for (let shard = block * mc; shard < Math.min((block + 1) * mc, shardCount); shard++) {
      if (owner.get(shard) !== first) {
        split.push(block);
        break;
      }
    }
  }
  return split;
}

function expectSamePlan(a: HostShares, b: HostShares): void {
  expect(JSON.stringify([...a])).toBe(JSON.stringify([...b]));
}

function withoutHosts(hosts: readonly PlanHost[], ids: readonly string[]): PlanHost[] {
  return hosts.filter((host) => !ids.includes(host.id));
}

function expectInvalid(fn: () => unknown, code: ErrorCode, message: RegExp): void {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(DisclusterError);
    expect((error as DisclusterError).code).toBe(code);
    expect((error as DisclusterError).message).toMatch(message);
    return;
  }
  throw new Error('expected a DisclusterError');
}

const active = (id: string, cores: number, load15 = 1): PlanHost => ({ id, role: 'active', cores, load15 });
const standby = (id: string, cores = 8, load15 = 1): PlanHost => ({ id, role: 'standby', cores, load15 });
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

// ---------------------------------------------------------------------------------------------

describe('hostWeight', () => {
  it('is cores / load15 once the load is above 1', () => {
    expect(hostWeight(active('a', 16, 4))).toBe(4);
    expect(hostWeight(active('a', 3, 1.5))).toBe(2);
  });

  it('counts a load below 1 as 1, so an idle machine weighs its cores and a zero load is no division by zero', () => {
    expect(hostWeight(active('a', 2, 0))).toBe(2);
    expect(hostWeight(active('a', 2, 0.02))).toBe(2);
    // An idle 2-core box against a 16-core box running at load 16: 2x, not 100x.
    expect(hostWeight(active('idle', 2, 0.01)) / hostWeight(active('busy', 16, 16))).toBe(2);
  });

  it.each([
    [{ id: 'a', role: 'active', cores: 0, load15: 1 }, /cores must be a finite number above 0, got 0/],
    [{ id: 'a', role: 'active', cores: Number.NaN, load15: 1 }, /cores .* got NaN/],
    [{ id: 'a', role: 'active', cores: 4, load15: -1 }, /load15 must be a finite number >= 0, got -1/],
    [{ id: 'a', role: 'active', cores: 4, load15: Infinity }, /load15 .* got Infinity/],
    [{ id: '', role: 'active', cores: 4, load15: 1 }, /host id must be a non-empty string/],
    [{ id: 'a', role: 'spare', cores: 4, load15: 1 }, /role must be 'active' or 'standby'/],
  ])('rejects %j', (host, message) => {
    expectInvalid(() => hostWeight(host as PlanHost), ErrorCode.InvalidOption, message);
  });
});

describe('targetShareCounts', () => {
  it('4, 2 and 2 cores at equal load, 32 shards, mc 4 → 16 / 8 / 8', () => {
    const counts = targetShareCounts([active('c', 2), active('a', 4), active('b', 2)], 32, 4);
    expect([...counts]).toEqual([
      ['a', 16],
      ['b', 8],
      ['c', 8],
    ]);
  });

  it('gives standbys 0 while an active host exists', () => {
    expect([...targetShareCounts([active('a', 4), standby('s', 64, 0)], 10, 1)]).toEqual([
      ['a', 10],
      ['s', 0],
    ]);
  });

  it('treats standbys as active when no host is active', () => {
    expect([...targetShareCounts([standby('s1', 2), standby('s2', 2)], 10, 1)]).toEqual([
      ['s1', 5],
      ['s2', 5],
    ]);
  });

  it('breaks remainder ties by host id', () => {
    // 4 blocks over 3 equal hosts: quotas 1.33 each, the leftover block goes to the lowest id.
    expect([...targetShareCounts([active('c', 1), active('b', 1), active('a', 1)], 16, 4)]).toEqual([
      ['a', 8],
      ['b', 4],
      ['c', 4],
    ]);
  });

  it('charges the short last block to the last host with a share, or to lastBlockHost', () => {
    // 30 shards, mc 4: 8 blocks, the last one of 2 shards.
    const hosts = [active('a', 4), active('b', 4)];
    expect([...targetShareCounts(hosts, 30, 4)]).toEqual([
      ['a', 16],
      ['b', 14],
    ]);
    expect([...targetShareCounts(hosts, 30, 4, { lastBlockHost: 'a' })]).toEqual([
      ['a', 14],
      ['b', 16],
    ]);
    // A lastBlockHost without a block (a standby here) falls back to the default.
    expect([...targetShareCounts([...hosts, standby('s')], 30, 4, { lastBlockHost: 's' })]).toEqual([
      ['a', 16],
      ['b', 14],
      ['s', 0],
    ]);
  });

  it('rejects an empty fleet with a clear error', () => {
    expectInvalid(() => targetShareCounts([], 10, 1), ErrorCode.InvalidOption, /without any host/);
  });

  it.each([
    [0, 1, /shardCount must be a positive integer, got 0/],
    [2.5, 1, /shardCount must be a positive integer, got 2.5/],
    [10, 0, /maxConcurrency must be a positive integer, got 0/],
    [10, Number.NaN, /maxConcurrency must be a positive integer, got NaN/],
  ])('rejects shardCount %s, maxConcurrency %s', (shardCount, mc, message) => {
    expectInvalid(
      () => targetShareCounts([active('a', 1)], shardCount, mc),
      ErrorCode.InvalidOption,
      message,
    );
  });

  it('rejects duplicate host ids', () => {
    expectInvalid(
      () => targetShareCounts([active('a', 1), standby('a')], 10, 1),
      ErrorCode.InvalidOption,
      /host id a is listed twice/,
    );
  });

  it('property: counts add up, standbys get 0, each host gets the floor or ceiling of its block quota', () => {
    forFleets(1, 400, ({ hosts, shardCount, mc }, rng) => {
      const counts = targetShareCounts(hosts, shardCount, mc);
      expect([...counts.keys()]).toEqual(hosts.map((h) => h.id).sort());
      expect([...counts.values()].reduce((a, b) => a + b, 0)).toBe(shardCount);

      const anyActive = hosts.some((h) => h.role === 'active');
      const eligible = hosts.filter((h) => h.role === 'active' || !anyActive);
      for (const host of hosts) if (!eligible.includes(host)) expect(counts.get(host.id)).toBe(0);

      const blocks = Math.ceil(shardCount / mc);
      const shortfall = blocks * mc - shardCount;
      const total = eligible.reduce((sum, h) => sum + hostWeight(h), 0);
      const charged: string[] = [];
      for (const host of eligible) {
        const shards = counts.get(host.id) ?? 0;
        const hostBlocks = Math.ceil(shards / mc);
        if (hostBlocks * mc !== shards) charged.push(host.id);
        const quota = (blocks * hostWeight(host)) / total;
        expect(hostBlocks).toBeGreaterThanOrEqual(Math.floor(quota + 1e-9));
        expect(hostBlocks).toBeLessThanOrEqual(Math.ceil(quota - 1e-9));
      }
      // Exactly one host carries the short block: the last one by id with a share.
      const withShare = [...counts].filter(([, c]) => c > 0).map(([id]) => id);
      expect(charged).toEqual(shortfall > 0 ? [withShare[withShare.length - 1]] : []);

      // Same answer for any host order.
      expect([...targetShareCounts(shuffle(rng, hosts), shardCount, mc)]).toEqual([...counts]);
    });
  });
});

describe('initialPlan', () => {
  it('4, 2 and 2 cores, 32 shards, mc 4: contiguous whole blocks in host id order', () => {
    const plan = initialPlan([active('b', 2), standby('s'), active('a', 4), active('c', 2)], 32, 4);
    expect([...plan]).toEqual([
      ['a', range(0, 16)],
      ['b', range(16, 24)],
      ['c', range(24, 32)],
      ['s', []],
    ]);
  });

  it('puts the short last block on the last host', () => {
    // 10 shards, mc 4: blocks of 4, 4 and 2; the tie on the third block goes to a.
    const plan = initialPlan([active('a', 1), active('b', 1)], 10, 4);
    expect([...plan]).toEqual([
      ['a', range(0, 8)],
      ['b', [8, 9]],
    ]);
  });

  it('property: exact cover, counts = targets, standbys empty, whole blocks, one contiguous range per host', () => {
    forFleets(2, 400, ({ hosts, shardCount, mc }, rng) => {
      const plan = initialPlan(hosts, shardCount, mc);
      expectExactCover(plan, shardCount);
      expect([...plan.keys()]).toEqual(hosts.map((h) => h.id).sort());
      const targets = targetShareCounts(hosts, shardCount, mc);
      for (const [host, shards] of plan) expect(shards.length).toBe(targets.get(host));
      if (hosts.some((h) => h.role === 'active'))
        for (const host of hosts) if (host.role === 'standby') expect(plan.get(host.id)).toEqual([]);
      // Every host's share is a union of whole blocks (only the last block is shorter than mc)...
      expect(splitBlocks(plan, shardCount, mc)).toEqual([]);
      // ...and one contiguous range, the ranges following host id order.
      expect(JSON.stringify([...plan.values()].flat())).toBe(JSON.stringify(range(0, shardCount)));
      expectSamePlan(initialPlan(shuffle(rng, hosts), shardCount, mc), plan);
    });
  });
});

describe('failoverPlan', () => {
  it('seed 004: an empty standby takes over the failed machine, nothing else moves', () => {
    const hosts = [active('a', 4), active('b', 4), standby('s')];
    const plan = initialPlan(hosts, 32, 4);
    const after = failoverPlan(plan, ['a'], withoutHosts(hosts, ['a']), 32, 4);
    expect([...after]).toEqual([
      ['b', range(16, 32)],
      ['s', range(0, 16)],
    ]);
    expect(movedShardCount(plan, after)).toBe(16);
  });

  it('without an empty standby, spreads whole blocks over the active hosts by weight', () => {
    // 48 shards, mc 4, three equal hosts: 16 each. Losing c leaves 4 blocks for a and b.
    const hosts = [active('a', 4), active('b', 4), active('c', 4)];
    const after = failoverPlan(initialPlan(hosts, 48, 4), ['c'], withoutHosts(hosts, ['c']), 48, 4);
    expect([...after]).toEqual([
      ['a', [...range(0, 16), ...range(32, 40)]],
      ['b', [...range(16, 32), ...range(40, 48)]],
    ]);
  });

  it('treats shards held by no host (the shard count grew) and hosts missing from remaining as orphans', () => {
    const hosts = [active('a', 4), active('b', 4), standby('s')];
    const plan = initialPlan(hosts, 8, 1); // a: 0-3, b: 4-7
    const after = failoverPlan(plan, [], [active('a', 4), standby('s')], 12, 1);
    expect([...after]).toEqual([
      ['a', range(0, 4)],
      ['s', range(4, 12)],
    ]);
  });

  it('rejects a host both lost and remaining, no remaining host, and corrupt plans', () => {
    const hosts = [active('a', 4), active('b', 4)];
    const plan = initialPlan(hosts, 8, 1);
    expectInvalid(() => failoverPlan(plan, ['a'], hosts, 8, 1), ErrorCode.InvalidOption, /both as lost/);
    expectInvalid(() => failoverPlan(plan, ['a', 'b'], [], 8, 1), ErrorCode.InvalidOption, /no host remains/);
    const corrupt = new Map([
      ['a', [0, 1]],
      ['b', [1, 2]],
    ]);
    expectInvalid(
      () => failoverPlan(corrupt, ['a'], [active('b', 1)], 4, 1),
      ErrorCode.InvalidShard,
      /shard 1 is held by both a and b/,
    );
    expectInvalid(
      () => failoverPlan(new Map([['a', [9]]]), ['a'], [active('b', 1)], 4, 1),
      ErrorCode.InvalidShard,
      /holds shard 9, which is not in 0..3/,
    );
  });

  it('property: only orphans move; to the first empty standby if any, else whole blocks to eligible hosts', () => {
    forFleets(3, 400, ({ hosts, shardCount, mc }, rng) => {
      if (hosts.length < 2) return;
      const plan = initialPlan(hosts, shardCount, mc);
      const lost = shuffle(rng, hosts)
        .slice(0, int(rng, 1, hosts.length - 1))
        .map((h) => h.id);
      // Loads change between the plan and the failure.
      const remaining = withoutHosts(hosts, lost).map((h) => ({ ...h, load15: rng() * 20 }));
      const after = failoverPlan(plan, lost, remaining, shardCount, mc);

      expectExactCover(after, shardCount);
      expect([...after.keys()]).toEqual(remaining.map((h) => h.id).sort());
      const orphans = lost.flatMap((id) => plan.get(id) ?? []);
      expect(movedShardCount(plan, after)).toBe(orphans.length);
      // Every remaining host keeps every shard it had.
      for (const host of remaining) {
        const now = new Set(after.get(host.id));
        expect((plan.get(host.id) ?? []).filter((shard) => !now.has(shard))).toEqual([]);
      }

      const owner = owners(after);
      const receivers = new Set(orphans.map((shard) => owner.get(shard)));
      const emptyStandby = remaining
        .filter((h) => h.role === 'standby' && count(plan, h.id) === 0)
        .map((h) => h.id)
        .sort()[0];
      if (emptyStandby !== undefined && orphans.length > 0) {
        expect([...receivers]).toEqual([emptyStandby]);
      } else {
        const anyActive = remaining.some((h) => h.role === 'active');
        for (const id of receivers)
          expect(remaining.find((h) => h.id === id)?.role).toBe(anyActive ? 'active' : 'standby');
      }
      // Whole blocks in, whole blocks out: no orphan block is split.
      expect(splitBlocks(after, shardCount, mc)).toEqual([]);

      expectSamePlan(failoverPlan(plan, shuffle(rng, lost), shuffle(rng, remaining), shardCount, mc), after);
    });
  });

  it('property: without an empty standby, orphan blocks go to the hosts furthest below target first', () => {
    forFleets(4, 300, ({ hosts, shardCount, mc }, rng) => {
      const actives = hosts.map((h) => ({ ...h, role: 'active' as const }));
      if (actives.length < 2) return;
      const plan = initialPlan(actives, shardCount, mc);
      const lost = [pick(rng, actives).id];
      const remaining = withoutHosts(actives, lost);
      const after = failoverPlan(plan, lost, remaining, shardCount, mc);
      const targets = targetShareCounts(remaining, shardCount, mc);
      // Greedy by deficit over whole blocks: no host ends more than one block above target while
      // another one that received nothing is still below its target by a full block or more.
      const over = remaining.filter((h) => count(after, h.id) - (targets.get(h.id) ?? 0) > mc);
      const starved = remaining.filter(
        (h) =>
          count(after, h.id) === count(plan, h.id) && (targets.get(h.id) ?? 0) - count(after, h.id) >= mc,
      );
      expect(over.length === 0 || starved.length === 0).toBe(true);
    });
  });
});

describe('rebalancePlan', () => {
  it('a host joining: 32 shards, mc 4, two equal hosts plus an equal third → 12 / 12 / 8, highest blocks move', () => {
    const hosts = [active('a', 4), active('b', 4)];
    const plan = initialPlan(hosts, 32, 4);
    const after = rebalancePlan(plan, [...hosts, active('c', 4)], 32, 4);
    expect([...after]).toEqual([
      ['a', range(0, 12)],
      ['b', range(16, 28)],
      ['c', [...range(12, 16), ...range(28, 32)]],
    ]);
    expect(movedShardCount(plan, after)).toBe(8);
  });

  it('moves a standby’s shards back to the active host that returns', () => {
    const hosts = [active('a', 4), active('b', 4), standby('s')];
    const plan = initialPlan(hosts, 32, 4);
    const failedOver = failoverPlan(plan, ['a'], withoutHosts(hosts, ['a']), 32, 4);
    const back = rebalancePlan(failedOver, hosts, 32, 4);
    expectSamePlan(back, plan);
    expect(movedShardCount(failedOver, back)).toBe(16);
  });

  it('keeps the short last block where it is when its holder keeps a share', () => {
    // 30 shards, mc 4; after a failover the 2-shard block 7 (28, 29) sits on a.
    const current = new Map([
      ['a', [...range(0, 8), 28, 29]],
      ['b', range(8, 28)],
    ]);
    const after = rebalancePlan(current, [active('a', 4), active('b', 4)], 30, 4);
    expect([...after]).toEqual([
      ['a', [...range(0, 8), ...range(24, 30)]],
      ['b', range(8, 24)],
    ]);
    expect(movedShardCount(current, after)).toBe(4);
  });

  it('rejects a corrupt current plan', () => {
    expectInvalid(
      () => rebalancePlan(new Map([['a', [0, 0]]]), [active('a', 1)], 2, 1),
      ErrorCode.InvalidShard,
      /host a lists shard 0 twice/,
    );
  });

  /** Any assignment of any subset of shards, including to hosts that are gone and to standbys. */
  function randomCurrent(rng: Rng, hosts: readonly PlanHost[], shardCount: number): Map<string, number[]> {
    const holders = [...hosts.map((h) => h.id), 'gone-1', 'gone-2'];
    const current = new Map<string, number[]>();
    const assigned = rng();
    for (let shard = 0; shard < shardCount; shard++) {
      if (rng() > assigned) continue;
      const holder = pick(rng, holders);
      current.set(holder, [...(current.get(holder) ?? []), shard]);
    }
    return current;
  }

  it('property: from any current plan, reaches the targets exactly with the minimum number of moves', () => {
    forFleets(5, 400, ({ hosts, shardCount, mc }, rng) => {
      const current = randomCurrent(rng, hosts, shardCount);
      const after = rebalancePlan(current, hosts, shardCount, mc);
      expectExactCover(after, shardCount);
      expect([...after.keys()]).toEqual(hosts.map((h) => h.id).sort());

      // The targets: targetShareCounts' whole blocks per host, the short last block (if any)
      // charged to one host with a share; which one is rebalancePlan's choice (see the examples).
      const base = targetShareCounts(hosts, shardCount, mc);
      const charged = hosts.filter((h) => count(after, h.id) % mc !== 0).map((h) => h.id);
      expect(charged.length).toBe(shardCount % mc === 0 ? 0 : 1);
      const targets = targetShareCounts(
        hosts,
        shardCount,
        mc,
        charged[0] ? { lastBlockHost: charged[0] } : {},
      );
      for (const host of hosts) {
        expect(Math.ceil(count(after, host.id) / mc)).toBe(Math.ceil((base.get(host.id) ?? 0) / mc));
      }
      let minimum = 0;
      for (const host of hosts) {
        const before = current.get(host.id) ?? [];
        const target = targets.get(host.id) ?? 0;
        expect(count(after, host.id)).toBe(target);
        // Each host keeps min(current, target) of its own shards.
        const had = new Set(before);
        const kept = (after.get(host.id) ?? []).filter((s) => had.has(s)).length;
        expect(kept).toBe(Math.min(before.length, target));
        minimum += Math.max(0, before.length - target);
      }
      const ids = new Set(hosts.map((h) => h.id));
      const heldByHosts = [...current].filter(([id]) => ids.has(id)).reduce((n, [, s]) => n + s.length, 0);
      minimum += shardCount - heldByHosts; // shards of gone hosts and shards held by nobody
      expect(movedShardCount(current, after)).toBe(minimum);

      // Same answer for any host order and any map order.
      const shuffledCurrent = new Map(shuffle(rng, [...current]));
      expectSamePlan(rebalancePlan(shuffledCurrent, shuffle(rng, hosts), shardCount, mc), after);
    });
  });

  it('property: a plan of whole blocks stays whole blocks through joins, load changes, failovers and rebalances', () => {
    forFleets(6, 200, (fleet, rng) => {
      const { shardCount, mc } = fleet;
      let hosts = fleet.hosts;
      let plan = initialPlan(hosts, shardCount, mc);
      for (let step = 0; step < 6; step++) {
        const event = pick(rng, ['join', 'load', 'failover', 'rebalance'] as const);
        if (event === 'join') {
          hosts = [...hosts, randomHost(rng, randomIds(rng, 1, new Set(hosts.map((h) => h.id)))[0] ?? 'x')];
          plan = rebalancePlan(plan, hosts, shardCount, mc);
        } else if (event === 'load') {
          hosts = hosts.map((h) => ({ ...h, load15: rng() * 20 }));
          plan = rebalancePlan(plan, hosts, shardCount, mc);
        } else if (event === 'failover' && hosts.length > 1) {
          const lost = pick(rng, hosts).id;
          hosts = withoutHosts(hosts, [lost]);
          plan = failoverPlan(plan, [lost], hosts, shardCount, mc);
        } else {
          plan = rebalancePlan(plan, hosts, shardCount, mc);
        }
        expectExactCover(plan, shardCount);
        expect(splitBlocks(plan, shardCount, mc)).toEqual([]);
      }
    });
  });

  it('property: a host joining then rebalancing moves shards only to the new host (or to a host whose target grew)', () => {
    // Largest-remainder rounding has the "new states paradox": adding a host can, rarely, give an
    // old host one more block than before (about 1% of these random fleets). Then that host
    // receives a block too; the move count is still the minimum.
    let paradoxes = 0;
    let runs = 0;
    forFleets(7, 400, ({ hosts, shardCount, mc }, rng) => {
      const plan = initialPlan(hosts, shardCount, mc);
      const newcomer = randomHost(rng, randomIds(rng, 1, new Set(hosts.map((h) => h.id)))[0] ?? 'x');
      const after = rebalancePlan(plan, [...hosts, newcomer], shardCount, mc);
      const grew = new Set(hosts.filter((h) => count(after, h.id) > count(plan, h.id)).map((h) => h.id));
      if (grew.size > 0) paradoxes++;
      runs++;
      const was = owners(plan);
      let lostByOld = 0;
      const wrongReceivers = new Set<string>();
      for (const [host, shards] of after) {
        for (const shard of shards)
          if (was.get(shard) !== host && host !== newcomer.id && !grew.has(host)) wrongReceivers.add(host);
        if (host !== newcomer.id) lostByOld += Math.max(0, count(plan, host) - shards.length);
      }
      expect([...wrongReceivers]).toEqual([]);
      expect(movedShardCount(plan, after)).toBe(lostByOld);
      if (grew.size === 0) expect(movedShardCount(plan, after)).toBe(count(after, newcomer.id));
      if (newcomer.role === 'standby' && hosts.some((h) => h.role === 'active'))
        expectSamePlan(new Map([...after].filter(([id]) => id !== newcomer.id)), plan);
    });
    expect(runs).toBe(400);
    expect(paradoxes).toBeLessThan(runs / 10);
  });
});

describe('movedShardCount', () => {
  it('counts shards whose host changed, including shards only in one plan', () => {
    const before = new Map([
      ['a', [0, 1, 2]],
      ['b', [3]],
    ]);
    const after = new Map([
      ['a', [0, 3]],
      ['c', [1, 4]],
    ]);
    // 1: a→c, 2: a→nobody, 3: b→a, 4: nobody→c.
    expect(movedShardCount(before, after)).toBe(4);
    expect(movedShardCount(before, before)).toBe(0);
  });
});
