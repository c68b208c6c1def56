import { describe, expect, it } from 'vitest';
import { clusterSize, splitIntoClusters } from '../src/clusterPlan';
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
