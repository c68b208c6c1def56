import { describe, expect, it } from 'vitest';
import {
  DisclusterError,
  ErrorCode,
  splitIntoClusters,
  type PlannedCluster,
  type SplitOptions,
} from 'discluster-protocol';
import { numberClusters } from '../src/plan/clusterNumbering';
import {
  failoverPlan,
  initialPlan,
  rebalancePlan,
  type HostShares,
  type PlanHost,
} from '../src/plan/shardPlan';

type Rng = () => number;

/** mulberry32: a small seeded PRNG, so every run checks the same fleets. */
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

function randomHost(rng: Rng, taken: ReadonlySet<string>): PlanHost {
  let id = `host-${int(rng, 0, 999)}`;
  while (taken.has(id)) id = `host-${int(rng, 0, 999)}`;
  return {
    id,
    role: rng() < 0.25 ? 'standby' : 'active',
    cores: int(rng, 1, 64),
    load15: rng() < 0.1 ? 0 : rng() * 20,
  };
}

type Clusters = ReadonlyMap<string, readonly PlannedCluster[]>;

const key = (shards: readonly number[]): string => [...shards].sort((a, b) => a - b).join(',');
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
const active = (id: string, cores = 4): PlanHost => ({ id, role: 'active', cores, load15: 1 });
const standby = (id: string): PlanHost => ({ id, role: 'standby', cores: 4, load15: 1 });
const tens = (): SplitOptions => ({ shardsPerCluster: 10, maxConcurrency: 1 });
const ids = (clusters: Clusters, host: string): number[] =>
  (clusters.get(host) ?? []).map((c) => c.clusterId);

/** Deep equality of large JSON values; much faster than toEqual on thousands of elements. */
function expectSame(actual: unknown, expected: unknown): void {
  expect(JSON.stringify(actual)).toBe(JSON.stringify(expected));
}

/**
 * Checks one numbering step against the rule; returns how many clusters were kept.
 * `options` gives each host's split options.
 */
function checkLayout(
  shares: HostShares,
  previous: Clusters,
  next: number,
  options: (host: string) => SplitOptions,
): { clusters: Clusters; nextClusterId: number; kept: number } {
  const layout = numberClusters(shares, previous, options, next);
  const { clusters } = layout;
  expect([...clusters.keys()]).toEqual([...shares.keys()].sort());

  // Each host's clusters hold exactly its shards, sorted by id; ids unique fleet-wide.
  const all: number[] = [];
  for (const [host, hostClusters] of clusters) {
    expectSame(
      hostClusters.flatMap((c) => c.shardIds).sort((a, b) => a - b),
      [...(shares.get(host) ?? [])].sort((a, b) => a - b),
    );
    const hostIds = hostClusters.map((c) => c.clusterId);
    expect(hostIds).toEqual([...hostIds].sort((a, b) => a - b));
    all.push(...hostIds);
  }
  expect(new Set(all).size).toBe(all.length);
  expect(layout.nextClusterId).toBeGreaterThan(Math.max(-1, ...all));
  expect(layout.nextClusterId).toBeGreaterThanOrEqual(next);

  // Every previous cluster whose whole shard set is now on one host is there, same id and shards.
  const owner = new Map<number, string>();
  for (const [host, shards] of shares) for (const shard of shards) owner.set(shard, host);
  const previousIds = new Set<number>();
  const keptKeys = new Set<string>();
  const notKept: string[] = [];
  const located = new Map<string, string>(); // "id:shards" -> host, for every cluster of the layout
  for (const [host, hostClusters] of clusters)
    for (const c of hostClusters) located.set(`${c.clusterId}:${key(c.shardIds)}`, host);
  for (const cluster of [...previous.values()].flat()) {
    previousIds.add(cluster.clusterId);
    const hosts = new Set(cluster.shardIds.map((s) => owner.get(s)));
    const [host] = [...hosts];
    if (hosts.size !== 1 || host === undefined) continue;
    const clusterKey = `${cluster.clusterId}:${key(cluster.shardIds)}`;
    if (located.get(clusterKey) !== host) notKept.push(`cluster ${cluster.clusterId} should stay on ${host}`);
    keptKeys.add(clusterKey);
  }
  expect(notKept).toEqual([]);

  // The other clusters of each host are splitIntoClusters of its remaining shards, in order, with
  // ids that no previous cluster had.
  for (const [host, hostClusters] of clusters) {
    const isKept = (c: PlannedCluster): boolean => keptKeys.has(`${c.clusterId}:${key(c.shardIds)}`);
    const fresh = hostClusters.filter((c) => !isKept(c));
    const kept = new Set(hostClusters.filter(isKept).flatMap((c) => c.shardIds));
    const rest = (shares.get(host) ?? []).filter((s) => !kept.has(s));
    expectSame(
      fresh.map((c) => c.shardIds),
      splitIntoClusters(rest, options(host)).map((c) => c.shardIds),
    );
    const stale = fresh.filter((c) => previousIds.has(c.clusterId) || c.clusterId < next);
    expect(stale).toEqual([]);
  }
  return { ...layout, kept: keptKeys.size };
}

describe('numberClusters', () => {
  it('numbers a first plan from nextClusterId, hosts in id order', () => {
    const shares = new Map([
      ['b', range(25, 40)],
      ['a', range(0, 25)],
      ['s', []],
    ]);
    const layout = numberClusters(shares, new Map(), tens, 0);
    expect([...layout.clusters]).toEqual([
      [
        'a',
        [
          { clusterId: 0, shardIds: range(0, 10) },
          { clusterId: 1, shardIds: range(10, 20) },
          { clusterId: 2, shardIds: range(20, 25) },
        ],
      ],
      [
        'b',
        [
          { clusterId: 3, shardIds: range(25, 35) },
          { clusterId: 4, shardIds: range(35, 40) },
        ],
      ],
      ['s', []],
    ]);
    expect(layout.nextClusterId).toBe(5);
  });

  it('keeps the ids of a failed machine’s clusters on the standby that takes them over (seed 004)', () => {
    const hosts = [active('a'), active('b'), standby('s')];
    const plan = initialPlan(hosts, 40, 1); // a: 0-19, b: 20-39
    const first = numberClusters(plan, new Map(), tens, 0);
    const failed = failoverPlan(plan, ['a'], [active('b'), standby('s')], 40, 1);
    const second = numberClusters(failed, first.clusters, tens, first.nextClusterId);
    expect([...second.clusters]).toEqual([
      ['b', first.clusters.get('b')],
      ['s', first.clusters.get('a')],
    ]);
    expect(second.nextClusterId).toBe(first.nextClusterId);
  });

  it('renumbers only the clusters whose shards changed', () => {
    const hosts = [active('a'), active('b')];
    const plan = initialPlan(hosts, 32, 4); // a: 0-15, b: 16-31
    const mc4 = (): SplitOptions => ({ shardsPerCluster: 10, maxConcurrency: 4 });
    const first = numberClusters(plan, new Map(), mc4, 0); // a: 0-3, b: 4-7
    const joined = rebalancePlan(plan, [...hosts, active('c')], 32, 4); // c: 12-15, 28-31
    const second = numberClusters(joined, first.clusters, mc4, first.nextClusterId);
    expect(ids(second.clusters, 'a')).toEqual([0, 1, 2]);
    expect(ids(second.clusters, 'b')).toEqual([4, 5, 6]);
    // Whole clusters moved to c keep their ids too: 3 (12-15) and 7 (28-31).
    expect([...(second.clusters.get('c') ?? [])]).toEqual([
      { clusterId: 3, shardIds: range(12, 16) },
      { clusterId: 7, shardIds: range(28, 32) },
    ]);
    expect(second.nextClusterId).toBe(8);
  });

  it('splits what is left of a broken cluster into new clusters with fresh ids', () => {
    const previous = new Map([['a', [{ clusterId: 0, shardIds: range(0, 10) }]]]);
    const shares = new Map([
      ['a', range(0, 6)],
      ['b', range(6, 10)],
    ]);
    const layout = numberClusters(shares, previous, tens, 1);
    expect([...layout.clusters]).toEqual([
      ['a', [{ clusterId: 1, shardIds: range(0, 6) }]],
      ['b', [{ clusterId: 2, shardIds: range(6, 10) }]],
    ]);
  });

  it('never hands out an id a previous cluster had, even when nextClusterId is behind', () => {
    const previous = new Map([
      [
        'a',
        [
          { clusterId: 0, shardIds: [0, 1] },
          { clusterId: 2, shardIds: [2, 3] },
        ],
      ],
    ]);
    const shares = new Map([['a', [0, 1, 2, 4, 5]]]);
    const layout = numberClusters(shares, previous, () => ({ shardsPerCluster: 2, maxConcurrency: 1 }), 0);
    expect([...(layout.clusters.get('a') ?? [])]).toEqual([
      { clusterId: 0, shardIds: [0, 1] },
      { clusterId: 1, shardIds: [2, 4] },
      { clusterId: 3, shardIds: [5] },
    ]);
    expect(layout.nextClusterId).toBe(4);
  });

  it('keeps only the first of two previous clusters that claim one shard', () => {
    const previous = new Map([
      ['a', [{ clusterId: 5, shardIds: [0, 1] }]],
      ['b', [{ clusterId: 3, shardIds: [1, 2] }]],
    ]);
    const layout = numberClusters(new Map([['a', [0, 1, 2]]]), previous, tens, 10);
    expect([...(layout.clusters.get('a') ?? [])]).toEqual([
      { clusterId: 3, shardIds: [1, 2] },
      { clusterId: 10, shardIds: [0] },
    ]);
  });

  it('rejects a bad nextClusterId and a shard held by two hosts', () => {
    const expectError = (fn: () => unknown, code: ErrorCode, message: RegExp): void => {
      let caught: unknown;
      try {
        fn();
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(DisclusterError);
      expect((caught as DisclusterError).code).toBe(code);
      expect((caught as DisclusterError).message).toMatch(message);
    };
    expectError(
      () => numberClusters(new Map(), new Map(), tens, -1),
      ErrorCode.InvalidClusterId,
      /nextClusterId must be a non-negative integer, got -1/,
    );
    expectError(
      () =>
        numberClusters(
          new Map([
            ['a', [1]],
            ['b', [1]],
          ]),
          new Map(),
          tens,
          0,
        ),
      ErrorCode.InvalidShard,
      /shard 1 is held by both a and b/,
    );
  });

  it('property: across random failovers, joins and rebalances, unchanged clusters keep their ids, ids stay unique, sizes follow splitIntoClusters', () => {
    const rng = mulberry32(11);
    let kept = 0;
    for (let run = 0; run < 200; run++) {
      let hosts: PlanHost[] = [];
      for (let i = int(rng, 1, 12); i > 0; i--) hosts.push(randomHost(rng, new Set(hosts.map((h) => h.id))));
      const shardCount = int(rng, 1, 2000);
      const mc = pick(rng, [1, 2, 4, 16]);
      const perHost = new Map<string, number>();
      const options = (host: string): SplitOptions => {
        if (!perHost.has(host)) perHost.set(host, int(rng, 1, 20));
        return { shardsPerCluster: perHost.get(host) ?? 10, maxConcurrency: mc };
      };
      let plan = initialPlan(hosts, shardCount, mc);
      // Decide every host's options up front, in id order: `options` must be a pure function.
      for (const host of [...hosts].sort((a, b) => (a.id < b.id ? -1 : 1))) options(host.id);
      let layout = checkLayout(plan, new Map(), 0, options);
      for (let step = 0; step < 5; step++) {
        const event = pick(rng, ['join', 'load', 'failover'] as const);
        if (event === 'join') {
          const host = randomHost(rng, new Set(hosts.map((h) => h.id)));
          options(host.id);
          hosts = [...hosts, host];
          plan = rebalancePlan(plan, hosts, shardCount, mc);
        } else if (event === 'failover' && hosts.length > 1) {
          const lost = pick(rng, hosts).id;
          hosts = hosts.filter((h) => h.id !== lost);
          plan = failoverPlan(plan, [lost], hosts, shardCount, mc);
        } else {
          hosts = hosts.map((h) => ({ ...h, load15: rng() * 20 }));
          plan = rebalancePlan(plan, hosts, shardCount, mc);
        }
        const nextLayout = checkLayout(plan, layout.clusters, layout.nextClusterId, options);
        kept += nextLayout.kept;
        // Determinism: any order of the input maps gives the same layout.
        const again = numberClusters(
          new Map(shuffle(rng, [...plan])),
          new Map(shuffle(rng, [...layout.clusters])),
          options,
          layout.nextClusterId,
        );
        expectSame([...again.clusters], [...nextLayout.clusters]);
        expect(again.nextClusterId).toBe(nextLayout.nextClusterId);
        layout = nextLayout;
      }
    }
    // The point of the exercise: most clusters survive a plan change.
    expect(kept).toBeGreaterThan(1000);
  });
});
