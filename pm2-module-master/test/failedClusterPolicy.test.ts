import { describe, expect, it } from 'vitest';
import { PlanRecordSchema, splitIntoClusters, type PlanRecord } from 'discluster-protocol';
import {
  decideOnGiveUp,
  moveTarget,
  planAfterGiveUp,
  planWithFailuresCleared,
  type FailureDecision,
  type GiveUp,
} from '../src/fleet/failedClusterPolicy';
import { hostWeight, initialPlan, type PlanHost } from '../src/plan/index';

// Property-style: a seeded PRNG (mulberry32), so every run checks the same fleets and a failing
// seed can be replayed.
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

const int = (rng: Rng, min: number, max: number) => min + Math.floor(rng() * (max - min + 1));

function pick<T>(rng: Rng, items: readonly T[]): T {
  const item = items[int(rng, 0, items.length - 1)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

const GATEWAY = {
  url: 'wss://gateway.discord.gg',
  shards: 1,
  session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 1 },
};

/** A plan as MASTER's first plan lays it out: each host's share split into clusters, ids in order. */
function planOf(hosts: readonly PlanHost[], shardCount: number, maxConcurrency: number): PlanRecord {
  const shares = initialPlan(hosts, shardCount, maxConcurrency);
  let next = 0;
  const planned: PlanRecord['hosts'] = {};
  for (const [hostId, shards] of shares) {
    planned[hostId] = splitIntoClusters(shards, {
      shardsPerCluster: 4,
      maxConcurrency,
      firstClusterId: next,
    }).map((cluster) => ({ clusterId: cluster.clusterId, shardIds: [...cluster.shardIds] }));
    next += planned[hostId].length;
  }
  return {
    v: 1,
    epoch: 3,
    shardCount,
    gateway: {
      ...GATEWAY,
      shards: shardCount,
      session_start_limit: { ...GATEWAY.session_start_limit, max_concurrency: maxConcurrency },
    },
    hosts: planned,
    nextClusterId: next,
    stopped: null,
    updatedAt: 1,
  };
}

interface Fleet {
  readonly seed: number;
  readonly hosts: PlanHost[];
  readonly plan: PlanRecord;
}

function randomFleet(seed: number): Fleet {
  const rng = mulberry32(seed);
  const count = int(rng, 1, 6);
  const hosts: PlanHost[] = Array.from({ length: count }, (_, i) => ({
    id: `h${(i * 7 + seed) % 97}-${i}`,
    role: i > 0 && rng() < 0.25 ? 'standby' : 'active',
    cores: int(rng, 1, 32),
    load15: rng() < 0.1 ? 0 : rng() * 8,
  }));
  const maxConcurrency = pick(rng, [1, 1, 2, 4]);
  const plan = planOf(hosts, int(rng, 1, 64), maxConcurrency);
  return { seed, hosts, plan };
}

/** A give-up of a random planned cluster, or null if the plan has none. */
function randomGiveUp(rng: Rng, plan: PlanRecord): GiveUp | null {
  const clusters = Object.entries(plan.hosts).flatMap(([hostId, list]) =>
    list.map((cluster) => ({ hostId, clusterId: cluster.clusterId })),
  );
  if (clusters.length === 0) return null;
  const { hostId, clusterId } = pick(rng, clusters);
  return { hostId, clusterId, attempts: int(rng, 1, 5), reason: 'exited before reporting ready', at: 1_000 };
}

function shardOwners(plan: PlanRecord): Map<number, string> {
  const owners = new Map<number, string>();
  for (const [hostId, clusters] of Object.entries(plan.hosts))
    for (const cluster of clusters)
      for (const shard of cluster.shardIds) {
        if (owners.has(shard)) throw new Error(`shard ${shard} planned twice`);
        owners.set(shard, hostId);
      }
  return owners;
}

function clusterHost(plan: PlanRecord, clusterId: number): string | undefined {
  return Object.entries(plan.hosts).find(([, clusters]) =>
    clusters.some((c) => c.clusterId === clusterId),
  )?.[0];
}

const SEEDS = Array.from({ length: 400 }, (_, i) => i + 1);

describe('failed cluster policy: move (default)', () => {
  it('moves the cluster, whole and under its id, to the least loaded other host; never back to the host it gave up on', () => {
    let moves = 0;
    for (const seed of SEEDS) {
      const { hosts, plan } = randomFleet(seed);
      const rng = mulberry32(seed * 31);
      const giveUp = randomGiveUp(rng, plan);
      if (!giveUp) continue;
      const online = hosts.filter((host) => host.id === giveUp.hostId || rng() < 0.8);
      const decision = decideOnGiveUp(plan, giveUp, online, 'move');
      const others = online.filter((host) => host.id !== giveUp.hostId);
      const context = `seed ${seed}`;
      if (others.length === 0) {
        expect(decision.kind, context).toBe('hold');
        continue;
      }
      expect(decision.kind, context).toBe('move');
      if (decision.kind !== 'move') continue;
      moves++;
      // Never the failed host; an online one; active unless no other active host is online.
      expect(decision.to, context).not.toBe(giveUp.hostId);
      const target = online.find((host) => host.id === decision.to);
      expect(target, context).toBeDefined();
      if (others.some((host) => host.role === 'active')) expect(target?.role, context).toBe('active');
      // The least loaded by the planner's weights among its peers.
      const pool = others.filter((host) => host.role === target?.role);
      const load = (host: PlanHost) =>
        (plan.hosts[host.id] ?? []).reduce((n, c) => n + c.shardIds.length, 0) / hostWeight(host);
      for (const host of pool) expect(load(host), context).toBeGreaterThanOrEqual(load(target!));

      const next = planAfterGiveUp(plan, decision, 2_000);
      expect(PlanRecordSchema.safeParse(next).success, context).toBe(true);
      expect(next.epoch, context).toBe(plan.epoch + 1);
      // Every shard still planned exactly once; only the failed cluster's shards changed host.
      const before = shardOwners(plan);
      const after = shardOwners(next);
      expect(
        [...after.keys()].sort((a, b) => a - b),
        context,
      ).toEqual([...before.keys()].sort((a, b) => a - b));
      const moved = (plan.hosts[giveUp.hostId] ?? []).find((c) => c.clusterId === giveUp.clusterId)!;
      const expected = new Map(
        [...before].map(([shard, host]) => [shard, moved.shardIds.includes(shard) ? decision.to : host]),
      );
      expect(after, context).toEqual(expected);
      expect(clusterHost(next, giveUp.clusterId), context).toBe(decision.to);
      expect(next.failures, context).toEqual([
        expect.objectContaining({
          clusterId: giveUp.clusterId,
          hostId: giveUp.hostId,
          failedOn: [giveUp.hostId],
          action: 'moved',
          movedTo: decision.to,
          shardIds: moved.shardIds,
        }),
      ]);
    }
    expect(moves).toBeGreaterThan(100);
  });

  it('holds the shards when the moved cluster gives up again, and does nothing more after that', () => {
    let checked = 0;
    for (const seed of SEEDS) {
      const { hosts, plan } = randomFleet(seed);
      const giveUp = randomGiveUp(mulberry32(seed), plan);
      if (!giveUp) continue;
      const first = decideOnGiveUp(plan, giveUp, hosts, 'move');
      if (first.kind !== 'move') continue;
      const moved = planAfterGiveUp(plan, first, 2_000);
      const again: GiveUp = { ...giveUp, hostId: first.to, reason: 'still crashing', at: 3_000 };
      const context = `seed ${seed}`;
      // Whatever the hosts and whatever the setting now: held, not moved again.
      for (const action of ['move', 'hold'] as const) {
        const second = decideOnGiveUp(moved, again, hosts, action);
        expect(second.kind, context).toBe('hold');
        if (second.kind !== 'hold') continue;
        const held = planAfterGiveUp(moved, second, 3_000);
        expect(PlanRecordSchema.safeParse(held).success, context).toBe(true);
        // Nothing runs differently: same epoch, same hosts.
        expect(held.epoch, context).toBe(moved.epoch);
        expect(held.hosts, context).toEqual(moved.hosts);
        expect(held.failures, context).toEqual([
          expect.objectContaining({
            clusterId: giveUp.clusterId,
            hostId: first.to,
            failedOn: [giveUp.hostId, first.to],
            action: 'held',
            movedTo: null,
            reason: 'still crashing',
          }),
        ]);
        // A repeat of that give-up (the event and a heartbeat) changes nothing.
        expect(decideOnGiveUp(held, again, hosts, 'move').kind, context).toBe('ignore');
      }
      // Its old host reporting it failed (before it applied the move) is no give-up of the plan's.
      expect(decideOnGiveUp(moved, giveUp, hosts, 'move').kind, context).toBe('ignore');
      checked++;
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('chooses by weight: the host with the fewest shards per unit of cores / max(load15, 1), ties to the lower id', () => {
    const plan = planOf(
      [
        { id: 'a', role: 'active', cores: 4, load15: 0 },
        { id: 'b', role: 'active', cores: 4, load15: 0 },
        { id: 'c', role: 'active', cores: 8, load15: 0 },
      ],
      32,
      1,
    );
    const hosts: PlanHost[] = [
      { id: 'a', role: 'active', cores: 4, load15: 0 },
      // Same shards as a, but loaded: weight 4 / 4 = 1.
      { id: 'b', role: 'active', cores: 4, load15: 4 },
      { id: 'c', role: 'active', cores: 8, load15: 0 },
      { id: 's', role: 'standby', cores: 64, load15: 0 },
    ];
    // a: 8 shards / 4, b: 8 / 1, c: 16 / 8 -> a and c tie at 2: a (lower id). The standby waits.
    expect(moveTarget(plan, hosts, new Set(['b']))).toBe('a');
    expect(moveTarget(plan, hosts, new Set(['a']))).toBe('c');
    // No active host left: a standby stands in.
    expect(moveTarget(plan, hosts, new Set(['a', 'b', 'c']))).toBe('s');
    expect(moveTarget(plan, hosts, new Set(['a', 'b', 'c', 's']))).toBeNull();
    // A drained host holds nothing, and a pinned one serves exactly its pins: neither takes it.
    expect(moveTarget({ ...plan, drained: ['a'] }, hosts, new Set(['b']))).toBe('c');
    const pinned = hosts.map((host) =>
      host.id === 'a' ? { ...host, pins: [[0, 7]] as [number, number][] } : host,
    );
    expect(moveTarget(plan, pinned, new Set(['b']))).toBe('c');
  });
});

describe('failed cluster policy: hold, and what is ignored', () => {
  it('failed_cluster_action=hold never moves a shard', () => {
    for (const seed of SEEDS) {
      const { hosts, plan } = randomFleet(seed);
      const giveUp = randomGiveUp(mulberry32(seed), plan);
      if (!giveUp) continue;
      const decision = decideOnGiveUp(plan, giveUp, hosts, 'hold');
      expect(decision.kind).toBe('hold');
      if (decision.kind !== 'hold') continue;
      expect(decision.record.why).toMatch(/failed_cluster_action is hold/);
      const next = planAfterGiveUp(plan, decision, 2_000);
      expect(next.hosts).toEqual(plan.hosts);
      expect(next.epoch).toBe(plan.epoch);
    }
  });

  it('holds during a reshard and when no other host is online; ignores a stopped fleet and clusters not planned there', () => {
    const hosts: PlanHost[] = [
      { id: 'alpha', role: 'active', cores: 2, load15: 0 },
      { id: 'beta', role: 'active', cores: 2, load15: 0 },
    ];
    const plan = planOf(hosts, 8, 2);
    const giveUp: GiveUp = { hostId: 'alpha', clusterId: 0, attempts: 3, reason: 'x', at: 1 };
    const why = (decision: FailureDecision) =>
      decision.kind === 'ignore' ? decision.why : decision.record.why;
    expect(why(decideOnGiveUp(plan, giveUp, hosts.slice(0, 1), 'move'))).toMatch(/no other host is online/);
    const resharding: PlanRecord = {
      ...plan,
      reshard: { id: 'r1', shardCount: 16, phase: 'starting', hosts: {}, reason: 'test', startedAt: 1 },
    };
    expect(why(decideOnGiveUp(resharding, giveUp, hosts, 'move'))).toMatch(/a reshard is in progress/);
    const stopped: PlanRecord = { ...plan, stopped: { reason: 'stop', code: null, at: 1 } };
    expect(decideOnGiveUp(stopped, giveUp, hosts, 'move').kind).toBe('ignore');
    expect(decideOnGiveUp(plan, { ...giveUp, hostId: 'beta' }, hosts, 'move').kind).toBe('ignore');
    expect(decideOnGiveUp(plan, { ...giveUp, clusterId: 99 }, hosts, 'move').kind).toBe('ignore');
  });
});

describe('clearing failures (`discluster rebalance`)', () => {
  it('plans held clusters again under new ids, keeps moved ones, keeps every shard once; null when nothing stands', () => {
    for (const seed of SEEDS) {
      const { hosts, plan } = randomFleet(seed);
      expect(planWithFailuresCleared(plan, 5)).toBeNull();
      const giveUp = randomGiveUp(mulberry32(seed), plan);
      if (!giveUp) continue;
      const first = decideOnGiveUp(plan, giveUp, hosts, 'move');
      if (first.kind === 'ignore') continue;
      let failed = planAfterGiveUp(plan, first, 2);
      if (first.kind === 'move') {
        const second = decideOnGiveUp(failed, { ...giveUp, hostId: first.to }, hosts, 'move');
        if (second.kind !== 'hold') throw new Error(`seed ${seed}: expected a hold`);
        failed = planAfterGiveUp(failed, second, 3);
      }
      const cleared = planWithFailuresCleared(failed, 4);
      const context = `seed ${seed}`;
      expect(cleared, context).not.toBeNull();
      if (!cleared) continue;
      expect(PlanRecordSchema.safeParse(cleared).success, context).toBe(true);
      expect(cleared.failures, context).toEqual([]);
      expect(shardOwners(cleared), context).toEqual(shardOwners(failed));
      // The held cluster is gone under its old id and back under a new one, on the same host.
      const heldHost = clusterHost(failed, giveUp.clusterId);
      expect(clusterHost(cleared, giveUp.clusterId), context).toBeUndefined();
      const renewed = (cleared.hosts[heldHost!] ?? []).filter((c) => c.clusterId >= failed.nextClusterId);
      expect(
        renewed.map((c) => c.clusterId),
        context,
      ).toEqual([failed.nextClusterId]);
      expect(cleared.nextClusterId, context).toBe(failed.nextClusterId + 1);
    }
  });
});
