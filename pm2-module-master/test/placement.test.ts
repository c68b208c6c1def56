import { describe, expect, it } from 'vitest';
import {
  ControlConfigSchema,
  DisclusterError,
  ErrorCode,
  HostHeartbeatSchema,
  formatShardRanges,
  loadModuleConfig,
  parseShardRanges,
  type ShardRange,
} from 'discluster-protocol';
import {
  pinAlignment,
  placeFailover,
  placeInitial,
  placeRebalance,
  placementProblem,
  type PlacementHost,
} from '../src/plan/placement';
import { hostWeight, movedShardCount, type HostShares } from '../src/plan/shardPlan';
import { USAGE, UsageError, parseCli } from '../src/cli/args';
import { renderStatus } from '../src/cli/render';

/**
 * Placement (pins, weights, drained hosts) over the pure planner: seeded property tests on random
 * fleets, and the rules spelled out as examples (docs/operations.md "Placement").
 */

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

interface Fleet {
  readonly hosts: PlacementHost[];
  readonly shardCount: number;
  readonly mc: number;
  readonly drained: Set<string>;
}

/**
 * A random fleet: 1–10 hosts, some standbys, weights from 0.25 to 4, some active hosts pinned to
 * disjoint random ranges (aligned to buckets or not), some hosts drained; always one free active host.
 */
function randomFleet(rng: Rng): Fleet {
  const mc = [1, 2, 4, 16][int(rng, 0, 3)] ?? 1;
  const shardCount = int(rng, 1, 600);
  const count = int(rng, 1, 10);
  const hosts: PlacementHost[] = [];
  let nextFree = 0;
  for (let i = 0; i < count; i++) {
    const id = `h${String(int(rng, 0, 999)).padStart(3, '0')}-${i}`;
    const role = i > 0 && rng() < 0.2 ? 'standby' : 'active';
    const base = {
      id,
      role,
      cores: int(rng, 1, 32),
      load15: rng() * 4,
      weight: [0.25, 0.5, 1, 2, 4][int(rng, 0, 4)],
    };
    // Host 0 stays free, so the rest always has somewhere to go.
    if (i > 0 && role === 'active' && rng() < 0.4 && nextFree < shardCount) {
      const pins: ShardRange[] = [];
      for (let r = int(rng, 1, 3); r > 0 && nextFree < shardCount; r--) {
        const aligned = rng() < 0.5;
        const first = aligned
          ? Math.ceil((nextFree + int(rng, 0, 20)) / mc) * mc
          : nextFree + int(rng, 0, 20);
        if (first >= shardCount) break;
        const last = Math.min(shardCount - 1, first + (aligned ? int(rng, 1, 3) * mc - 1 : int(rng, 0, 40)));
        pins.push([first, last]);
        nextFree = last + 1;
      }
      hosts.push({ ...base, role: 'active', pins: pins.length > 0 ? pins : null });
    } else hosts.push({ ...base, role: role as PlacementHost['role'] });
  }
  const drained = new Set(
    hosts
      .slice(1)
      .filter(() => rng() < 0.15)
      .map((host) => host.id),
  );
  return { hosts, shardCount, mc, drained };
}

function forFleets(seed: number, runs: number, check: (fleet: Fleet, rng: Rng) => void): void {
  const rng = mulberry32(seed);
  for (let run = 0; run < runs; run++) {
    const fleet = randomFleet(rng);
    try {
      check(fleet, rng);
    } catch (error) {
      const where = `seed ${seed}, run ${run}: ${JSON.stringify({ ...fleet, drained: [...fleet.drained] })}`;
      if (error instanceof Error) error.message = `${where}\n${error.message}`;
      throw error;
    }
  }
}

function expand(ranges: readonly ShardRange[] | null | undefined): number[] {
  return (ranges ?? []).flatMap(([first, last]) =>
    Array.from({ length: last - first + 1 }, (_, i) => first + i),
  );
}

/** Every shard 0..shardCount-1 exactly once (none unplanned, none double-planned). */
function expectEveryShardOnce(shares: HostShares, shardCount: number): void {
  const all = [...shares.values()].flat().sort((a, b) => a - b);
  expect(all).toEqual(Array.from({ length: shardCount }, (_, i) => i));
}

function isPinned(host: PlacementHost, drained: ReadonlySet<string>): boolean {
  return (host.pins?.length ?? 0) > 0 && !drained.has(host.id);
}

/** Pins exact, drained hosts empty, free shares proportional to weight within bucket granularity. */
function expectPlacementRules(fleet: Fleet, shares: HostShares, online: readonly PlacementHost[]): void {
  const { drained, mc } = fleet;
  for (const host of online) {
    const held = shares.get(host.id) ?? [];
    if (drained.has(host.id)) expect(held, `${host.id} is drained`).toEqual([]);
    else if (isPinned(host, drained)) expect(held, `${host.id} holds its pins`).toEqual(expand(host.pins));
  }
  const free = online.filter((host) => !drained.has(host.id) && !isPinned(host, drained));
  const active = free.filter((host) => host.role === 'active');
  const rest = free.reduce((sum, host) => sum + (shares.get(host.id)?.length ?? 0), 0);
  const total = active.reduce((sum, host) => sum + hostWeight(host), 0);
  for (const host of active) {
    const quota = (rest * hostWeight(host)) / total;
    // Whole blocks per host (floor or ceiling of its quota), the short last block on one of them.
    expect(Math.abs((shares.get(host.id)?.length ?? 0) - quota), `${host.id} share`).toBeLessThan(2 * mc);
  }
}

describe('placement (pins, weights, drain)', () => {
  it('a first plan: every shard once, pins exact, drained hosts empty, weights proportional', () => {
    forFleets(1, 400, (fleet) => {
      const shares = placeInitial(fleet.hosts, fleet.shardCount, fleet.mc, fleet.drained);
      expectEveryShardOnce(shares, fleet.shardCount);
      expectPlacementRules(fleet, shares, fleet.hosts);
      for (const host of fleet.hosts)
        if (host.role === 'standby') expect(shares.get(host.id), `standby ${host.id}`).toEqual([]);
    });
  });

  it('a rebalance from any plan keeps the rules; rebalancing again moves at most the short last block', () => {
    forFleets(2, 300, (fleet) => {
      const start = placeInitial(fleet.hosts, fleet.shardCount, fleet.mc);
      const shares = placeRebalance(start, fleet.hosts, fleet.shardCount, fleet.mc, fleet.drained);
      expectEveryShardOnce(shares, fleet.shardCount);
      expectPlacementRules(fleet, shares, fleet.hosts);
      const again = placeRebalance(shares, fleet.hosts, fleet.shardCount, fleet.mc, fleet.drained);
      // The planner may hand the short last block of the free hosts' shards to another host once.
      expect(movedShardCount(shares, again)).toBeLessThan(fleet.mc === 1 ? 1 : fleet.mc);
    });
  });

  it('a failover moves only the lost hosts’ shards; a lost pinned host’s pins go to the free hosts', () => {
    forFleets(3, 300, (fleet, rng) => {
      const before = placeInitial(fleet.hosts, fleet.shardCount, fleet.mc, fleet.drained);
      const lost = fleet.hosts.slice(1).filter(() => rng() < 0.3);
      const lostIds = new Set(lost.map((host) => host.id));
      const remaining = fleet.hosts.filter((host) => !lostIds.has(host.id));
      const { shares, unplaced } = placeFailover(
        before,
        [...lostIds],
        remaining,
        fleet.shardCount,
        fleet.mc,
        fleet.drained,
      );
      expect(unplaced).toEqual([]); // host 0 is free and never lost
      expectEveryShardOnce(shares, fleet.shardCount);
      for (const host of remaining) {
        const kept = before.get(host.id) ?? [];
        const now = new Set(shares.get(host.id) ?? []);
        // Survivors keep what they had: only orphans move.
        for (const shard of kept) expect(now.has(shard), `${host.id} keeps shard ${shard}`).toBe(true);
        if (isPinned(host, fleet.drained)) expect([...now].sort((a, b) => a - b)).toEqual(expand(host.pins));
      }
      for (const host of lost) expect(shares.has(host.id)).toBe(false);

      // The lost hosts come back: pinned ones get exactly their pins again, every other
      // returning host stays empty until a rebalance, and nothing else moves.
      const back = placeFailover(shares, [], fleet.hosts, fleet.shardCount, fleet.mc, fleet.drained);
      expectEveryShardOnce(back.shares, fleet.shardCount);
      for (const host of fleet.hosts) {
        const now = back.shares.get(host.id) ?? [];
        if (isPinned(host, fleet.drained)) expect(now).toEqual(expand(host.pins));
        else if (lostIds.has(host.id)) expect(now).toEqual([]);
        else {
          const returned = new Set(
            lost.filter((h) => isPinned(h, fleet.drained)).flatMap((h) => expand(h.pins)),
          );
          expect(now).toEqual((shares.get(host.id) ?? []).filter((shard) => !returned.has(shard)));
        }
      }
    });
  });

  it('a drain moves only the drained host’s shards; the last free host cannot be drained', () => {
    forFleets(4, 300, (fleet) => {
      const before = placeInitial(fleet.hosts, fleet.shardCount, fleet.mc, fleet.drained);
      const target = fleet.hosts[0];
      if (!target) return;
      const drained = new Set([...fleet.drained, target.id]);
      const { shares, unplaced } = placeFailover(
        before,
        [],
        fleet.hosts,
        fleet.shardCount,
        fleet.mc,
        drained,
      );
      const otherFree = fleet.hosts.some((host) => !drained.has(host.id) && !isPinned(host, drained));
      const leftover = (before.get(target.id) ?? []).length > 0;
      if (!otherFree && leftover) {
        // Nowhere to go: the shards stay (MASTER refuses the drain).
        expect(unplaced.length).toBeGreaterThan(0);
        expect(shares.get(target.id)).toEqual(before.get(target.id));
        return;
      }
      expect(unplaced).toEqual([]);
      expectEveryShardOnce(shares, fleet.shardCount);
      expect(shares.get(target.id)).toEqual([]);
      for (const host of fleet.hosts.slice(1))
        for (const shard of before.get(host.id) ?? [])
          expect(shares.get(host.id)?.includes(shard), `${host.id} keeps ${shard}`).toBe(true);
    });
  });

  it('weights multiply the share: equal machines weighted 1 and 3 hold 1/4 and 3/4', () => {
    const hosts: PlacementHost[] = [
      { id: 'a', role: 'active', cores: 4, load15: 0, weight: 1 },
      { id: 'b', role: 'active', cores: 4, load15: 0, weight: 3 },
    ];
    const shares = placeInitial(hosts, 64, 4);
    expect(shares.get('a')).toHaveLength(16);
    expect(shares.get('b')).toHaveLength(48);
    // An old CONTROL (no weight) weighs 1.
    const old = placeInitial(
      [{ id: 'a', role: 'active', cores: 4, load15: 0 }, hosts[1] as PlacementHost],
      64,
      4,
    );
    expect(old.get('a')).toHaveLength(16);
  });

  it('pinned, weighted and plain hosts mixed: pins exact, the rest by weight in whole buckets', () => {
    const hosts: PlacementHost[] = [
      { id: 'pinned', role: 'active', cores: 2, load15: 0, pins: parseShardRanges('0-15,48-63') },
      { id: 'plain', role: 'active', cores: 2, load15: 0 },
      { id: 'heavy', role: 'active', cores: 2, load15: 0, weight: 2 },
      { id: 'spare', role: 'standby', cores: 2, load15: 0 },
    ];
    const shares = placeInitial(hosts, 64, 16);
    expect(shares.get('pinned')).toEqual([...expand([[0, 15]]), ...expand([[48, 63]])]);
    // 32 shards left = 2 buckets over weights 1 : 2 (Hamilton: 0.67 → 1, 1.33 → 1).
    // Hosts in id order: heavy, then plain.
    expect(shares.get('heavy')).toEqual(expand([[16, 31]]));
    expect(shares.get('plain')).toEqual(expand([[32, 47]]));
    expect(shares.get('spare')).toEqual([]);
    // The pinned host is lost: the empty standby takes its pins, as it would any host's shards.
    const { shares: after } = placeFailover(shares, ['pinned'], hosts.slice(1), 64, 16);
    expect(after.get('spare')).toEqual(shares.get('pinned'));
    // Back again: its pins return to it, the standby is empty again, the others did not move.
    const back = placeFailover(after, [], hosts, 64, 16);
    expect(back.shares).toEqual(shares);
  });

  it('a lost pinned host with only pinned hosts left: its shards wait for it (unplaced, kept)', () => {
    const hosts: PlacementHost[] = [
      { id: 'a', role: 'active', cores: 2, load15: 0, pins: [[0, 7]] },
      { id: 'b', role: 'active', cores: 2, load15: 0, pins: [[8, 15]] },
    ];
    const shares = placeInitial(hosts, 16, 1);
    const { shares: after, unplaced } = placeFailover(shares, ['a'], hosts.slice(1), 16, 1);
    expect(unplaced).toEqual(expand([[0, 7]]));
    expect(after.get('a')).toEqual(expand([[0, 7]]));
    expect(after.get('b')).toEqual(expand([[8, 15]]));
  });

  it('pins not aligned to buckets are honoured as written and reported', () => {
    const hosts: PlacementHost[] = [
      { id: 'a', role: 'active', cores: 2, load15: 0, pins: [[5, 20]] },
      { id: 'b', role: 'active', cores: 2, load15: 0, pins: [[32, 49]] },
      { id: 'c', role: 'active', cores: 2, load15: 0 },
    ];
    const shares = placeInitial(hosts, 50, 16);
    expect(shares.get('a')).toEqual(expand([[5, 20]]));
    expectEveryShardOnce(shares, 50);
    // 32-49 ends on the last shard: aligned at its end, not its start? 32 is a bucket start: aligned.
    expect(pinAlignment(hosts, 50, 16)).toEqual(['a: 5-20']);
  });

  it('overlapping pins or pins outside the shard count are refused, naming the hosts', () => {
    const a: PlacementHost = { id: 'a', role: 'active', cores: 2, load15: 0, pins: [[0, 9]] };
    const b: PlacementHost = {
      id: 'b',
      role: 'active',
      cores: 2,
      load15: 0,
      pins: [
        [20, 29],
        [40, 49],
      ],
    };
    const c: PlacementHost = { id: 'c', role: 'active', cores: 2, load15: 0, pins: [[5, 12]] };
    const free: PlacementHost = { id: 'free', role: 'active', cores: 2, load15: 0 };
    expect(placementProblem([a, b, free], 64)).toBeNull();
    expect(placementProblem([a, b, c, free], 64)).toMatch(/hosts a and c both pin shards 5-9/);
    expect(placementProblem([a, b, free], 45)).toMatch(/host b pins shards 40-49, but the bot has 45 shards/);
    const current = placeInitial([a, b, free], 64, 1);
    for (const attempt of [
      () => placeInitial([a, b, c, free], 64, 1),
      () => placeRebalance(current, [a, b, c, free], 64, 1),
      () => placeFailover(current, [], [a, b, c, free], 64, 1),
      () => placeRebalance(current, [a, b, free], 45, 1),
    ])
      expect(attempt).toThrow(
        expect.objectContaining({ code: ErrorCode.PlacementRefused }) as unknown as DisclusterError,
      );
  });

  it('shards left with no unpinned host to take them: the plan is refused', () => {
    const a: PlacementHost = { id: 'a', role: 'active', cores: 2, load15: 0, pins: [[0, 9]] };
    expect(() => placeInitial([a], 16, 1)).toThrow(/shards 10-15 are pinned to no host/);
    // Every shard pinned: no free host needed.
    expect(placeInitial([a], 10, 1).get('a')).toEqual(expand([[0, 9]]));
  });
});

describe('pin_shards and weight settings', () => {
  const load = (env: Record<string, string>) =>
    loadModuleConfig(ControlConfigSchema, { moduleName: 'discluster-control', env });

  it('parses ranges, merges adjacent ones, and formats them back', () => {
    expect(parseShardRanges('256-300, 0-127,128')).toEqual([
      [0, 128],
      [256, 300],
    ]);
    expect(formatShardRanges(parseShardRanges('7,9-10'))).toBe('7,9-10');
    const loaded = load({ DISCLUSTER_PIN_SHARDS: '0-127,256-300', DISCLUSTER_WEIGHT: '2.5' });
    expect(loaded.ok && loaded.config.pin_shards).toEqual([
      [0, 127],
      [256, 300],
    ]);
    expect(loaded.ok && loaded.config.weight).toBe(2.5);
    const plain = load({});
    expect(plain.ok && plain.config.weight).toBe(1);
    expect(plain.ok && plain.config.pin_shards).toBeUndefined();
  });

  it.each([
    [{ DISCLUSTER_PIN_SHARDS: '0-10,5-20' }, 'pin_shards', /overlap/],
    [{ DISCLUSTER_PIN_SHARDS: '20-10' }, 'pin_shards', /ends before it starts/],
    [{ DISCLUSTER_PIN_SHARDS: 'all' }, 'pin_shards', /not a shard or a range/],
    [{ DISCLUSTER_PIN_SHARDS: '0-5', DISCLUSTER_ROLE: 'standby' }, 'pin_shards', /standby/],
    [{ DISCLUSTER_WEIGHT: '0' }, 'weight', /above 0/],
    [{ DISCLUSTER_WEIGHT: '-1' }, 'weight', /above 0/],
    [{ DISCLUSTER_WEIGHT: 'heavy' }, 'weight', /above 0/],
    [{ DISCLUSTER_WEIGHT: '5000' }, 'weight', /at most 1000/],
  ])('rejects %j naming %s', (env, key, message) => {
    const loaded = load(env);
    expect(loaded.ok).toBe(false);
    if (loaded.ok) return;
    expect(loaded.issues).toContainEqual({
      key,
      message: expect.stringMatching(message) as unknown as string,
    });
  });

  it('host facts carry pins and weight, validated on read; old CONTROLs without them are accepted', () => {
    const facts = {
      v: 1,
      type: 'heartbeat',
      hostId: 'h1',
      instanceId: 'instance-1',
      role: 'active',
      cores: 2,
      load15: 0,
      memory: { total: 1, free: 1 },
      shardsPerCluster: 10,
      version: '0.1.0',
      publicKey: 'A'.repeat(43),
      epoch: null,
      clusters: [],
      sentAt: 1,
    };
    const old = HostHeartbeatSchema.safeParse(facts);
    if (!old.success) return expect.fail(old.error.message);
    expect(old.data.pinShards).toBeUndefined();
    expect(HostHeartbeatSchema.safeParse({ ...facts, pinShards: [[0, 9]], weight: 2 }).success).toBe(true);
    for (const bad of [
      { pinShards: [[9, 0]] },
      {
        pinShards: [
          [0, 9],
          [5, 12],
        ],
      },
      { pinShards: [] },
      { weight: 0 },
      { weight: -2 },
    ])
      expect(HostHeartbeatSchema.safeParse({ ...facts, ...bad }).success, JSON.stringify(bad)).toBe(false);
  });
});

describe('discluster drain / undrain (CLI)', () => {
  it('parses one host id and refuses anything else', () => {
    expect(parseCli(['drain', 'beta'], {}).command).toEqual({ name: 'drain', hostId: 'beta' });
    expect(parseCli(['undrain', 'machine-2'], {}).command).toEqual({ name: 'undrain', hostId: 'machine-2' });
    for (const argv of [['drain'], ['drain', 'a', 'b'], ['undrain', 'no spaces!']])
      expect(() => parseCli(argv, {}), argv.join(' ')).toThrow(UsageError);
    expect(USAGE).toMatch(/drain <host>/);
    expect(USAGE).toMatch(/undrain <host>/);
  });

  it('status shows drained hosts, pins, weights and a placement problem', () => {
    const host = {
      role: 'active' as const,
      state: 'online' as const,
      cores: 2,
      load15: 0,
      epoch: 3,
      clusters: [],
    };
    const text = renderStatus({
      bot: 'b',
      shardCount: 32,
      maxConcurrency: 4,
      master: { up: true },
      source: 'master',
      epoch: 3,
      stopped: null,
      hosts: [
        { ...host, id: 'a', drained: true, weight: 1, pinShards: null },
        { ...host, id: 'p', drained: false, weight: 1, pinShards: '0-7' },
        { ...host, id: 'w', drained: false, weight: 2.5, pinShards: null },
      ],
      placementProblem: 'hosts p and q both pin shards 4-7',
    });
    expect(text).toMatch(/online, drained/);
    expect(text).toMatch(/p: pinned to shards 0-7/);
    expect(text).toMatch(/w: weight 2.5/);
    expect(text).toMatch(/PLACEMENT REFUSED: hosts p and q both pin shards 4-7/);
  });
});
