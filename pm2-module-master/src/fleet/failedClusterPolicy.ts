import type { ClusterFailureRecord, PlanRecord } from 'discluster-protocol';
import { hostWeight } from '../plan/index.js';
import type { PlacementHost } from '../plan/placement.js';

/**
 * What MASTER does with a cluster that gave up (`failed_cluster_action`, issue 17 §1), as pure
 * functions: whether its shards move and where, or are held, and the plan that results. The term's
 * side (events, heartbeats, saving, alerts) is {@link FailedClusters}.
 *
 * - `move` (default): the cluster, whole and under its id, is planned onto the least loaded other
 *   host (fewest shards per unit of {@link hostWeight}; active hosts, standbys only when no active
 *   one is left; never a host it already gave up on). Its old host drops it and the new one takes
 *   its leases, which the old CONTROL released when it gave up, and RESUMEs its sessions.
 * - A cluster that gives up again after a move, `hold`, no other host online, or a reshard in
 *   progress: the shards stay where they are, down, until an operator clears the failure.
 */

export type FailedClusterAction = 'move' | 'hold';

/** One give-up, from a `cluster.failed` event or a heartbeat that reports the cluster failed. */
export interface GiveUp {
  readonly hostId: string;
  readonly clusterId: number;
  readonly attempts: number;
  readonly reason: string;
  /** When MASTER learnt of it (ms since the epoch). */
  readonly at: number;
}

type PlanHosts = PlanRecord['hosts'];

/** What to do about a give-up. */
export type FailureDecision =
  | { readonly kind: 'ignore'; readonly why: string }
  | { readonly kind: 'move'; readonly to: string; readonly record: ClusterFailureRecord }
  | { readonly kind: 'hold'; readonly record: ClusterFailureRecord };

function byId(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The standing failure record of a cluster, if any. */
export function failureOf(plan: PlanRecord, clusterId: number): ClusterFailureRecord | undefined {
  return plan.failures?.find((record) => record.clusterId === clusterId);
}

/** Shards each host holds in `plan` (hosts of the plan only). */
function shardsHeld(plan: PlanRecord, hostId: string): number {
  return (plan.hosts[hostId] ?? []).reduce((total, cluster) => total + cluster.shardIds.length, 0);
}

/**
 * Where a failed cluster's shards go: among `online` hosts that are not in `exclude`, the active
 * ones (standbys if no active one is left), the one with the fewest shards per unit of weight;
 * ties to the lower id. Null when there is none.
 */
export function moveTarget(
  plan: PlanRecord,
  online: readonly PlacementHost[],
  exclude: ReadonlySet<string>,
): string | null {
  // A drained host holds nothing until undrained; a pinned host serves exactly its pins.
  const drained = new Set(plan.drained ?? []);
  const candidates = online.filter(
    (host) => !exclude.has(host.id) && !drained.has(host.id) && !(host.pins?.length ?? 0),
  );
  const active = candidates.filter((host) => host.role === 'active');
  const pool = active.length > 0 ? active : candidates;
  let best: { id: string; load: number } | null = null;
  for (const host of [...pool].sort((a, b) => byId(a.id, b.id))) {
    const load = shardsHeld(plan, host.id) / hostWeight(host);
    if (best === null || load < best.load) best = { id: host.id, load };
  }
  return best?.id ?? null;
}

/**
 * Decides what a give-up leads to. Ignored: no plan backs it (the fleet is stopped, the cluster is
 * not planned on that host, or belongs to a reshard's new generation), or it is already held
 * there (a repeat: the event and a heartbeat, or a CONTROL that restarted and gave up again).
 */
export function decideOnGiveUp(
  plan: PlanRecord,
  giveUp: GiveUp,
  online: readonly PlacementHost[],
  action: FailedClusterAction,
): FailureDecision {
  if (plan.stopped) return { kind: 'ignore', why: 'the fleet is stopped' };
  const cluster = (plan.hosts[giveUp.hostId] ?? []).find((each) => each.clusterId === giveUp.clusterId);
  if (!cluster)
    return {
      kind: 'ignore',
      why: plan.reshard
        ? `cluster ${giveUp.clusterId} is not in the running plan on host ${giveUp.hostId} (a reshard's new generation is rolled back or retried by the reshard)`
        : `cluster ${giveUp.clusterId} is no longer planned on host ${giveUp.hostId}`,
    };
  const previous = failureOf(plan, giveUp.clusterId);
  if (previous?.action === 'held' && previous.hostId === giveUp.hostId)
    return { kind: 'ignore', why: `cluster ${giveUp.clusterId} is already held on host ${giveUp.hostId}` };
  const failedOn = [...(previous?.failedOn ?? []), giveUp.hostId];
  const base = {
    clusterId: giveUp.clusterId,
    shardIds: [...cluster.shardIds],
    hostId: giveUp.hostId,
    failedOn,
    attempts: giveUp.attempts,
    reason: giveUp.reason.slice(0, 1024),
    at: giveUp.at,
  };
  const hold = (why: string): FailureDecision => ({
    kind: 'hold',
    record: { ...base, action: 'held', movedTo: null, why },
  });
  if (action === 'hold')
    return hold('failed_cluster_action is hold: its shards stay down until an operator acts');
  if (previous)
    return hold(`it gave up on ${failedOn.join(', then on ')}: its shards are held rather than moved again`);
  if (plan.reshard) return hold('a reshard is in progress: no shard moves until it ends');
  const to = moveTarget(plan, online, new Set(failedOn));
  if (to === null) return hold('no other host is online to take its shards');
  return {
    kind: 'move',
    to,
    record: { ...base, action: 'moved', movedTo: to, why: `moved to ${to}, the least loaded other host` },
  };
}

/** Failure records whose cluster the plan still runs (the others are history: resharded, split, …). */
function standing(plan: PlanRecord, records: readonly ClusterFailureRecord[]): ClusterFailureRecord[] {
  const planned = new Set(Object.values(plan.hosts).flatMap((clusters) => clusters.map((c) => c.clusterId)));
  return records.filter((record) => planned.has(record.clusterId));
}

/** `records` with `record` in place of any earlier record of its cluster. */
function withRecord(
  records: readonly ClusterFailureRecord[] | undefined,
  record: ClusterFailureRecord,
): ClusterFailureRecord[] {
  return [...(records ?? []).filter((each) => each.clusterId !== record.clusterId), record].sort(
    (a, b) => a.clusterId - b.clusterId,
  );
}

/**
 * The plan after `decision` (not `ignore`): a move takes the cluster, with its id and shards, from
 * its host to the target under the next epoch (the hosts must be told); a hold only records the
 * failure (same epoch: nothing runs differently).
 */
export function planAfterGiveUp(
  plan: PlanRecord,
  decision: Exclude<FailureDecision, { kind: 'ignore' }>,
  now: number,
): PlanRecord {
  const { record } = decision;
  if (decision.kind === 'hold') {
    return { ...plan, failures: standing(plan, withRecord(plan.failures, record)), updatedAt: now };
  }
  const from = record.hostId;
  const moving = (plan.hosts[from] ?? []).find((cluster) => cluster.clusterId === record.clusterId);
  if (!moving) throw new Error(`planAfterGiveUp: cluster ${record.clusterId} is not on host ${from}`);
  const hosts: Record<string, PlanHosts[string]> = {};
  for (const [hostId, clusters] of Object.entries(plan.hosts))
    hosts[hostId] = clusters.filter((cluster) => cluster.clusterId !== record.clusterId);
  hosts[decision.to] = [...(hosts[decision.to] ?? []), moving].sort((a, b) => a.clusterId - b.clusterId);
  const next: PlanRecord = { ...plan, epoch: plan.epoch + 1, hosts, updatedAt: now };
  return { ...next, failures: standing(next, withRecord(plan.failures, record)) };
}

/**
 * The plan with every failure cleared (`discluster rebalance`): held clusters get new ids, so the
 * CONTROLs that gave up on them start them afresh (a CONTROL never restarts a cluster it gave up
 * on under the same id). Null when no failure stands.
 */
export function planWithFailuresCleared(plan: PlanRecord, now: number): PlanRecord | null {
  const records = standing(plan, plan.failures ?? []);
  if (records.length === 0 && (plan.failures ?? []).length === 0) return null;
  const held = new Set(records.filter((record) => record.action === 'held').map((r) => r.clusterId));
  let next = plan.nextClusterId;
  const hosts: Record<string, PlanHosts[string]> = {};
  for (const [hostId, clusters] of Object.entries(plan.hosts))
    hosts[hostId] = clusters
      .map((cluster) =>
        held.has(cluster.clusterId) ? { clusterId: next++, shardIds: [...cluster.shardIds] } : cluster,
      )
      .sort((a, b) => a.clusterId - b.clusterId);
  return { ...plan, hosts, nextClusterId: next, failures: [], updatedAt: now };
}
