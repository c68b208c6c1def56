import { DisclusterError, ErrorCode, formatShardRanges, type ShardRange } from 'discluster-protocol';
import { failoverPlan, initialPlan, rebalancePlan, type HostShares, type PlanHost } from './shardPlan.js';

/**
 * Placement on top of the shard planner (shardPlan.ts): pinned ranges (`pin_shards`), drained hosts
 * (`discluster drain`), and weights (carried by {@link PlanHost.weight}). Pure and deterministic like
 * the planner.
 *
 * Rules:
 * - A *pinned* host (online, not drained, with pins) holds exactly its pinned shards: split into
 *   clusters as usual. Pins need not follow `max_concurrency` buckets: a pin is honoured as written,
 *   and a cluster of a pin that does not start on a bucket boundary holds shards of two buckets,
 *   which then identify in two windows instead of one (MASTER logs a warning, {@link pinAlignment}).
 * - A *drained* host holds nothing, pins or not.
 * - Every other shard (not pinned to a pinned host: the pins of lost and drained hosts included) is
 *   planned over the *free* hosts (online, unpinned, not drained) by the planner's rules, in the
 *   planner's own blocks of `max_concurrency` over those shards in ascending order: shares follow
 *   `cores / max(load15, 1) × weight`, standbys stay empty until a host fails.
 * - Two hosts whose pins overlap, or a pin naming a shard at or above the shard count: a
 *   {@link placementProblem}, and every placement refuses (`DISCLUSTER_ERR_PLACEMENT_REFUSED`), so
 *   MASTER keeps the running plan until the pins are fixed.
 */

/** A host as placement sees it: the planner's facts plus its pins. */
export interface PlacementHost extends PlanHost {
  /** The host's `pin_shards`, sorted and non-overlapping; absent, null or empty: no pin. */
  readonly pins?: readonly ShardRange[] | null;
}

/** A failover's placement: the shares, and the shards nothing could take (kept by their holders). */
export interface FailoverPlacement {
  readonly shares: HostShares;
  /** Orphans no free host could take (every free host is gone): they stay where they are. */
  readonly unplaced: readonly number[];
}

function refused(message: string): DisclusterError {
  return new DisclusterError(ErrorCode.PlacementRefused, message);
}

function byId(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function hasPins(host: PlacementHost): boolean {
  return (host.pins?.length ?? 0) > 0;
}

/**
 * What is wrong with the hosts' pins for `shardCount` shards, or null: a pin at or above the shard
 * count, or two hosts pinning one shard (the first overlap found, hosts in id order).
 */
export function placementProblem(hosts: readonly PlacementHost[], shardCount: number): string | null {
  const pinned = hosts.filter(hasPins).sort((a, b) => byId(a.id, b.id));
  for (const host of pinned) {
    const outside = (host.pins ?? []).find(([, last]) => last >= shardCount);
    if (outside)
      return `host ${host.id} pins shards ${formatShardRanges([outside])}, but the bot has ${shardCount} shards (0-${shardCount - 1}): fix its pin_shards`;
  }
  const ranges = pinned
    .flatMap((host) => (host.pins ?? []).map((range) => ({ host: host.id, range })))
    .sort((a, b) => a.range[0] - b.range[0]);
  // Sorted by start: a range overlaps an earlier one iff it starts at or before the furthest end so far.
  let reach = ranges[0];
  for (const entry of ranges.slice(1)) {
    if (reach && entry.range[0] <= reach.range[1]) {
      const overlap: ShardRange = [entry.range[0], Math.min(entry.range[1], reach.range[1])];
      return `hosts ${reach.host} and ${entry.host} both pin shards ${formatShardRanges([overlap])}: pins must not overlap, fix the pin_shards of one of them`;
    }
    if (!reach || entry.range[1] > reach.range[1]) reach = entry;
  }
  return null;
}

/**
 * Pins that do not start and end on `max_concurrency` bucket boundaries (a pin that ends at the last
 * shard counts as ending on one), as `host: ranges` lines; empty when every pin is aligned.
 */
export function pinAlignment(
  hosts: readonly PlacementHost[],
  shardCount: number,
  maxConcurrency: number,
): string[] {
  const lines: string[] = [];
  for (const host of [...hosts].sort((a, b) => byId(a.id, b.id))) {
    const off = (host.pins ?? []).filter(
      ([first, last]) =>
        first % maxConcurrency !== 0 || ((last + 1) % maxConcurrency !== 0 && last !== shardCount - 1),
    );
    if (off.length > 0) lines.push(`${host.id}: ${formatShardRanges(off)}`);
  }
  return lines;
}

/** The shared split: pinned hosts' shares, the free hosts, and the shards left for them. */
interface Split {
  readonly sorted: readonly PlacementHost[];
  readonly fixed: Map<string, number[]>;
  readonly free: readonly PlanHost[];
  /** Shards for the free hosts, ascending: compact index i stands for `rest[i]`. */
  readonly rest: readonly number[];
}

function split(hosts: readonly PlacementHost[], shardCount: number, drained: ReadonlySet<string>): Split {
  const problem = placementProblem(hosts, shardCount);
  if (problem) throw refused(problem);
  const sorted = [...hosts].sort((a, b) => byId(a.id, b.id));
  const fixed = new Map<string, number[]>();
  const reserved = new Set<number>();
  const free: PlanHost[] = [];
  for (const host of sorted) {
    if (drained.has(host.id)) {
      fixed.set(host.id, []);
    } else if (hasPins(host)) {
      const shards: number[] = [];
      for (const [first, last] of host.pins ?? [])
        for (let shard = first; shard <= last; shard++) {
          shards.push(shard);
          reserved.add(shard);
        }
      fixed.set(host.id, shards);
    } else {
      free.push({
        id: host.id,
        role: host.role,
        cores: host.cores,
        load15: host.load15,
        ...(host.weight !== undefined ? { weight: host.weight } : {}),
      });
    }
  }
  const rest: number[] = [];
  for (let shard = 0; shard < shardCount; shard++) if (!reserved.has(shard)) rest.push(shard);
  return { sorted, fixed, free, rest };
}

/** The free hosts' current shards among `rest`, as compact indices. */
function compactCurrent(current: HostShares, free: readonly PlanHost[], rest: readonly number[]): HostShares {
  const index = new Map(rest.map((shard, i) => [shard, i]));
  return new Map(
    free.map((host) => [
      host.id,
      (current.get(host.id) ?? []).flatMap((shard) => {
        const i = index.get(shard);
        return i === undefined ? [] : [i];
      }),
    ]),
  );
}

function assemble(parts: Split, compact: HostShares | null): Map<string, number[]> {
  const shares = new Map<string, number[]>();
  for (const host of parts.sorted) {
    const own =
      parts.fixed.get(host.id) ??
      (compact?.get(host.id) ?? []).map((i) => parts.rest[i] ?? -1).sort((a, b) => a - b);
    shares.set(host.id, own);
  }
  return shares;
}

function nowhere(parts: Split, what: string): DisclusterError {
  const shards = formatShardRanges(toRanges(parts.rest));
  return refused(
    `${what}: shards ${shards} are pinned to no host and no unpinned, undrained host is online to serve them ` +
      '(add a host without pin_shards, pin them, or undrain a host)',
  );
}

/** Ascending shard ids → ranges (for messages). */
export function toRanges(shards: readonly number[]): ShardRange[] {
  const ranges: [number, number][] = [];
  for (const shard of shards) {
    const last = ranges[ranges.length - 1];
    if (last && shard === last[1] + 1) last[1] = shard;
    else ranges.push([shard, shard]);
  }
  return ranges;
}

/**
 * The first plan with placement: pinned hosts get their pins, drained hosts nothing, the rest is
 * the planner's {@link initialPlan} over the free hosts. Refuses (nothing planned) on a
 * {@link placementProblem}, or when shards are left and no free host exists.
 */
export function placeInitial(
  hosts: readonly PlacementHost[],
  shardCount: number,
  maxConcurrency: number,
  drained: ReadonlySet<string> = new Set(),
): HostShares {
  const parts = split(hosts, shardCount, drained);
  if (parts.rest.length === 0) return assemble(parts, null);
  if (parts.free.length === 0) throw nowhere(parts, 'cannot plan');
  return assemble(parts, initialPlan(parts.free, parts.rest.length, maxConcurrency));
}

/**
 * Moves only what must move: the shards of `lost` hosts and of hosts missing from `remaining`,
 * shards in no host, a drained host's shards, and pinned shards held by another host than their
 * pin (they go back to it: a pinned host that returns gets its pins back). Pinned hosts get exactly
 * their pins; the other orphans go to the free hosts by the planner's {@link failoverPlan} (an empty
 * standby takes them all, else spread by weight), and every free host keeps its shards.
 *
 * When orphans remain and no free host exists (only pinned or drained hosts are left), they are
 * `unplaced` and stay with whoever holds them now, lost hosts included: a lost pinned host's shards
 * wait for it (or for a free host) instead of landing on another pinned host. Refuses on a
 * {@link placementProblem}.
 */
export function placeFailover(
  current: HostShares,
  lostHostIds: readonly string[],
  remaining: readonly PlacementHost[],
  shardCount: number,
  maxConcurrency: number,
  drained: ReadonlySet<string> = new Set(),
): FailoverPlacement {
  const lost = new Set(lostHostIds);
  for (const host of remaining)
    if (lost.has(host.id)) throw refused(`host ${host.id} is listed both as lost and as remaining`);
  const parts = split(remaining, shardCount, drained);
  if (parts.rest.length === 0) return { shares: assemble(parts, null), unplaced: [] };
  if (parts.free.length === 0) {
    // Keep each left-over shard with its holder (a lost host stays in the plan with it).
    const shares = assemble(parts, null);
    const inRest = new Set(parts.rest);
    const unplaced: number[] = [];
    for (const [hostId, shards] of current) {
      const kept = shards.filter((shard) => inRest.has(shard));
      if (kept.length === 0) continue;
      unplaced.push(...kept);
      const own = shares.get(hostId) ?? [];
      shares.set(
        hostId,
        [...own.filter((shard) => !inRest.has(shard)), ...kept].sort((a, b) => a - b),
      );
    }
    return { shares: sorted(shares), unplaced: unplaced.sort((a, b) => a - b) };
  }
  const compact = failoverPlan(
    compactCurrent(current, parts.free, parts.rest),
    [],
    parts.free,
    parts.rest.length,
    maxConcurrency,
  );
  return { shares: assemble(parts, compact), unplaced: [] };
}

function sorted(shares: Map<string, number[]>): HostShares {
  return new Map([...shares].sort(([a], [b]) => byId(a, b)));
}

/**
 * Rebalance with placement: pinned hosts get exactly their pins, drained hosts nothing, and the free
 * hosts are rebalanced over the remaining shards with the planner's {@link rebalancePlan} (fewest
 * moves, shares by weight). Refuses on a {@link placementProblem}, or when shards are left and no
 * free host exists.
 */
export function placeRebalance(
  current: HostShares,
  hosts: readonly PlacementHost[],
  shardCount: number,
  maxConcurrency: number,
  drained: ReadonlySet<string> = new Set(),
): HostShares {
  const parts = split(hosts, shardCount, drained);
  if (parts.rest.length === 0) return assemble(parts, null);
  if (parts.free.length === 0) throw nowhere(parts, 'cannot rebalance');
  const compact = rebalancePlan(
    compactCurrent(current, parts.free, parts.rest),
    parts.free,
    parts.rest.length,
    maxConcurrency,
  );
  return assemble(parts, compact);
}
