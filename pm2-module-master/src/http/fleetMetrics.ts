import { Counter, Gauge, Registry } from 'prom-client';
import { reportedEvents } from './reportedEvents.js';
import { SHARD_STATES } from 'discluster-protocol';
import { CLUSTER_STATES } from './states.js';
import type { FleetView } from './statusSource.js';

const SHARD_LABELS = ['shard', 'cluster', 'host'] as const;

/** What one scrape shows: whether this MASTER leads, and the fleet if it does. */
export interface MetricsInput {
  readonly bot: string;
  /** Null while this MASTER does not lead: then only `discluster_master_leader 0` is exported. */
  readonly view: FleetView | null;
}

/** A rendered scrape: the Prometheus text exposition format and its content type. */
export interface MetricsText {
  readonly contentType: string;
  readonly body: string;
}

/**
 * `/metrics`: the fleet as Prometheus metrics (prom-client), computed on each scrape from the
 * current status into a Registry of its own (never prom-client's global one), so shards, clusters
 * and hosts that left the plan leave the output with it. Each series is described in the README
 * ("Status page and /metrics"). Names follow Prometheus conventions (`promtool check metrics` finds
 * the output clean, test/prometheus.test.ts): `_total` only on counters, base units as suffixes.
 */
export async function renderMetrics(input: MetricsInput): Promise<MetricsText> {
  const registry = new Registry();
  registry.setDefaultLabels({ bot: input.bot });
  const registers = [registry];
  new Gauge({
    name: 'discluster_master_leader',
    help: '1 if this MASTER leads the fleet, 0 if it stands by (only the leader exports fleet metrics)',
    registers,
  }).set(input.view ? 1 : 0);
  if (input.view) fleetMetrics(input.view, registers);
  return { contentType: registry.contentType, body: await registry.metrics() };
}

function fleetMetrics(view: FleetView, registers: Registry[]): void {
  const { status, plan } = view;
  new Gauge({
    name: 'discluster_fleet_stopped',
    help: '1 while the fleet is stopped (fatal gateway error or `discluster stop`), else 0',
    registers,
  }).set(status.stopped ? 1 : 0);
  const reshard = status.reshard;
  new Gauge({
    name: 'discluster_reshard_target_shards',
    help: 'Shard count of the reshard in progress, 0 when none runs',
    registers,
  }).set(reshard?.to ?? 0);
  new Gauge({
    name: 'discluster_reshard_ready_shards',
    help: 'New-generation shards READY with all their guilds during a reshard (0 when none runs)',
    registers,
  }).set(reshard?.ready ?? 0);
  const resplit = status.resplit;
  new Gauge({
    name: 'discluster_resplit_target_shards_per_cluster',
    help: 'Shards per cluster the re-split in progress moves to, 0 when none runs',
    registers,
  }).set(resplit?.shardsPerCluster ?? 0);
  new Gauge({
    name: 'discluster_resplit_clusters_left',
    help: 'Clusters a re-split in progress has still to start or see ready (0 when none runs)',
    registers,
  }).set(resplit ? resplit.clustersTotal - resplit.clustersDone : 0);
  if (plan) {
    const limit = plan.gateway.session_start_limit;
    const planGauges: [string, string, number][] = [
      ['discluster_plan_epoch', 'Epoch of the running plan (raised by every plan change)', plan.epoch],
      ['discluster_plan_shards', 'Shards in the running plan', plan.shardCount],
      ['discluster_max_concurrency', 'max_concurrency of the bot (GET /gateway/bot)', limit.max_concurrency],
      [
        'discluster_session_start_remaining',
        "session_start_limit.remaining as of MASTER's last GET /gateway/bot (first plan or `discluster restart`), not live",
        limit.remaining,
      ],
      [
        'discluster_session_start_limit',
        "session_start_limit.total (session starts allowed per reset window) as of MASTER's last GET /gateway/bot",
        limit.total,
      ],
    ];
    for (const [name, help, value] of planGauges) new Gauge({ name, help, registers }).set(value);
  }

  const hosts = new Gauge({
    name: 'discluster_hosts',
    help: 'Hosts (CONTROLs) by state (online: heartbeating; lost: silent for host_timeout_ms) and role',
    labelNames: ['state', 'role'],
    registers,
  });
  for (const state of ['online', 'lost'] as const)
    for (const role of ['active', 'standby'] as const)
      hosts.set(
        { state, role },
        status.hosts.filter((host) => host.state === state && host.role === role).length,
      );
  const cores = new Gauge({
    name: 'discluster_host_cores',
    help: 'Cores a host announced (its planning weight is cores / max(load15, 1))',
    labelNames: ['host'],
    registers,
  });
  const load = new Gauge({
    name: 'discluster_host_load15',
    help: '15-minute load average a host last reported',
    labelNames: ['host'],
    registers,
  });
  const drained = new Gauge({
    name: 'discluster_host_drained',
    help: '1 while `discluster drain` holds a host empty, else 0',
    labelNames: ['host'],
    registers,
  });
  for (const host of status.hosts) {
    cores.set({ host: host.id }, host.cores);
    load.set({ host: host.id }, host.load15);
    drained.set({ host: host.id }, host.drained ? 1 : 0);
  }

  const clusters = status.hosts.flatMap((host) => host.clusters.map((cluster) => ({ host, cluster })));
  countByState(
    {
      name: 'discluster_clusters',
      help: 'Clusters by state (missing: planned, but its host does not report it)',
    },
    registers,
    CLUSTER_STATES,
    clusters.map(({ cluster }) => cluster.state),
  );
  const failed = new Gauge({
    name: 'discluster_failed_clusters',
    help: 'Clusters that gave up, by what MASTER did (failed_cluster_action): moved to another host, or held down until `discluster rebalance`',
    labelNames: ['action'],
    registers,
  });
  for (const action of ['moved', 'held'] as const)
    failed.set({ action }, clusters.filter(({ cluster }) => cluster.failure?.action === action).length);
  const restarts = new Counter({
    name: 'discluster_cluster_restarts_total',
    help: 'Restarts of a cluster (crashes and failed starts) since its host got its assignment',
    labelNames: ['cluster', 'host'],
    registers,
  });
  for (const { host, cluster } of clusters)
    restarts.inc({ cluster: String(cluster.id), host: host.id }, cluster.restarts);

  shardMetrics(view, registers);
}

/** A `state`-labelled gauge: for each of `stateNames`, how many of `states` are that state (0 included). */
function countByState(
  metric: { readonly name: string; readonly help: string },
  registers: Registry[],
  stateNames: readonly string[],
  states: readonly string[],
): void {
  const gauge = new Gauge({ ...metric, labelNames: ['state'], registers });
  for (const state of stateNames) gauge.set({ state }, states.filter((each) => each === state).length);
}

function shardMetrics(view: FleetView, registers: Registry[]): void {
  const shards = view.status.hosts.flatMap((host) =>
    host.clusters.flatMap((cluster) => cluster.shards.map((shard) => ({ host, cluster, shard }))),
  );
  countByState(
    { name: 'discluster_shards', help: 'Shards by state' },
    registers,
    SHARD_STATES,
    shards.map(({ shard }) => shard.state),
  );
  const state = new Gauge({
    name: 'discluster_shard_state',
    help: `State of a shard, one-hot: 1 for its current state, 0 for the others (${SHARD_STATES.join(', ')})`,
    labelNames: [...SHARD_LABELS, 'state'],
    registers,
  });
  const latency = new Gauge({
    name: 'discluster_shard_latency_seconds',
    help: 'Last gateway heartbeat round trip of a shard in seconds (absent before its first heartbeat ACK)',
    labelNames: SHARD_LABELS,
    registers,
  });
  const guilds = new Gauge({
    name: 'discluster_shard_guilds',
    help: 'Guilds a shard serves',
    labelNames: SHARD_LABELS,
    registers,
  });
  const events = new Counter({
    name: 'discluster_shard_events_total',
    help: 'Gateway dispatch events a shard received since its cluster process started (absent until reported)',
    labelNames: SHARD_LABELS,
    registers,
  });
  const eventsOf = reportedEvents(view);
  for (const { host, cluster, shard } of shards) {
    const labels = { shard: String(shard.id), cluster: String(cluster.id), host: host.id };
    for (const each of SHARD_STATES) state.set({ ...labels, state: each }, each === shard.state ? 1 : 0);
    // Reported in milliseconds; exported in the base unit, seconds.
    if (shard.ping >= 0) latency.set(labels, shard.ping / 1000);
    guilds.set(labels, shard.guilds);
    const count = eventsOf(host.id, cluster.id, shard.id);
    if (count !== undefined) events.inc(labels, count);
  }
}
