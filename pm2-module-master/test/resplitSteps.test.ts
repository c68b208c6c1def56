import { describe, expect, it } from 'vitest';
import { seededRandom } from 'discluster-testing';
import { splitIntoClusters, type PlannedCluster } from 'discluster-protocol';
import { hostResplit } from '../src/plan/resplitSteps';

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);
const clustersOf = (shards: readonly number[], size: number, firstId = 0) =>
  splitIntoClusters(shards, { shardsPerCluster: size, maxConcurrency: 1, firstClusterId: firstId });

describe('hostResplit', () => {
  it('16 → 32: each pair of clusters is one group, replaced by one cluster', () => {
    const result = hostResplit(clustersOf(range(0, 64), 16), 32);
    expect(result.total).toBe(2);
    expect(result.done).toBe(0);
    expect(result.groups.map((g) => g.replaced.map((c) => c.clusterId))).toEqual([
      [0, 1],
      [2, 3],
    ]);
    expect(result.groups.map((g) => g.chunks)).toEqual([[range(0, 32)], [range(32, 32)]]);
  });

  it('32 → 16: each cluster is one group, replaced by two', () => {
    const result = hostResplit(clustersOf(range(0, 64), 32), 16);
    expect(result.groups.map((g) => g.replaced.map((c) => c.clusterId))).toEqual([[0], [1]]);
    expect(result.groups[0]?.chunks).toEqual([range(0, 16), range(16, 16)]);
  });

  it('nothing to do when every cluster already has the size', () => {
    const result = hostResplit(clustersOf(range(16, 48), 16, 7), 16);
    expect(result).toEqual({ groups: [], done: 3, total: 3 });
  });

  it('10 → 16 groups the clusters that overlap chunk boundaries (every 80 shards)', () => {
    const result = hostResplit(clustersOf(range(0, 160), 10), 16);
    expect(result.groups).toHaveLength(2);
    expect(result.groups[0]?.replaced).toHaveLength(8);
    expect(result.groups[0]?.chunks).toHaveLength(5);
  });

  it('property: groups and done chunks partition the shards; swapping every group gives the target layout', () => {
    const random = seededRandom(11);
    for (let run = 0; run < 400; run++) {
      const shards = range(0, 1 + Math.floor(random() * 200)).filter(() => random() < 0.8);
      // A host's clusters after any history: random sizes over its shards in a shuffled order.
      const order = [...shards].sort(() => random() - 0.5);
      const current: PlannedCluster[] = [];
      for (
        let start = 0, id = Math.floor(random() * 50);
        start < order.length;
        id += 1 + Math.floor(random() * 3)
      ) {
        const size = 1 + Math.floor(random() * 40);
        current.push({ clusterId: id, shardIds: order.slice(start, start + size).sort((a, b) => a - b) });
        start += size;
      }
      const size = 1 + Math.floor(random() * 48);
      const result = hostResplit(current, size);
      const target = clustersOf(shards, size).map((c) => c.shardIds);
      expect(result.total).toBe(target.length);
      const replacedIds = result.groups.flatMap((g) => g.replaced.map((c) => c.clusterId));
      expect(new Set(replacedIds).size).toBe(replacedIds.length);
      for (const group of result.groups) {
        // A group's old and new clusters hold exactly the same shards.
        const before = group.replaced.flatMap((c) => c.shardIds).sort((a, b) => a - b);
        const after = group.chunks.flat().sort((a, b) => a - b);
        expect(after).toEqual(before);
        for (const chunk of group.chunks) expect(target).toContainEqual(chunk);
      }
      const kept = current.filter((c) => !replacedIds.includes(c.clusterId)).map((c) => c.shardIds);
      expect(kept).toHaveLength(result.done);
      expect(result.done + result.groups.reduce((n, g) => n + g.chunks.length, 0)).toBe(target.length);
      const swapped = [...kept, ...result.groups.flatMap((g) => g.chunks)].map((c) => c.join());
      expect(swapped.sort()).toEqual(target.map((c) => c.join()).sort());
      // Swapping everything leaves nothing to do.
      const again = hostResplit(
        target.map((shardIds, i) => ({ clusterId: i, shardIds })),
        size,
      );
      expect(again.groups).toEqual([]);
    }
  });
});
