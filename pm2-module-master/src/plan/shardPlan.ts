import { DisclusterError, ErrorCode } from 'discluster-protocol';

/**
 * MASTER's shard planner: which host serves which shards. Pure functions, no I/O, deterministic:
 * hosts are always processed in ascending id order (plain code-unit comparison, not locale-aware),
 * so the same fleet given in any order yields the same plan, and every map returned lists its hosts
 * in that order with ascending shard ids.
 *
 * Shards are handed out in *blocks* of `maxConcurrency` shards: block `k` is shards
 * `[k * mc, (k + 1) * mc)`, and the last block is shorter when `shardCount % mc != 0`. A block holds
 * one shard of every rate-limit key (`shard_id % max_concurrency`), so a host that owns whole blocks
 * can run each block as one cluster whose shards IDENTIFY together (seed 003). With `mc = 1` a
 * block is one shard.
 *
 * Shares follow `cores / load average (15 min)` (seed 004, see {@link hostWeight}); standby hosts
 * hold nothing until an active host fails (seed 004, see {@link failoverPlan}).
 */

/** What the planner needs to know about one host (from CONTROL's announcement). */
export interface PlanHost {
  readonly id: string;
  readonly role: 'active' | 'standby';
  /** CPU cores available to the bot; any finite number above 0 (containers may have fractions). */
  readonly cores: number;
  /** 15-minute load average; finite, >= 0. */
  readonly load15: number;
  /** A multiplier on the host's share (its `weight` setting); finite, above 0. Default 1. */
  readonly weight?: number;
}

/** hostId -> ascending shard ids. */
export type HostShares = ReadonlyMap<string, readonly number[]>;

/** Options of {@link targetShareCounts}. */
export interface TargetOptions {
  /**
   * The host to charge the short last block to (the block is `shardCount % mc` shards instead of
   * `mc`), when it is given at least one block. Default, and fallback when this host gets no block:
   * the last host by id that gets a block, which is where {@link initialPlan} puts the last block.
   * {@link rebalancePlan} passes the current holder of the last shard (or a host that receives
   * shards anyway) so that the short block does not move, or at least stays whole.
   */
  readonly lastBlockHost?: string;
}

function invalid(message: string): DisclusterError {
  return new DisclusterError(ErrorCode.InvalidOption, message);
}

function byId(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function ascending(a: number, b: number): number {
  return a - b;
}

function checkCounts(shardCount: number, maxConcurrency: number): void {
  if (!Number.isSafeInteger(shardCount) || shardCount < 1)
    throw invalid(`shardCount must be a positive integer, got ${String(shardCount)}`);
  if (!Number.isSafeInteger(maxConcurrency) || maxConcurrency < 1)
    throw invalid(`maxConcurrency must be a positive integer, got ${String(maxConcurrency)}`);
}

function checkHost(host: PlanHost): void {
  if (typeof host.id !== 'string' || host.id.length === 0)
    throw invalid(`host id must be a non-empty string, got ${JSON.stringify(host.id)}`);
  if (host.role !== 'active' && host.role !== 'standby')
    throw invalid(`host ${host.id}: role must be 'active' or 'standby', got ${JSON.stringify(host.role)}`);
  if (typeof host.cores !== 'number' || !Number.isFinite(host.cores) || host.cores <= 0)
    throw invalid(`host ${host.id}: cores must be a finite number above 0, got ${String(host.cores)}`);
  if (typeof host.load15 !== 'number' || !Number.isFinite(host.load15) || host.load15 < 0)
    throw invalid(`host ${host.id}: load15 must be a finite number >= 0, got ${String(host.load15)}`);
  if (host.weight !== undefined && (!Number.isFinite(host.weight) || host.weight <= 0))
    throw invalid(`host ${host.id}: weight must be a finite number above 0, got ${String(host.weight)}`);
}

/** Validates every host and returns them sorted by id; duplicate ids are an error. */
function sortedHosts(hosts: readonly PlanHost[]): PlanHost[] {
  const seen = new Set<string>();
  for (const host of hosts) {
    checkHost(host);
    if (seen.has(host.id)) throw invalid(`host id ${host.id} is listed twice`);
    seen.add(host.id);
  }
  return [...hosts].sort((a, b) => byId(a.id, b.id));
}

/** Hosts that may hold shards: the active ones; if there is none, the standbys stand in for them. */
function eligibleHosts(sorted: readonly PlanHost[]): PlanHost[] {
  const active = sorted.filter((host) => host.role === 'active');
  return active.length > 0 ? active : [...sorted];
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

function blockCount(shardCount: number, maxConcurrency: number): number {
  return Math.ceil(shardCount / maxConcurrency);
}

/**
 * Validates `current` against `shardCount` and returns shard -> host. A shard id outside
 * `0..shardCount-1` or held by two hosts is an error: the plan is corrupt (two hosts serving one
 * shard would break "one live session per shard") and guessing would hide it.
 */
function ownersOf(current: HostShares, shardCount: number | undefined): Map<number, string> {
  const owners = new Map<number, string>();
  for (const [hostId, shards] of current) {
    for (const shard of shards) {
      if (!Number.isSafeInteger(shard) || shard < 0 || (shardCount !== undefined && shard >= shardCount)) {
        const range = shardCount === undefined ? 'a non-negative integer' : `in 0..${shardCount - 1}`;
        throw new DisclusterError(
          ErrorCode.InvalidShard,
          `host ${hostId} holds shard ${String(shard)}, which is not ${range}`,
        );
      }
      const other = owners.get(shard);
      if (other !== undefined)
        throw new DisclusterError(
          ErrorCode.InvalidShard,
          other === hostId
            ? `host ${hostId} lists shard ${shard} twice`
            : `shard ${shard} is held by both ${other} and ${hostId}`,
        );
      owners.set(shard, hostId);
    }
  }
  return owners;
}

/** The shards of one block that a set holds (a whole block, or a fragment of one). */
interface Piece {
  readonly block: number;
  readonly shards: number[];
}

/** Groups shards by block; pieces in ascending block order, shards ascending. */
function toPieces(shards: readonly number[], maxConcurrency: number): Piece[] {
  const pieces: Piece[] = [];
  for (const shard of [...shards].sort(ascending)) {
    const block = Math.floor(shard / maxConcurrency);
    const last = pieces[pieces.length - 1];
    if (last !== undefined && last.block === block) last.shards.push(shard);
    else pieces.push({ block, shards: [shard] });
  }
  return pieces;
}

/** Largest pieces first; among equal sizes, lowest block first. */
function bySizeThenBlock(a: Piece, b: Piece): number {
  return b.shards.length - a.shards.length || a.block - b.block;
}

/** The result map: every host of `sorted`, in id order, with ascending shards. */
function toShares(sorted: readonly PlanHost[], sets: ReadonlyMap<string, readonly number[]>): HostShares {
  const shares = new Map<string, readonly number[]>();
  for (const host of sorted) shares.set(host.id, [...(sets.get(host.id) ?? [])].sort(ascending));
  return shares;
}

/**
 * A host's share weight: `cores / max(load15, 1) × weight`, the seed's `cores / load average (15 min)`
 * times the host's `weight` setting (default 1).
 *
 * Guard: a 15-minute load below 1 counts as 1. Without it an idle machine's weight explodes
 * (`2 / 0.02` = 100, fifty times its cores) and a load of 0 divides by zero, so a freshly booted
 * 2-core box would outweigh a busy 16-core one by orders of magnitude. With it, a machine that is
 * idle or nearly so weighs exactly its core count, and load only lowers a weight once it exceeds
 * one runnable task.
 */
export function hostWeight(host: PlanHost): number {
  checkHost(host);
  return (host.cores / Math.max(host.load15, 1)) * (host.weight ?? 1);
}

/** Whole blocks per eligible host: largest-remainder (Hamilton) rounding, ties by host id. */
function targetBlocks(eligible: readonly PlanHost[], blocks: number): Map<string, number> {
  const weights = eligible.map(hostWeight);
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  const quotas = weights.map((weight) => (blocks * weight) / total);
  const counts = quotas.map(Math.floor);
  let left = blocks - counts.reduce((sum, count) => sum + count, 0);
  // Stable sort: equal remainders keep id order, so ties go to the lower host id.
  const order = quotas
    .map((quota, index) => ({ index, remainder: quota - Math.floor(quota) }))
    .sort((a, b) => b.remainder - a.remainder);
  for (let i = 0; left > 0; i = (i + 1) % order.length, left--) {
    const index = order[i]?.index ?? 0;
    counts[index] = (counts[index] ?? 0) + 1;
  }
  return new Map(eligible.map((host, index) => [host.id, counts[index] ?? 0]));
}

/**
 * How many shards each host should hold: every host of `hosts` appears, standbys with 0.
 *
 * Active hosts share the `ceil(shardCount / mc)` blocks in proportion to {@link hostWeight}, with
 * largest-remainder rounding (each host gets the floor or the ceiling of its exact quota; leftover
 * blocks go to the largest fractional parts, ties to the lower host id). A count is its blocks
 * times `mc`, except for the one host charged with the short last block (see
 * {@link TargetOptions.lastBlockHost}). The counts add up to `shardCount`.
 *
 * If no host is active but some are standbys, the standbys are treated as active: a fleet of
 * standbys still serves the bot rather than nothing. No host at all is an error.
 */
export function targetShareCounts(
  hosts: readonly PlanHost[],
  shardCount: number,
  maxConcurrency: number,
  options: TargetOptions = {},
): Map<string, number> {
  checkCounts(shardCount, maxConcurrency);
  const sorted = sortedHosts(hosts);
  if (sorted.length === 0)
    throw invalid('cannot plan shards without any host: no CONTROL has announced itself');
  const blocks = blockCount(shardCount, maxConcurrency);
  const perHost = targetBlocks(eligibleHosts(sorted), blocks);
  const counts = new Map(sorted.map((host) => [host.id, (perHost.get(host.id) ?? 0) * maxConcurrency]));
  const shortfall = blocks * maxConcurrency - shardCount;
  if (shortfall > 0) {
    let charged = options.lastBlockHost;
    if (charged === undefined || (perHost.get(charged) ?? 0) === 0) {
      charged = [...perHost].filter(([, count]) => count > 0).pop()?.[0];
    }
    // `charged` is always found: the blocks (at least one) went to some host.
    if (charged !== undefined) counts.set(charged, (counts.get(charged) ?? 0) - shortfall);
  }
  return counts;
}

/**
 * The first plan: each eligible host (see {@link targetShareCounts}) gets one contiguous range of
 * whole blocks, hosts in id order, sized by {@link targetShareCounts}; the last host with a share
 * gets the short last block. Standby hosts are present with `[]`.
 */
export function initialPlan(
  hosts: readonly PlanHost[],
  shardCount: number,
  maxConcurrency: number,
): HostShares {
  const counts = targetShareCounts(hosts, shardCount, maxConcurrency);
  const sorted = sortedHosts(hosts);
  const sets = new Map<string, number[]>();
  let next = 0;
  for (const host of sorted) {
    const count = counts.get(host.id) ?? 0;
    sets.set(host.id, range(next, next + count));
    next += count;
  }
  return toShares(sorted, sets);
}

/**
 * Failover after `lostHostIds` died or were cut off: moves only the orphaned shards (those of lost
 * hosts, of hosts of `current` missing from `remaining`, and shards in no host at all, e.g. after
 * the shard count grew). Every other host keeps exactly its shards.
 *
 * - If some standby of `remaining` holds no shards, the first such standby (by id) takes all the
 *   orphans (seed 004: a standby takes over a failed machine).
 * - Otherwise the orphans are spread over the eligible hosts (active ones; standbys when none is
 *   active) by weight: whole blocks, never split, each to the host furthest below its
 *   {@link targetShareCounts} target (ties to the lower id), largest blocks first. The blocks are then
 *   dealt in ascending shard order, hosts in id order, so each receiver gets a contiguous run of
 *   orphans where possible.
 *
 * The result lists every host of `remaining`; lost hosts are absent. A host both lost and
 * remaining, or no remaining host, is an error.
 */
export function failoverPlan(
  current: HostShares,
  lostHostIds: readonly string[],
  remaining: readonly PlanHost[],
  shardCount: number,
  maxConcurrency: number,
): HostShares {
  checkCounts(shardCount, maxConcurrency);
  const sorted = sortedHosts(remaining);
  if (sorted.length === 0) throw invalid('cannot fail over: no host remains to take the shards');
  const lost = new Set(lostHostIds);
  for (const host of sorted)
    if (lost.has(host.id)) throw invalid(`host ${host.id} is listed both as lost and as remaining`);

  const owners = ownersOf(current, shardCount);
  const sets = new Map<string, number[]>(sorted.map((host) => [host.id, [...(current.get(host.id) ?? [])]]));
  const orphans: number[] = [];
  for (let shard = 0; shard < shardCount; shard++) {
    const owner = owners.get(shard);
    if (owner === undefined || !sets.has(owner)) orphans.push(shard);
  }
  if (orphans.length === 0) return toShares(sorted, sets);

  const emptyStandby = sorted.find((host) => host.role === 'standby' && sets.get(host.id)?.length === 0);
  if (emptyStandby !== undefined) {
    sets.set(emptyStandby.id, orphans);
    return toShares(sorted, sets);
  }

  const targets = targetShareCounts(sorted, shardCount, maxConcurrency);
  const receivers = eligibleHosts(sorted);
  const below = new Map(
    receivers.map((host) => [host.id, (targets.get(host.id) ?? 0) - (sets.get(host.id)?.length ?? 0)]),
  );
  const pieceCounts = new Map<string, number>();
  const pieces = toPieces(orphans, maxConcurrency);
  for (const piece of [...pieces].sort(bySizeThenBlock)) {
    let best: string | undefined;
    for (const host of receivers) {
      if (best === undefined || (below.get(host.id) ?? 0) > (below.get(best) ?? 0)) best = host.id;
    }
    if (best === undefined) break; // unreachable: `sorted` is not empty, so neither is `receivers`
    below.set(best, (below.get(best) ?? 0) - piece.shards.length);
    pieceCounts.set(best, (pieceCounts.get(best) ?? 0) + 1);
  }
  let next = 0;
  for (const host of receivers) {
    const take = pieces.slice(next, next + (pieceCounts.get(host.id) ?? 0));
    next += take.length;
    sets.get(host.id)?.push(...take.flatMap((piece) => piece.shards));
  }
  return toShares(sorted, sets);
}

/**
 * Which of a host's shards (ascending) to give away to shed `excess` shards: whole pieces first,
 * largest first and, among equal sizes, the highest block first; if that cannot hit `excess`
 * exactly, the highest shards of the highest piece still kept.
 */
function giveaway(shards: readonly number[], excess: number, maxConcurrency: number): Set<number> {
  const given = new Set<number>();
  let left = excess;
  const pieces = toPieces(shards, maxConcurrency);
  const kept: Piece[] = [];
  for (const piece of [...pieces].sort((a, b) => b.shards.length - a.shards.length || b.block - a.block)) {
    if (piece.shards.length <= left) {
      for (const shard of piece.shards) given.add(shard);
      left -= piece.shards.length;
    } else kept.push(piece);
  }
  if (left > 0) {
    const highest = kept.sort((a, b) => b.block - a.block)[0];
    for (const shard of highest?.shards.slice(-left) ?? []) given.add(shard);
  }
  return given;
}

/**
 * Which host {@link rebalancePlan} charges with the short last block, so that a plan of whole blocks
 * stays one: the current holder of the last shard when it keeps at least one block; otherwise the
 * last host by id that holds fewer shards than its whole blocks, i.e. one that will receive shards
 * anyway and can take the short block as its last one. (Charging a host that must give shards
 * away would make it give a fragment of a block.)
 */
function lastBlockChoice(
  current: HostShares,
  owners: ReadonlyMap<number, string>,
  sorted: readonly PlanHost[],
  shardCount: number,
  maxConcurrency: number,
): TargetOptions {
  if (shardCount % maxConcurrency === 0) return {};
  const base = targetShareCounts(sorted, shardCount, maxConcurrency);
  const blocksOf = (id: string): number => Math.ceil((base.get(id) ?? 0) / maxConcurrency);
  const holder = owners.get(shardCount - 1);
  if (holder !== undefined && base.has(holder) && blocksOf(holder) > 0) return { lastBlockHost: holder };
  const receiver = sorted
    .filter(
      (host) =>
        blocksOf(host.id) > 0 && (current.get(host.id)?.length ?? 0) < blocksOf(host.id) * maxConcurrency,
    )
    .pop();
  return receiver === undefined ? {} : { lastBlockHost: receiver.id };
}

/**
 * Rebalance to the targets with the fewest moved shards. Targets are {@link targetShareCounts}: the
 * same whole blocks per host, with the short last block charged to its current holder when that
 * host keeps a share, else to a host that is below its whole blocks (see `lastBlockChoice`), so the
 * short block moves only when its holder gives up everything. Each host of `hosts` keeps
 * `min(current, target)` of its shards, giving away whole blocks, largest and highest first. The given-away shards, the shards of hosts
 * of `current` missing from `hosts`, and shards in no host are the orphans; they go to hosts below
 * target, whole blocks where possible (best fit: a block goes to the host with the smallest
 * remaining need that still fits it, ties to the lower id; a block that fits nowhere is split,
 * largest need first). Standby hosts' target is 0, so their shards move back to active hosts.
 *
 * Afterwards each host holds exactly its target and the number of moved shards is
 * `sum(max(0, current - target))` over `hosts` plus the orphans from outside `hosts`: the minimum.
 * A plan made of whole blocks stays made of whole blocks.
 */
export function rebalancePlan(
  current: HostShares,
  hosts: readonly PlanHost[],
  shardCount: number,
  maxConcurrency: number,
): HostShares {
  checkCounts(shardCount, maxConcurrency);
  const sorted = sortedHosts(hosts);
  const owners = ownersOf(current, shardCount);
  const ids = new Set(sorted.map((host) => host.id));
  const choice = lastBlockChoice(current, owners, sorted, shardCount, maxConcurrency);
  const targets = targetShareCounts(sorted, shardCount, maxConcurrency, choice);

  const sets = new Map<string, number[]>();
  const orphans: number[] = [];
  for (const host of sorted) {
    const shards = [...(current.get(host.id) ?? [])].sort(ascending);
    const excess = shards.length - (targets.get(host.id) ?? 0);
    if (excess <= 0) {
      sets.set(host.id, shards);
      continue;
    }
    const given = giveaway(shards, excess, maxConcurrency);
    sets.set(
      host.id,
      shards.filter((shard) => !given.has(shard)),
    );
    orphans.push(...given);
  }
  for (let shard = 0; shard < shardCount; shard++) {
    const owner = owners.get(shard);
    if (owner === undefined || !ids.has(owner)) orphans.push(shard);
  }

  const need = new Map(
    sorted.map((host) => [host.id, (targets.get(host.id) ?? 0) - (sets.get(host.id)?.length ?? 0)]),
  );
  for (const piece of toPieces(orphans, maxConcurrency).sort(bySizeThenBlock)) {
    const size = piece.shards.length;
    let fit: string | undefined;
    for (const host of sorted) {
      const n = need.get(host.id) ?? 0;
      if (n >= size && (fit === undefined || n < (need.get(fit) ?? 0))) fit = host.id;
    }
    if (fit !== undefined) {
      sets.get(fit)?.push(...piece.shards);
      need.set(fit, (need.get(fit) ?? 0) - size);
      continue;
    }
    let rest = piece.shards;
    while (rest.length > 0) {
      let most: string | undefined;
      for (const host of sorted) {
        if (most === undefined || (need.get(host.id) ?? 0) > (need.get(most) ?? 0)) most = host.id;
      }
      const n = most === undefined ? 0 : (need.get(most) ?? 0);
      // Unreachable: the needs add up to the orphan count exactly.
      if (most === undefined || n <= 0) throw new Error('rebalancePlan: orphans left over (planner bug)');
      sets.get(most)?.push(...rest.slice(0, n));
      need.set(most, n - Math.min(n, rest.length));
      rest = rest.slice(n);
    }
  }
  return toShares(sorted, sets);
}

/**
 * Shards whose host differs between `before` and `after`. A shard held in only one of them counts
 * too (it was started or stopped); a shard held in neither does not.
 */
export function movedShardCount(before: HostShares, after: HostShares): number {
  const was = ownersOf(before, undefined);
  const now = ownersOf(after, undefined);
  let moved = 0;
  for (const [shard, host] of now) if (was.get(shard) !== host) moved++;
  for (const shard of was.keys()) if (!now.has(shard)) moved++;
  return moved;
}
