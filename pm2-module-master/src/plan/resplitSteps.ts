import { splitIntoClusters, type PlannedCluster } from 'discluster-protocol';

/**
 * The rolling re-split (`discluster resplit`), pure: which clusters of a host must be replaced to
 * reach clusters of a new size, in groups that can be swapped on their own.
 *
 * A host's target layout is its shards, ascending, in chunks of the new size (what a first plan
 * would give it: `splitIntoClusters`). A group is the smallest set of current clusters whose
 * shards are exactly the shards of a set of target chunks (the connected parts of "shares a shard
 * with"), so stopping the group's clusters and starting the chunks moves no shard anywhere else.
 * A group of one cluster equal to one chunk is already done.
 */

export interface ResplitGroup {
  /** Current clusters to stop, ascending by id. */
  readonly replaced: readonly PlannedCluster[];
  /** Shard sets of the clusters that replace them, ascending by first shard. */
  readonly chunks: readonly (readonly number[])[];
}

export interface HostResplit {
  /** Groups still to swap, ascending by their lowest shard. */
  readonly groups: readonly ResplitGroup[];
  /** Target chunks already served by a cluster of the target size. */
  readonly done: number;
  /** Target chunks in all. */
  readonly total: number;
}

function find(parent: number[], node: number): number {
  let root = node;
  while (parent[root] !== root) root = parent[root] as number;
  while (parent[node] !== root) {
    const next = parent[node] as number;
    parent[node] = root;
    node = next;
  }
  return root;
}

/**
 * What is left to re-split on one host whose running clusters are `clusters`, towards clusters of
 * `size` shards (`size` is the cluster size already rounded for `max_concurrency`; see
 * `clusterSize`). Shards appear in at most one cluster (a plan's invariant).
 */
export function hostResplit(clusters: readonly PlannedCluster[], size: number): HostResplit {
  const shards = clusters.flatMap((cluster) => cluster.shardIds);
  const chunks = splitIntoClusters(shards, { shardsPerCluster: size, maxConcurrency: 1 }).map(
    (chunk) => chunk.shardIds,
  );
  // Nodes: clusters 0..c-1, then chunks c..c+k-1; a shard joins its cluster and its chunk.
  const parent = Array.from({ length: clusters.length + chunks.length }, (_, i) => i);
  const chunkOf = new Map<number, number>();
  chunks.forEach((chunk, index) => chunk.forEach((shard) => chunkOf.set(shard, clusters.length + index)));
  clusters.forEach((cluster, index) => {
    for (const shard of cluster.shardIds) {
      const chunk = chunkOf.get(shard);
      if (chunk !== undefined) parent[find(parent, index)] = find(parent, chunk);
    }
  });
  const parts = new Map<number, { replaced: PlannedCluster[]; chunks: number[][] }>();
  const partOf = (node: number) => {
    const root = find(parent, node);
    let part = parts.get(root);
    if (!part) parts.set(root, (part = { replaced: [], chunks: [] }));
    return part;
  };
  clusters.forEach((cluster, index) => {
    if (cluster.shardIds.length > 0) partOf(index).replaced.push(cluster);
  });
  chunks.forEach((chunk, index) => partOf(clusters.length + index).chunks.push([...chunk]));
  let done = 0;
  const groups: ResplitGroup[] = [];
  for (const part of parts.values()) {
    if (part.chunks.length === 0) continue;
    if (part.replaced.length === 1 && part.chunks.length === 1) {
      done++;
      continue;
    }
    groups.push({
      replaced: [...part.replaced].sort((a, b) => a.clusterId - b.clusterId),
      chunks: part.chunks.sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0)),
    });
  }
  groups.sort((a, b) => (a.chunks[0]?.[0] ?? 0) - (b.chunks[0]?.[0] ?? 0));
  return { groups, done, total: chunks.length };
}
