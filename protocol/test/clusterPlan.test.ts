import { describe, expect, it } from 'vitest';
import { clusterSize, clusterSizeProblem, splitIntoClusters } from '../src/clusterPlan';
import { ErrorCode, isDisclusterError } from '../src/errors';

/** A small deterministic PRNG so the property runs are reproducible. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

describe('splitIntoClusters', () => {
  it('uses 10 per cluster by default and a smaller last cluster (seed 003)', () => {
    const shards = Array.from({ length: 25 }, (_, i) => i);
    const clusters = splitIntoClusters(shards, { shardsPerCluster: 10, maxConcurrency: 1 });
    expect(clusters.map((c) => c.shardIds.length)).toEqual([10, 10, 5]);
    expect(clusters.map((c) => c.clusterId)).toEqual([0, 1, 2]);
  });

  it('uses max_concurrency per cluster when above 1, so a cluster holds one shard per rate-limit key', () => {
    const shards = Array.from({ length: 48 }, (_, i) => i + 32);
    const clusters = splitIntoClusters(shards, {
      shardsPerCluster: 10,
      maxConcurrency: 16,
      firstClusterId: 4,
    });
    expect(clusters.map((c) => c.clusterId)).toEqual([4, 5, 6]);
    for (const cluster of clusters) {
      expect(new Set(cluster.shardIds.map((id) => id % 16)).size).toBe(16);
    }
  });

  it('holds for random inputs: every shard exactly once, sizes right, ids consecutive', () => {
    const random = prng(42);
    for (let run = 0; run < 500; run++) {
      const count = Math.floor(random() * 300);
      const all = Array.from({ length: count * 2 }, (_, i) => i).filter(() => random() < 0.5);
      const shuffled = [...all].sort(() => random() - 0.5);
      const options = {
        shardsPerCluster: 1 + Math.floor(random() * 20),
        maxConcurrency: random() < 0.5 ? 1 : 1 + Math.floor(random() * 32),
        firstClusterId: Math.floor(random() * 100),
      };
      const size = clusterSize(options);
      const clusters = splitIntoClusters(shuffled, options);
      expect(clusters.flatMap((c) => c.shardIds)).toEqual(all);
      clusters.forEach((cluster, index) => {
        expect(cluster.clusterId).toBe(options.firstClusterId + index);
        if (index < clusters.length - 1) expect(cluster.shardIds.length).toBe(size);
        else expect(cluster.shardIds.length).toBeGreaterThan(0);
        expect(cluster.shardIds.length).toBeLessThanOrEqual(size);
      });
      expect(clusters.length).toBe(Math.ceil(all.length / size));
    }
  });

  it("the fleet's size (discluster resplit) wins: a multiple of max_concurrency (32 at 16)", () => {
    expect(clusterSize({ shardsPerCluster: 10, maxConcurrency: 16 })).toBe(16);
    expect(clusterSize({ shardsPerCluster: 10, maxConcurrency: 16, fleetClusterSize: 32 })).toBe(32);
    expect(clusterSize({ shardsPerCluster: 10, maxConcurrency: 1, fleetClusterSize: 7 })).toBe(7);
    // Discord raised max_concurrency since the re-split: whole buckets still, planning goes on.
    expect(clusterSize({ shardsPerCluster: 10, maxConcurrency: 64, fleetClusterSize: 32 })).toBe(64);
    expect(clusterSize({ shardsPerCluster: 10, maxConcurrency: 16, fleetClusterSize: 40 })).toBe(32);
    const clusters = splitIntoClusters(
      Array.from({ length: 64 }, (_, i) => i),
      { shardsPerCluster: 10, maxConcurrency: 16, fleetClusterSize: 32 },
    );
    expect(clusters.map((c) => c.shardIds.length)).toEqual([32, 32]);
    // Each cluster holds two shards of every rate-limit key.
    for (const cluster of clusters)
      for (let key = 0; key < 16; key++)
        expect(cluster.shardIds.filter((id) => id % 16 === key)).toHaveLength(2);
  });

  it('property: an accepted fleet size is a multiple of max_concurrency and is the size used', () => {
    const random = prng(7);
    for (let run = 0; run < 1000; run++) {
      const maxConcurrency = 1 + Math.floor(random() * 64);
      const fleetClusterSize = 1 + Math.floor(random() * 1000);
      const problem = clusterSizeProblem(fleetClusterSize, maxConcurrency);
      expect(problem === null).toBe(fleetClusterSize % maxConcurrency === 0);
      const options = { shardsPerCluster: 10, maxConcurrency, fleetClusterSize };
      const size = clusterSize(options);
      expect(size % maxConcurrency).toBe(0);
      if (problem === null) expect(size).toBe(fleetClusterSize);
      else
        expect(size).toBe(Math.max(maxConcurrency, fleetClusterSize - (fleetClusterSize % maxConcurrency)));
    }
  });

  it('clusterSizeProblem refuses sizes that are no multiple of max_concurrency and names a fix', () => {
    expect(clusterSizeProblem(32, 16)).toBeNull();
    expect(clusterSizeProblem(5, 1)).toBeNull();
    expect(clusterSizeProblem(24, 16)).toMatch(/multiple of max_concurrency \(16\).*try 32/);
    expect(clusterSizeProblem(8, 16)).toMatch(/try 16/);
    expect(clusterSizeProblem(0, 1)).toMatch(/from 1 to 1000/);
    expect(clusterSizeProblem(1001, 1)).toMatch(/from 1 to 1000/);
    expect(clusterSizeProblem(2.5, 1)).toMatch(/whole number/);
  });

  it('refuses duplicates, negative ids and bad sizes', () => {
    const bad = [
      () => splitIntoClusters([1, 1], { shardsPerCluster: 10, maxConcurrency: 1 }),
      () => splitIntoClusters([-1], { shardsPerCluster: 10, maxConcurrency: 1 }),
      () => splitIntoClusters([0], { shardsPerCluster: 0, maxConcurrency: 1 }),
      () => splitIntoClusters([0], { shardsPerCluster: 10, maxConcurrency: 0 }),
    ];
    for (const call of bad) {
      let thrown: unknown;
      try {
        call();
      } catch (error) {
        thrown = error;
      }
      expect(isDisclusterError(thrown)).toBe(true);
    }
    expect(() => splitIntoClusters([0], { shardsPerCluster: 1, maxConcurrency: 1 })).not.toThrow();
    let thrown: unknown;
    try {
      splitIntoClusters([1, 1], { shardsPerCluster: 10, maxConcurrency: 1 });
    } catch (error) {
      thrown = error;
    }
    expect(isDisclusterError(thrown, ErrorCode.InvalidShard)).toBe(true);
  });
});
