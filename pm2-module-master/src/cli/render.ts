import type { FleetStatus, WhichResult } from 'discluster-protocol';

/** A plain text table: a header row, a rule, then rows; columns padded to their widest cell. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}

function shardSummary(shards: FleetStatus['hosts'][number]['clusters'][number]['shards']): string {
  const counts = new Map<string, number>();
  for (const shard of shards) counts.set(shard.state, (counts.get(shard.state) ?? 0) + 1);
  return [...counts].map(([state, count]) => `${count} ${state}`).join(', ') || '-';
}

/** `discluster status` as tables: one row per host, then one per cluster. */
export function renderStatus(status: FleetStatus): string {
  const out: string[] = [];
  const masterLine = status.master.up
    ? 'MASTER: up'
    : 'MASTER: DOWN — the fleet keeps serving; this status comes from the CONTROLs and the stored plan';
  out.push(
    `bot ${status.bot} · ${status.shardCount ?? '?'} shards · max_concurrency ${status.maxConcurrency ?? '?'} · epoch ${status.epoch ?? '-'} · ${masterLine}`,
  );
  if (status.stopped)
    out.push(`FLEET STOPPED: ${status.stopped.reason}\n  (fix the cause, then \`discluster restart\`)`);
  if (status.reshard) out.push(renderReshard(status.reshard));
  if (status.resplit) out.push(renderResplit(status.resplit));
  else if (status.shardsPerCluster)
    out.push(`shards per cluster: ${status.shardsPerCluster} (set by \`discluster resplit\`)`);
  if (status.placementProblem)
    out.push(
      `PLACEMENT REFUSED: ${status.placementProblem}\n  (the running plan stays as it is until the pins are fixed)`,
    );
  out.push('');
  const allShards = status.hosts.flatMap((host) => host.clusters.flatMap((cluster) => cluster.shards));
  out.push(
    table(
      ['HOST', 'ROLE', 'STATE', 'CORES', 'LOAD15', 'CLUSTERS', 'SHARDS READY', 'GUILDS'],
      status.hosts.map((host) => {
        const shards = host.clusters.flatMap((cluster) => cluster.shards);
        return [
          host.id,
          host.role,
          host.drained ? `${host.state}, drained` : host.state,
          String(host.cores),
          host.load15.toFixed(2),
          String(host.clusters.length),
          `${shards.filter((shard) => shard.state === 'ready').length}/${shards.length}`,
          String(shards.reduce((sum, shard) => sum + shard.guilds, 0)),
        ];
      }),
    ),
  );
  const placed = status.hosts.filter((host) => host.pinShards || (host.weight ?? 1) !== 1);
  if (placed.length > 0)
    out.push(
      placed
        .map(
          (host) =>
            `${host.id}: ${host.pinShards ? `pinned to shards ${host.pinShards}` : `weight ${host.weight ?? 1}`}${host.pinShards && (host.weight ?? 1) !== 1 ? ` (weight ${host.weight ?? 1} unused: pinned)` : ''}`,
        )
        .join('\n'),
    );
  for (const host of status.hosts)
    if (host.conflict)
      out.push(
        `DUPLICATE host_id ${host.id}: ${host.conflict.message} (refused instance ${host.conflict.refusedInstanceIds.join(', ')})`,
      );
  const clusters = status.hosts.flatMap((host) =>
    host.clusters.map((cluster) => ({ host: host.id, cluster })),
  );
  if (clusters.length > 0) {
    out.push('');
    out.push(
      table(
        ['CLUSTER', 'HOST', 'STATE', 'RESTARTS', 'SHARDS', 'STATES', 'PING ms'],
        clusters
          .sort((a, b) => a.cluster.id - b.cluster.id)
          .map(({ host, cluster }) => {
            const pings = cluster.shards.map((shard) => shard.ping).filter((ping) => ping >= 0);
            const ids = cluster.shards.map((shard) => shard.id);
            return [
              String(cluster.id),
              host,
              cluster.state,
              String(cluster.restarts),
              ids.length > 1 ? `${Math.min(...ids)}-${Math.max(...ids)}` : ids.join(''),
              shardSummary(cluster.shards),
              pings.length ? String(Math.round(pings.reduce((a, b) => a + b, 0) / pings.length)) : '-',
            ];
          }),
      ),
    );
  }
  const failures = clusters.filter(({ cluster }) => cluster.failure);
  if (failures.length > 0) {
    out.push('');
    for (const { host, cluster } of failures) out.push(renderFailure(cluster.id, host, cluster.failure!));
  }
  out.push('');
  out.push(
    `${allShards.filter((shard) => shard.state === 'ready').length} of ${allShards.length} shards ready on ${status.hosts.filter((host) => host.state === 'online').length} online host(s)`,
  );
  return out.join('\n');
}

export function renderWhich(result: WhichResult): string {
  return result.clusterId === null
    ? `guild ${result.guildId} → shard ${result.shardId} of ${result.shardCount}: not assigned to any cluster`
    : `guild ${result.guildId} → shard ${result.shardId} of ${result.shardCount} → cluster ${result.clusterId} on host ${result.hostId}`;
}

/** One line of reshard progress (`discluster status`, `discluster reshard --wait`). */
export function renderReshard(progress: NonNullable<FleetStatus['reshard']>): string {
  const eta = progress.etaMs === null ? '?' : `${Math.ceil(progress.etaMs / 1000)} s`;
  const phase = progress.phase === 'switching' ? 'handing over' : `ETA ${eta} at Discord's identify limit`;
  return `RESHARDING ${progress.from} → ${progress.to} shards: ${progress.ready}/${progress.total} new shards ready · ${phase} · ${progress.reason}`;
}

/** One line of re-split progress (`discluster status`, `discluster resplit --wait`). */
export function renderResplit(progress: NonNullable<FleetStatus['resplit']>): string {
  const waiting =
    progress.waitingFor.length > 0
      ? ` · waiting for cluster(s) ${progress.waitingFor.join(', ')} to resume`
      : '';
  return `RESPLITTING to ${progress.shardsPerCluster} shards per cluster: ${progress.clustersDone}/${progress.clustersTotal} clusters done, step ${progress.steps}${waiting} · ${progress.reason}`;
}

type ClusterFailure = NonNullable<FleetStatus['hosts'][number]['clusters'][number]['failure']>;

/** One line per cluster that gave up: where, why, and whether MASTER moved or holds its shards. */
export function renderFailure(clusterId: number, host: string, failure: ClusterFailure): string {
  const gaveUp = `gave up on ${failure.hosts.join(', then on ')} (${failure.attempts} failed starts: ${failure.reason})`;
  return failure.action === 'moved'
    ? `CLUSTER ${clusterId} MOVED to ${failure.movedTo ?? host}: it ${gaveUp}`
    : `CLUSTER ${clusterId} HELD on ${host}, its shards down: it ${gaveUp}; ${failure.why}\n  (fix the cause, then \`discluster rebalance\` plans it again)`;
}
