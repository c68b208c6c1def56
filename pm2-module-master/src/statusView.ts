import {
  formatShardRanges,
  type ClusterReport,
  type FleetStatus,
  type HostHeartbeat,
  type PlanRecord,
} from 'discluster-protocol';
import { duplicateMessage } from './hosts/duplicateMessage.js';

/** A host as a status sees it: its latest facts (if any arrived) and whether it is heartbeating. */
export interface HostSighting {
  readonly facts: Omit<HostHeartbeat, 'type'>;
  readonly online: boolean;
}

export interface StatusInput {
  readonly bot: string;
  readonly plan: PlanRecord | null;
  readonly hosts: readonly HostSighting[];
  readonly masterUp: boolean;
  readonly source: FleetStatus['source'];
  /** A stop MASTER knows of without a plan record (e.g. the token was rejected before the first plan). */
  readonly stopped?: FleetStatus['stopped'];
  /** A reshard in progress (MASTER only). */
  readonly reshard?: FleetStatus['reshard'];
  /** A re-split in progress (MASTER only). */
  readonly resplit?: FleetStatus['resplit'];
  /** hostId → instances of another CONTROL with that host id that MASTER refused (issue 13 f). */
  readonly refused?: ReadonlyMap<string, readonly string[]>;
  /** Why MASTER refuses to place shards (pins), if it does (MASTER only). */
  readonly placementProblem?: string | null;
}

type HostConflict = FleetStatus['hosts'][number]['conflict'];

/**
 * Refused instances of `hostId`: MASTER's, or (status from the CONTROLs) every instance that
 * answered for it besides the one shown.
 */
function hostConflict(input: StatusInput, hostId: string, shown: HostSighting | undefined): HostConflict {
  const others = input.hosts
    .filter((host) => host.facts.hostId === hostId && host !== shown)
    .map((host) => host.facts.instanceId);
  const refused = [...new Set([...(input.refused?.get(hostId) ?? []), ...others])];
  return refused.length > 0 ? { refusedInstanceIds: refused, message: duplicateMessage(hostId) } : null;
}

type ClusterEntry = FleetStatus['hosts'][number]['clusters'][number];

/** A planned cluster's standing failure record, as `discluster status` shows it; null if none. */
function failureEntry(plan: PlanRecord | null, clusterId: number): ClusterEntry['failure'] {
  const record = plan?.failures?.find((each) => each.clusterId === clusterId);
  if (!record) return null;
  return {
    host: record.hostId,
    hosts: [...record.failedOn],
    attempts: record.attempts,
    reason: record.reason,
    action: record.action,
    movedTo: record.movedTo,
    why: record.why,
    at: record.at,
  };
}

function clusterEntry(
  clusterId: number,
  shardIds: readonly number[],
  report: ClusterReport | undefined,
  hostOnline: boolean,
  failure: ClusterEntry['failure'] = null,
): ClusterEntry {
  // A lost host's last report says nothing about now: its shards are shown disconnected.
  const known = hostOnline ? report : undefined;
  return {
    id: clusterId,
    state: known?.state ?? 'missing',
    restarts: report?.restarts ?? 0,
    shards: shardIds.map((id) => {
      const shard = known?.shards?.find((entry) => entry.id === id);
      if (shard) return { id, state: shard.state, ping: shard.ping, guilds: shard.guilds };
      return { id, state: hostOnline ? ('idle' as const) : ('disconnected' as const), ping: -1, guilds: 0 };
    }),
    failure,
  };
}

/**
 * `discluster status` (the CLI contract, docs/architecture.md) from the plan and what the hosts report. Planned clusters
 * are listed with the host's own report of them (`missing` if it has none); a host outside the
 * plan shows what it still runs.
 */
export function buildFleetStatus(input: StatusInput): FleetStatus {
  const { plan } = input;
  const sightings = new Map(input.hosts.map((host) => [host.facts.hostId, host]));
  const hostIds = new Set([...Object.keys(plan?.hosts ?? {}), ...sightings.keys()]);
  const drained = new Set(plan?.drained ?? []);
  const hosts = [...hostIds].sort().map((hostId) => {
    const sighting = sightings.get(hostId);
    const reports = new Map((sighting?.facts.clusters ?? []).map((report) => [report.clusterId, report]));
    const planned = plan?.hosts[hostId];
    const online = sighting?.online ?? false;
    const clusters = planned
      ? planned.map((cluster) =>
          clusterEntry(
            cluster.clusterId,
            cluster.shardIds,
            reports.get(cluster.clusterId),
            online,
            failureEntry(plan, cluster.clusterId),
          ),
        )
      : // Outside the plan: what it still runs, if it is online (a lost host's last report is history).
        [...reports.values()]
          .filter(() => online)
          .map((report) => clusterEntry(report.clusterId, report.shardIds, report, online));
    return {
      id: hostId,
      role: sighting?.facts.role ?? ('active' as const),
      state: online ? ('online' as const) : ('lost' as const),
      cores: sighting?.facts.cores ?? 1,
      load15: sighting?.facts.load15 ?? 0,
      epoch: sighting?.facts.epoch ?? null,
      clusters: clusters.sort((a, b) => a.id - b.id),
      conflict: hostConflict(input, hostId, sighting),
      drained: drained.has(hostId),
      weight: sighting?.facts.weight ?? 1,
      pinShards: sighting?.facts.pinShards ? formatShardRanges(sighting.facts.pinShards) : null,
    };
  });
  return {
    bot: input.bot,
    shardCount: plan?.shardCount ?? null,
    maxConcurrency: plan?.gateway.session_start_limit.max_concurrency ?? null,
    master: { up: input.masterUp },
    source: input.source,
    epoch: plan?.epoch ?? null,
    stopped: plan?.stopped ?? input.stopped ?? null,
    hosts,
    reshard: input.reshard ?? null,
    shardsPerCluster: plan?.clusterSize ?? null,
    resplit: input.resplit ?? null,
    placementProblem: input.placementProblem ?? null,
  };
}
