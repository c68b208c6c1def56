// The soak's verdict, from its raw samples (bench/soak/soak.mjs): every process of the fleet is a
// series keyed by role and name (not pid: a cluster process replaced by a fault continues its
// cluster's series), and each series' RSS and open file descriptors in the first fifth of the
// measured window (after the warm-up) are compared with the last fifth; a least-squares slope per
// hour is shown beside them. Shared by the soak section (its log) and bench/soak/report.mjs.

import { median, round } from '../lib/figures.mjs';

/** What "growth bounded" means, per series. */
export const LIMITS = {
  /** Share of the measured window (after warm-up) compared at its start and at its end. */
  fifth: 0.2,
  /** RSS: last-fifth median ≤ this × the first-fifth median … */
  rssRatio: 1.2,
  /** … or at most this many MiB above it. */
  rssMiB: 20,
  /**
   * Open fds: the floor (lowest count) over the last fifth ≤ the floor over the first fifth +
   * max(fdAbs, fdRatio × that floor). Floors, not medians: fds held for a while after a fault (pm2's
   * daemon keeps a /proc/<pid>/stat fd of each exited cluster process for up to ~90 s, pidusage's
   * history) come and go; a leak raises the floor.
   */
  fdAbs: 4,
  fdRatio: 0.1,
};

/**
 * Roles the verdict covers: Discluster's processes and what it runs on (pm2 daemons, nats-server).
 * discord-sim plays Discord and the bench process is the harness: shown, not judged.
 */
export const JUDGED_ROLES = ['master', 'control', 'pm2', 'cluster', 'nats', 'total'];

const ROLE_ORDER = ['master', 'control', 'pm2', 'cluster', 'total', 'nats', 'nats-node', 'sim', 'bench'];

/** Least-squares slope of y over x; null with fewer than 3 points or no spread in x. */
export function slope(xs, ys) {
  const n = xs.length;
  if (n < 3) return null;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  return sxx > 0 ? sxy / sxx : null;
}

/**
 * Series from the samples: key → { key, role, label, points: [{ t, pid, rssMiB, fds, threads }] }.
 * Two sum series are added: every cluster process, and the whole Discluster fleet (MASTER, CONTROLs,
 * pm2 daemons and clusters, nats-server and discord-sim excluded). On a NATS cluster (`nats:<i>` keys)
 * each node is shown, not judged: a killed node comes back small, and clients move between nodes at
 * every kill, so one node's fds say nothing; the nodes' sum, over samples with every node up, is judged.
 */
export function buildSeries(samples) {
  const series = new Map();
  const natsNodesIn = (sample) => sample.procs.filter((p) => p.k.startsWith('nats:')).length;
  const natsNodes = Math.max(0, ...samples.map(natsNodesIn));
  const add = (key, role, label, point) => {
    let s = series.get(key);
    if (!s) series.set(key, (s = { key, role, label, points: [] }));
    s.points.push(point);
  };
  for (const sample of samples) {
    const seen = new Set();
    const sums = {
      clusters: { rssMiB: 0, fds: 0, threads: 0, processes: 0 },
      fleet: { rssMiB: 0, fds: 0, threads: 0, processes: 0 },
      nats: { rssMiB: 0, fds: 0, threads: 0, processes: 0 },
    };
    for (const p of sample.procs) {
      // Two processes under one key in a sample (an old cluster process still exiting): the first.
      if (seen.has(p.k)) continue;
      seen.add(p.k);
      const point = { t: sample.t, pid: p.pid, rssMiB: p.rss / 1024, fds: p.fd, threads: p.thr };
      const node = p.k.startsWith('nats:');
      add(p.k, node ? 'nats-node' : p.r, labelOf(p), point);
      const into = [];
      if (node) into.push(sums.nats);
      if (p.r === 'cluster') into.push(sums.clusters);
      if (['master', 'control', 'pm2', 'cluster'].includes(p.r)) into.push(sums.fleet);
      for (const sum of into) {
        sum.rssMiB += point.rssMiB;
        sum.fds += point.fds;
        sum.threads += point.threads;
        sum.processes++;
      }
    }
    add('total:clusters', 'total', 'every cluster process', { t: sample.t, ...sums.clusters });
    add('total:fleet', 'total', 'MASTER + CONTROLs + pm2 daemons + clusters', { t: sample.t, ...sums.fleet });
    if (natsNodes > 0 && natsNodesIn(sample) === natsNodes)
      add('total:nats', 'nats', `nats-server, all ${natsNodes} nodes`, { t: sample.t, ...sums.nats });
  }
  return series;
}

function labelOf(p) {
  switch (p.r) {
    case 'master':
      return 'MASTER';
    case 'control':
      return `CONTROL ${p.h}`;
    case 'pm2':
      return `pm2 daemon ${p.h}`;
    case 'cluster':
      return `cluster ${p.k.split(':')[1]}`;
    case 'nats':
      return p.k.startsWith('nats:') ? `nats-server node ${p.k.split(':')[1]}` : 'nats-server';
    case 'sim':
      return 'discord-sim';
    default:
      return p.k;
  }
}

function window(points, from, to) {
  return points.filter((p) => p.t >= from && p.t <= to);
}

/** Growth of one series over the measured window [fromS, toS] (seconds since the soak began). */
export function judge(series, fromS, toS) {
  const points = window(series.points, fromS, toS);
  const span = toS - fromS;
  const first = window(points, fromS, fromS + LIMITS.fifth * span);
  const last = window(points, toS - LIMITS.fifth * span, toS);
  const figures = (field) => {
    const values = points.map((p) => p[field]);
    const firstMedian = median(first.map((p) => p[field]));
    const lastMedian = median(last.map((p) => p[field]));
    const firstMin = Math.min(...first.map((p) => p[field]));
    const lastMin = Math.min(...last.map((p) => p[field]));
    const perHour = slope(
      points.map((p) => p.t / 3600),
      values,
    );
    return {
      start: round(values[0], 1),
      end: round(values.at(-1), 1),
      min: round(Math.min(...values), 1),
      max: round(Math.max(...values), 1),
      firstMedian: round(firstMedian, 1),
      lastMedian: round(lastMedian, 1),
      firstMin: round(firstMin, 1),
      lastMin: round(lastMin, 1),
      growth: round(lastMedian - firstMedian, 1),
      ratio: firstMedian > 0 ? round(lastMedian / firstMedian, 3) : null,
      slopePerHour: round(perHour, 1),
    };
  };
  if (points.length < 3 || first.length === 0 || last.length === 0)
    return { key: series.key, role: series.role, label: series.label, samples: points.length, ok: null };
  const rss = figures('rssMiB');
  const fds = figures('fds');
  const threads = figures('threads');
  const rssOk =
    rss.lastMedian <= LIMITS.rssRatio * rss.firstMedian || rss.lastMedian - rss.firstMedian <= LIMITS.rssMiB;
  const fdOk = fds.lastMin <= fds.firstMin + Math.max(LIMITS.fdAbs, LIMITS.fdRatio * fds.firstMin);
  const pids = new Set(series.points.map((p) => p.pid).filter((pid) => pid !== undefined));
  const judged = JUDGED_ROLES.includes(series.role);
  return {
    key: series.key,
    role: series.role,
    label: series.label,
    judged,
    samples: points.length,
    processes: pids.size || null,
    rssMiB: rss,
    fds,
    threads,
    rssOk,
    fdOk,
    ok: rssOk && fdOk,
  };
}

/**
 * The verdict of a soak record: per series the figures and ok, and the list of judged series that
 * failed. `record.soak.warmupS` starts the measured window; it ends at the last sample.
 */
export function analyze(record) {
  const samples = record.samples ?? [];
  if (samples.length === 0) return { ok: false, reason: 'no samples', series: [], failed: [] };
  const fromS = record.soak?.warmupS ?? 0;
  const toS = samples.at(-1).t;
  const all = buildSeries(samples);
  const series = [...all.values()]
    .map((s) => judge(s, fromS, toS))
    .sort(
      (a, b) =>
        ROLE_ORDER.indexOf(a.role) - ROLE_ORDER.indexOf(b.role) ||
        a.key.localeCompare(b.key, 'en', { numeric: true }),
    );
  const failed = series.filter((s) => s.judged && s.ok === false);
  const unjudgeable = series.filter((s) => s.judged && s.ok === null);
  return {
    limits: LIMITS,
    window: { fromS, toS, minutes: round((toS - fromS) / 60, 1) },
    ok: failed.length === 0 && toS - fromS > 0,
    failed: failed.map((s) => ({
      key: s.key,
      label: s.label,
      why: [
        !s.rssOk &&
          `RSS ${s.rssMiB.firstMedian} → ${s.rssMiB.lastMedian} MiB (${s.rssMiB.ratio}×, +${s.rssMiB.growth} MiB)`,
        !s.fdOk && `fd floor ${s.fds.firstMin} → ${s.fds.lastMin}`,
      ]
        .filter(Boolean)
        .join('; '),
    })),
    unjudgeable: unjudgeable.map((s) => s.key),
    series,
  };
}
