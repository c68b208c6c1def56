import type { ShardStatus } from '../cluster/ShardStatus.js';
import type { ActionReply, Pm2Io } from 'discluster-runtime';

/** What the pm2 metrics and the `status` action read. */
export interface Pm2MetricsSource {
  readonly clusterId: number;
  readonly shardIds: readonly number[];
  /** Current per-shard status. */
  status(): readonly ShardStatus[];
  /** The answer of `pm2 trigger <app> status` (JSON; never the token). */
  report(): unknown;
  /** Events dropped or doubled by a reshard handover that outgrew its bounds (0 normally). */
  handoverOverflow(): number;
}

/** pm2 samples every metric each 990 ms; one snapshot serves one sampling round. */
const SNAPSHOT_TTL_MS = 200;
/** A rate is recomputed at most this often, so two reads in one round see the same value. */
const RATE_MIN_INTERVAL_MS = 500;

/**
 * Per-shard and cluster-wide custom metrics, shown by `pm2 show` ("Code metrics value"),
 * `pm2 monit` and `pm2 jlist` (`pm2_env.axm_monitor`), plus the `status` action. Values are
 * numbers where they can be, so exporters that parse `axm_monitor` get numbers. Four metrics per
 * shard and ten shards per cluster keep the per-second IPC message small.
 */
export function registerPm2Metrics(io: Pm2Io, source: Pm2MetricsSource): void {
  const snapshot = cachedSnapshot(source);
  const rates = new RateMeter();
  const shard = (id: number): ShardStatus | undefined => snapshot().find((s) => s.id === id);
  for (const id of source.shardIds) {
    io.metric({ name: `shard ${id} state`, value: () => shard(id)?.state ?? 'idle' });
    io.metric({ name: `shard ${id} ping ms`, value: () => shard(id)?.ping ?? -1 });
    io.metric({ name: `shard ${id} guilds`, value: () => shard(id)?.guilds ?? 0 });
    io.metric({ name: `shard ${id} events/s`, value: () => rates.rate(id, shard(id)?.events ?? 0) });
  }
  const sum = (pick: (s: ShardStatus) => number): number => snapshot().reduce((n, s) => n + pick(s), 0);
  io.metric({ name: 'cluster id', value: () => source.clusterId });
  io.metric({ name: 'shards ready', value: () => snapshot().filter((s) => s.state === 'ready').length });
  io.metric({ name: 'guilds', value: () => sum((s) => s.guilds) });
  io.metric({
    name: 'events/s',
    value: () =>
      rates.rate(
        'total',
        sum((s) => s.events),
      ),
  });
  io.metric({ name: 'ping ms avg', value: () => averagePing(snapshot()) });
  io.metric({ name: 'handover overflow', value: () => source.handoverOverflow() });
  io.action('status', (reply: ActionReply) => reply(source.report()));
}

function cachedSnapshot(source: Pm2MetricsSource): () => readonly ShardStatus[] {
  let cached: readonly ShardStatus[] = [];
  let takenAt = Number.NEGATIVE_INFINITY;
  return () => {
    const now = Date.now();
    if (now - takenAt > SNAPSHOT_TTL_MS) {
      cached = source.status();
      takenAt = now;
    }
    return cached;
  };
}

function averagePing(shards: readonly ShardStatus[]): number {
  const pings = shards.map((s) => s.ping).filter((ping) => ping >= 0);
  return pings.length === 0 ? -1 : Math.round(pings.reduce((a, b) => a + b, 0) / pings.length);
}

/** Events per second from a growing counter, measured between reads. */
export class RateMeter {
  private readonly samples = new Map<number | string, { count: number; at: number; rate: number }>();

  public rate(key: number | string, count: number, now = Date.now()): number {
    const last = this.samples.get(key);
    if (!last) {
      this.samples.set(key, { count, at: now, rate: 0 });
      return 0;
    }
    if (now - last.at < RATE_MIN_INTERVAL_MS) return last.rate;
    // A counter that went down was reset (shard restarted its count): start over from it.
    const delta = Math.max(0, count - last.count);
    const rate = Math.round((delta * 10_000) / (now - last.at)) / 10;
    this.samples.set(key, { count, at: now, rate });
    return rate;
  }
}
