// bench/results/soak.md from the soak's result (bench/soak/run.mjs): the verdict, RSS and open file
// descriptors per process, the same over time, every fault with its recovery, and what the fleet
// logged. Needs nothing but the JSON, so `node bench/soak/run.mjs --render` re-renders it.
import { fmt, table } from '../lib/figures.mjs';
import { buildSeries, LIMITS } from './analyze.mjs';

const signed = (value, digits = 1) =>
  value === null || value === undefined ? '–' : `${value > 0 ? '+' : ''}${fmt(value, digits)}`;
const clock = (s) =>
  `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(Math.round(s % 60)).padStart(2, '0')}`;
const sec = (ms) => (typeof ms === 'number' ? fmt(ms / 1000, 1) : '–');

function machineLine(machine) {
  if (!machine) return '';
  const p = machine.packages ?? {};
  return (
    `Machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}, Node ${machine.node}. ` +
    `Load average at start ${machine.loadAverageAtStart?.join(' / ')}. Discluster: discluster-sdk ${p['discluster-sdk']}, ` +
    `discluster-master ${p['discluster-master']}, discluster-control ${p['discluster-control']}, pm2 ${p.pm2}, ` +
    `nats-server ${String(p['nats-server']).replace(/^nats-server:\s*/, '')}, @nats-io/transport-node ${p['@nats-io/transport-node']}, @discordjs/ws ${p['@discordjs/ws']}, ` +
    `zlib-sync ${p['zlib-sync']}; discord-sim ${p['discord-sim']}. SDK build \`${machine.sdkBuild?.combined}\`. ` +
    `Every process of the bench ran at nice ${machine.nice}.`
  );
}

export function render(result) {
  const cfg = result.config ?? {};
  const analysis = result.analysis;
  const checks = result.checks;
  const out = [];
  const started = result.startedAt ? new Date(result.startedAt) : null;
  const finished = result.finishedAt ? new Date(result.finishedAt) : null;
  const utc = (d) => d.toISOString().slice(0, 16).replace('T', ' ');
  out.push('# Soak: a Discluster fleet under traffic and faults');
  out.push('');
  out.push(
    `Produced by \`${result.command ?? 'npm run bench:soak'}\` (bench/soak/run.mjs)` +
      (started && finished
        ? ` from ${utc(started)} to ${utc(finished)} UTC (${fmt((finished - started) / 60000, 1)} min)`
        : '') +
      `; every raw sample (each process's RSS, open file descriptors and threads at every sampling time), every fault and the machine facts are in [soak.json](soak.json).`,
  );
  out.push('');
  out.push(machineLine(result.machine));
  out.push('');
  if (
    result.sdkBuildAtEnd &&
    result.machine?.sdkBuild &&
    result.sdkBuildAtEnd !== result.machine.sdkBuild.combined
  ) {
    out.push(
      `The built SDK changed during the run (\`${result.machine.sdkBuild.combined}\` at the start, \`${result.sdkBuildAtEnd}\` at the end: ` +
        'the work tree is shared); cluster processes started after the rebuild (restarts, rolling restarts) ran the newer build.',
    );
    out.push('');
  }
  if (result.incomplete || result.error) {
    out.push(
      `**This run is incomplete** (${result.incomplete ?? 'failed'}): ${String(result.error ?? '').split('\n')[0]}. The figures below are what it measured until then.`,
    );
    out.push('');
  }

  // ---- verdict
  out.push('## Verdict');
  out.push('');
  if (analysis?.series?.length) {
    const judged = analysis.series.filter((s) => s.judged && s.ok !== null);
    out.push(
      `**Growth ${analysis.ok ? 'bounded' : 'not bounded'}** over the ${fmt(analysis.window.minutes, 1)} minutes after the ` +
        `${fmt(analysis.window.fromS / 60, 1)}-minute warm-up: ${judged.filter((s) => s.ok).length} of ${judged.length} judged series pass` +
        (analysis.failed.length
          ? `; failing: ${analysis.failed.map((f) => `${f.label} (${f.why})`).join(', ')}`
          : '') +
        '.',
    );
    out.push('');
    out.push(
      `Rule, per series (a process, or a cluster id across the processes that served it): the median over the last fifth of the ` +
        `measured window against the median over its first fifth. RSS passes if it is at most ${LIMITS.rssRatio}× the first or at most ` +
        `${LIMITS.rssMiB} MiB above it. Open file descriptors are judged by their floor (the lowest count in each fifth), which ` +
        `must not rise by more than max(${LIMITS.fdAbs}, ${LIMITS.fdRatio * 100} %): fds held for a while after a fault come and go ` +
        `(pm2's daemon keeps a \`/proc/<pid>/stat\` fd of every exited cluster process for up to ~90 s: pidusage's history), a leak raises the floor. ` +
        `The least-squares slope per hour over the whole window is shown beside them, not judged (a 30-minute window with faults ` +
        `every few minutes is noisy). discord-sim (the referee) and the bench process are shown, not judged.`,
    );
    out.push('');
  } else {
    out.push('No samples: nothing to judge.');
    out.push('');
  }
  if (checks) {
    const t = checks.traffic;
    const d = checks.duringSoak;
    const faults = result.faults ?? [];
    out.push(
      table(
        ['check (over the whole soak)', 'result'],
        [
          [
            'delivery: MESSAGE_CREATE nonces at a bot handler',
            `${fmt(t.delivered)} of ${fmt(t.dispatched)} dispatched; ${fmt(t.required)} required, ${fmt(t.exempt)} exempt ` +
              `(sent to an invalidated shard before its new IDENTIFY); **${fmt(t.lost)} lost**; ${fmt(t.deliveredMoreThanOnce)} deliveries beyond the first (RESUME replays)`,
          ],
          [
            'identify violations (simulator `violations.identifyRate`)',
            `**${fmt(d.identifyViolations)}** during the soak (${fmt(result.coldStart?.identifyViolations)} in the cold start)`,
          ],
          [
            'duplicate live sessions (simulator `violations.duplicateLiveSessions`)',
            `**${fmt(d.duplicateLiveSessions)}** during the soak (${fmt(checks.total.duplicateLiveSessions)} in all)`,
          ],
          [
            'RESUMEs of a session live elsewhere (simulator `violations.resumeWhileLive`)',
            `**${fmt(d.resumeWhileLive)}** during the soak (${fmt(checks.total.resumeWhileLive)} in all)`,
          ],
          ...(cfg.natsCluster
            ? [
                [
                  'fences (bot `fenced` lines: a cluster that lost its lease)',
                  `**${fmt(d.fences)}** during the soak`,
                ],
                [
                  'NATS node kills recovered within the bound',
                  `${(result.nodeKills ?? []).filter((k) => k.ok).length} of ${(result.nodeKills ?? []).length}`,
                ],
              ]
            : []),
          [
            'sessions spent',
            `${fmt(d.identifies)} IDENTIFYs (the invalidated shards'), ${fmt(d.resumes)} RESUMEs during the soak`,
          ],
          [
            'shards without a session (poller, every second)',
            `${fmt(
              [result.soak?.beforeFaults, ...faults.map((f) => f.window)].reduce(
                (a, w) => a + (w?.missingShardSeconds ?? 0),
                0,
              ),
              1,
            )} shard-seconds in all ` +
              `(of ${fmt(cfg.shards * (result.samples?.at(-1)?.t ?? 0), 0)}); polls that saw a shard with two live sessions: ` +
              `${fmt([result.soak?.beforeFaults, ...faults.map((f) => f.window)].reduce((a, w) => a + (w?.pollsDoubled ?? 0), 0))}`,
          ],
          [
            'faults recovered within the bound',
            `${faults.filter((f) => f.ok).length} of ${faults.length} (bound ${sec(cfg.recoveryBoundMs)} s each)`,
          ],
          [
            'fleet at the end',
            result.endStatus
              ? result.endStatus.stopped
                ? `stopped: ${JSON.stringify(result.endStatus.stopped)}`
                : result.endStatus.hosts
                    .map(
                      (h) =>
                        `${h.id} ${h.state}: ${h.clusters.map((c) => `cluster ${c.id} ${c.state} ${c.ready}/${c.shards} ready, ${c.restarts} restarts`).join('; ')}`,
                    )
                    .join(' — ')
              : '–',
          ],
        ],
      ),
    );
    out.push('');
  }

  // ---- settings
  out.push('## Settings');
  out.push('');
  out.push(
    `The fleet of bench/lib/fleet.mjs, as the other fleet benchmarks run it: ${cfg.natsCluster ? `a ${fmt(cfg.natsCluster)}-node JetStream cluster (kv_replicas ${fmt(cfg.kvReplicas)})` : 'one nats-server with JetStream'}, MASTER as the ` +
      `foreground \`discluster-master\`, and ${fmt(cfg.hosts)} stand-in hosts, each a foreground \`discluster-control\` with its own ` +
      `PM2_HOME (its own pm2 daemon) running bench/peers/fleet-bot.cjs in cluster processes; Discluster's default timing ` +
      `(heartbeat 5 s, host timeout 15 s, shard lease 20 s). discord-sim: ${fmt(cfg.shards)} shards, max_concurrency ` +
      `${fmt(cfg.maxConcurrency)} (so ${fmt(cfg.shards / cfg.maxConcurrency)} clusters of ${fmt(cfg.maxConcurrency)} shards), ` +
      `${fmt(cfg.shards * cfg.guildsPerShard)} guilds, identify window ${fmt(cfg.identifyWindowMs)} ms (the bot uses the same, with ` +
      `the integration tests' ${fmt(cfg.identifySafetyMarginMs)} ms safety margin), replay buffer ${fmt(cfg.replayBufferLimit)} ` +
      `dispatches per session. Traffic: one run of ${fmt(cfg.trafficPerSecond)} MESSAGE_CREATE/s over every guild for the whole ` +
      `soak (${fmt(result.traffic?.total)} messages), each logged by the bot's handler with its nonce.`,
  );
  out.push('');
  out.push(
    `Soak: ${fmt(cfg.minutes)} minutes from the moment every shard served (cold start took ${sec(result.coldStart?.allLiveMs)} s), ` +
      `the first ${fmt(cfg.warmupS)} s a warm-up without faults and outside the verdict; then a fault every ${fmt(cfg.faultMinS)}–` +
      `${fmt(cfg.faultMaxS)} s (uniform, seeded: \`--seed ${cfg.seed}\` replays the same schedule), the kinds drawn from a shuffled ` +
      `deck so each comes up before any repeats: ${(cfg.faults ?? []).map((f) => `\`${f}\``).join(', ')}. Every ${fmt(cfg.sampleS)} s, ` +
      `for every process of the fleet: VmRSS from /proc/<pid>/status, the entries of /proc/<pid>/fd (open files, sockets, pipes) ` +
      `and Threads. Cluster processes are found by their PM2_HOME and DISCLUSTER_CLUSTER_ID; a series is keyed by role and cluster id, ` +
      `not pid, so a cluster replaced by a fault (SIGKILL, rolling restart) continues its series.`,
  );
  out.push('');
  if (result.soak?.cpu)
    out.push(
      `CPU over the soak (of one core): the bench's processes ${fmt(result.soak.cpu.benchCpuPct)} %, everything else on the machine ` +
        `${fmt(result.soak.cpu.otherCpuPct)} %${result.soak.cpu.busiestOthers?.length ? ` (busiest others: ${result.soak.cpu.busiestOthers.map((b) => `${b.name} ${b.pct} %`).join(', ')})` : ''}.`,
    );
  out.push('');

  // ---- per series
  if (analysis?.series?.length) {
    out.push('## RSS and open file descriptors per process');
    out.push('');
    out.push(
      `Over the measured window (${clock(analysis.window.fromS)}–${clock(analysis.window.toS)} after every shard served). ` +
        `**first → last fifth**: medians; **slope**: least squares over the window, per hour; **pids**: processes that served the ` +
        `series (more than one: replaced by faults).`,
    );
    out.push('');
    out.push(
      table(
        [
          'process',
          'pids',
          'RSS MiB start / end',
          'RSS MiB first → last fifth',
          'RSS growth',
          'RSS max',
          'RSS slope MiB/h',
          'fd floor first → last fifth',
          'fds median first → last fifth',
          'fds min–max',
          'fd slope /h',
          'threads',
          'verdict',
        ],
        analysis.series
          .filter((s) => s.ok !== null)
          .map((s) => [
            s.role === 'total' ? `**${s.label}** (sum)` : `${s.label}`,
            s.role === 'total' ? '–' : fmt(s.processes),
            `${fmt(s.rssMiB.start, 1)} / ${fmt(s.rssMiB.end, 1)}`,
            `${fmt(s.rssMiB.firstMedian, 1)} → ${fmt(s.rssMiB.lastMedian, 1)}`,
            `${signed(s.rssMiB.growth)} MiB (${fmt(s.rssMiB.ratio, 2)}×)`,
            fmt(s.rssMiB.max, 1),
            signed(s.rssMiB.slopePerHour),
            `${fmt(s.fds.firstMin)} → ${fmt(s.fds.lastMin)}`,
            `${fmt(s.fds.firstMedian)} → ${fmt(s.fds.lastMedian)}`,
            `${fmt(s.fds.min)}–${fmt(s.fds.max)}`,
            signed(s.fds.slopePerHour),
            `${fmt(s.threads.firstMedian)} → ${fmt(s.threads.lastMedian)}`,
            s.judged
              ? s.ok
                ? 'bounded'
                : `**not bounded** (${[!s.rssOk && 'RSS', !s.fdOk && 'fds'].filter(Boolean).join(', ')})`
              : 'not judged',
          ]),
      ),
    );
    out.push('');
    const unjudgeable = analysis.series.filter((s) => s.ok === null);
    if (unjudgeable.length)
      out.push(
        `Too few samples in the window to judge: ${unjudgeable.map((s) => `${s.label} (${s.samples})`).join(', ')}.`,
        '',
      );

    // ---- over time
    const series = buildSeries(result.samples);
    const samples = result.samples;
    const marks = [];
    const steps = 10;
    const lastT = samples.at(-1).t;
    for (let i = 0; i <= steps; i++) {
      const target = (lastT * i) / steps;
      const nearest = samples.reduce((a, b) => (Math.abs(b.t - target) < Math.abs(a.t - target) ? b : a));
      if (!marks.includes(nearest)) marks.push(nearest);
    }
    const sumAt = (t, role, field) => {
      const sample = samples.find((s) => s.t === t);
      const procs = sample.procs.filter((p) => p.r === role);
      return procs.reduce((a, p) => a + (field === 'rss' ? p.rss / 1024 : p.fd), 0);
    };
    const fleetAt = (t, field) => series.get('total:fleet').points.find((p) => p.t === t)?.[field];
    const faultsBefore = (t) => (result.faults ?? []).filter((f) => f.atS <= t).length;
    out.push('## Over time');
    out.push('');
    out.push(
      'Eleven sampling times spread over the soak (time since every shard served; the warm-up ends at ' +
        `${clock(cfg.warmupS)}). RSS in MiB, summed per role; fds summed over MASTER, CONTROLs, pm2 daemons and clusters.`,
    );
    out.push('');
    out.push(
      table(
        [
          't',
          'faults so far',
          'MASTER',
          'CONTROLs',
          'pm2 daemons',
          'clusters',
          'cluster processes',
          'fleet RSS',
          'fleet fds',
          'nats-server',
          'discord-sim',
          'load avg 1 min',
        ],
        marks.map((s) => [
          clock(s.t),
          fmt(faultsBefore(s.t)),
          fmt(sumAt(s.t, 'master', 'rss'), 1),
          fmt(sumAt(s.t, 'control', 'rss'), 1),
          fmt(sumAt(s.t, 'pm2', 'rss'), 1),
          fmt(sumAt(s.t, 'cluster', 'rss'), 1),
          fmt(s.procs.filter((p) => p.r === 'cluster').length),
          fmt(fleetAt(s.t, 'rssMiB'), 1),
          fmt(fleetAt(s.t, 'fds')),
          fmt(sumAt(s.t, 'nats', 'rss'), 1),
          fmt(sumAt(s.t, 'sim', 'rss'), 1),
          fmt(s.load1, 2),
        ]),
      ),
    );
    out.push('');
  }

  // ---- faults
  const faults = result.faults ?? [];
  out.push('## Faults');
  out.push('');
  out.push(
    '**serving**: from the injection until the sessions the fault cost were back (the RESUMEs or, after an invalidation, the ' +
      'IDENTIFYs, counted by the simulator) and every shard had exactly one live session; **status ready**: until ' +
      '`discluster status` showed every shard ready. A rolling restart counts from the CLI call (it returns when done). ' +
      "The simulator's counters (RESUMEs, IDENTIFYs, violations, duplicate live sessions) cover the whole time from the " +
      'injection until the next fault (or the end), so late effects count too; **shard-seconds without a session**: from a ' +
      "poller reading the simulator's live sessions every second over the same time (the lowest count of live shards in brackets).",
  );
  out.push('');
  if (faults.length === 0) out.push('No fault was injected.');
  else
    out.push(
      table(
        [
          '#',
          'at',
          'fault',
          'what',
          'serving after (s)',
          'status ready after (s)',
          'RESUMEs',
          'IDENTIFYs',
          'identify violations',
          'duplicate sessions',
          'shard-seconds without a session (min live)',
          'ok',
        ],
        faults.map((f, i) => {
          const w = f.untilNext ?? f;
          return [
            String(i + 1),
            clock(f.atS),
            `\`${f.kind}\``,
            f.detail ?? '–',
            sec(f.servingAfterMs),
            sec(f.statusReadyAfterMs),
            fmt(w.resumes),
            fmt(w.identifies),
            fmt(w.identifyViolations),
            fmt(w.duplicateLiveSessions),
            f.window ? `${fmt(f.window.missingShardSeconds, 1)} (${fmt(f.window.minLive)})` : '–',
            f.ok ? 'yes' : `**no**: ${f.error}`,
          ];
        }),
      ),
    );
  out.push('');

  // ---- NATS node kills (--nats-cluster --kill-node-every-min)
  if (cfg.natsCluster) {
    const kills = result.nodeKills ?? [];
    out.push('## NATS node kills');
    out.push('');
    out.push(
      `The fleet ran on a ${fmt(cfg.natsCluster)}-node JetStream cluster with kv_replicas ${fmt(cfg.kvReplicas)}` +
        (cfg.killNodeEveryMin
          ? `; every ${fmt(cfg.killNodeEveryMin, 1)} min after the warm-up one node (round-robin) was killed (SIGKILL) and ` +
            `started again ${fmt(cfg.nodeDownS)} s later, never during another fault. `
          : ' (no node kills). ') +
        '**KV stall**: the longest gap between successful writes to a 3-replica probe bucket (written every 50 ms) whose ' +
        'leader had been moved onto the victim, from the kill until every shard served again; **leaders moved**: until a new ' +
        'meta leader and living leaders of the lease and sessions buckets; **caught up**: from the restart until the node ' +
        'was a current replica of every stream; **serving**: from the kill until every shard had one live session (checked while ' +
        'the node is still down); counters from the kill until the node caught up and every shard served.',
    );
    out.push('');
    if (kills.length === 0) out.push('No node was killed.');
    else
      out.push(
        table(
          [
            '#',
            'at',
            'node (leader of)',
            'KV stall (s)',
            'leaders moved (s)',
            'caught up (s)',
            'serving (s)',
            'fences',
            'IDENTIFYs',
            'RESUMEs',
            'identify violations',
            'duplicate sessions',
            'resumes while live',
            'ok',
          ],
          kills.map((k) => [
            String(k.n),
            clock(k.atS),
            `${k.node} (${
              [
                k.metaLeaderWasKilled ? 'meta' : null,
                k.leasesLeaderWasKilled ? 'leases' : null,
                k.sessionsLeaderWasKilled ? 'sessions' : null,
                k.probeLeaderWasKilled ? 'probe' : null,
              ]
                .filter(Boolean)
                .join(', ') || '–'
            })`,
            sec(k.kvStallMs),
            sec(k.recoveryMs),
            sec(k.catchUpMs),
            sec(k.servingAfterMs),
            fmt(k.fencedClusters),
            fmt(k.identifies),
            fmt(k.resumes),
            fmt(k.identifyViolations),
            fmt(k.duplicateLiveSessions),
            fmt(k.resumeWhileLive),
            k.ok ? 'yes' : `**no**: ${k.error}`,
          ]),
        ),
      );
    out.push('');
  }

  const before = result.soak?.beforeFaults;
  if (before)
    out.push(
      `Before the first fault: ${fmt(before.missingShardSeconds, 1)} shard-seconds without a session over ${fmt(before.polls)} polls ` +
        `(lowest live count ${fmt(before.minLive)} of ${fmt(cfg.shards)}).`,
      '',
    );

  // ---- fd targets of the long-lived processes
  if (result.fdTargets?.atStart && result.fdTargets?.atEnd) {
    const normalize = (counts) => {
      const out = {};
      for (const [target, n] of Object.entries(counts ?? {})) {
        const key = target.replace(/^\/proc\/\d+\//, '/proc/<pid>/').replace(/\/tmp\/[^/]+\//, '$PM2_HOME/');
        out[key] = (out[key] ?? 0) + n;
      }
      return out;
    };
    const rows = [];
    for (const key of Object.keys(result.fdTargets.atStart)) {
      const a = normalize(result.fdTargets.atStart[key]);
      const b = normalize(result.fdTargets.atEnd[key]);
      const total = (o) => Object.values(o).reduce((x, y) => x + y, 0);
      const changed = [...new Set([...Object.keys(a), ...Object.keys(b)])]
        .filter((t) => (a[t] ?? 0) !== (b[t] ?? 0))
        .map((t) => `\`${t}\` ${a[t] ?? 0} → ${b[t] ?? 0}`);
      rows.push([key, `${total(a)} → ${total(b)}`, changed.length ? changed.join('; ') : 'none']);
    }
    out.push('## Open fds of the long-lived processes, start and end');
    out.push('');
    out.push(
      'What each open fd of MASTER, the CONTROLs and the pm2 daemons pointed at when the soak began and at its end ' +
        '(`/proc/<pid>/fd` links; sockets and pipes by kind, files by path), and which targets changed.',
    );
    out.push('');
    out.push(table(['process', 'open fds', 'targets that changed'], rows));
    out.push('');
  }

  // ---- logs
  if (result.logs) {
    out.push('## What the fleet logged');
    out.push('');
    const entries = Object.entries(result.logs.warningsByMessage ?? {})
      .map(([key, value]) => [key, typeof value === 'number' ? { count: value, atS: [] } : value])
      .sort((a, b) => b[1].count - a[1].count);
    if (entries.length === 0) out.push('MASTER and the CONTROLs logged no warning or error.');
    else {
      out.push('Warnings (pino level 40) and errors (50+) of MASTER and the CONTROLs, by message:');
      out.push('');
      out.push(
        table(
          ['source [level] message', 'times', 'when (since every shard served)'],
          entries.map(([key, { count, atS }]) => [
            key.replace(/\|/g, '\\|'),
            fmt(count),
            atS.length
              ? `${atS.slice(0, 12).map(clock).join(', ')}${atS.length > 12 || count > atS.length ? ', …' : ''}`
              : '–',
          ]),
        ),
      );
    }
    out.push('');
    if (result.logs.masterElectedAtS)
      out.push(
        `MASTER logged \`elected leader\` at ${result.logs.masterElectedAtS.map((t) => (t < 0 ? 'the cold start' : clock(t))).join(', ')}.`,
        '',
      );
    out.push(
      result.logs.botErrorCount
        ? `The bot processes logged ${fmt(result.logs.botErrorCount)} \`error\`/\`fatal\`/\`startError\` lines; the first: ` +
            `${result.logs.botErrors
              .slice(0, 5)
              .map((l) => `\`${l.t}: ${l.message ?? l.code}\``)
              .join(', ')}.`
        : 'The bot processes logged no `error`, `fatal` or `startError` line.',
    );
    out.push('');
  }

  // ---- how to run
  out.push('## How to run');
  out.push('');
  out.push('```sh');
  out.push('npm run bench:soak                          # 30 minutes; writes bench/results/soak.{json,md}');
  out.push('node bench/soak/run.mjs --minutes 120       # longer');
  out.push(
    "node bench/soak/run.mjs --seed 1234         # replay a run's fault schedule (the seed is printed and recorded)",
  );
  out.push(
    'node bench/soak/run.mjs --quick             # ~3-minute smoke run: faults every 10–15 s, a sample every 5 s; to a temp dir',
  );
  out.push('node bench/soak/run.mjs --render            # re-render soak.md from soak.json');
  out.push('# a 3-node NATS cluster (kv_replicas 3), one node killed every 10 min: the 2-hour run');
  out.push(
    'node bench/soak/run.mjs --nats-cluster --minutes 120 --kill-node-every-min 10   # bench/results/soak-nats-cluster.{json,md}',
  );
  out.push('```');
  out.push('');
  out.push(
    'More flags: `--sample-s`, `--warmup-s`, `--fault-min-s`, `--fault-max-s`, `--faults <comma-separated kinds>`, `--shards`, ' +
      '`--hosts`, `--rate`, `--out DIR`, `--name BASE` (file names), `--nats-cluster`, `--kill-node-every-min N`, ' +
      '`--node-down-s S` (10 by default). Ctrl-C stops every process the soak started (by pid) and writes what it measured. ' +
      'Needs the build (`npm run build`) and nats-server, as every fleet benchmark.',
  );
  out.push('');

  // ---- limits
  out.push('## Noise and limits');
  out.push('');
  out.push(
    '- Cluster series restart with their process: a cluster replaced by a fault starts small again, so a leak in a ' +
      'cluster process shows only between its restarts (the per-series start/end and max columns, and **pids**, show how often that ' +
      'happened). A rolling restart replaces every cluster. The MASTER, CONTROL, pm2 daemon and (except for its own restart fault) ' +
      'nats-server series are one process each for the whole soak.',
  );
  out.push(
    '- RSS counts resident pages, shared libraries included, and V8 grows its heap lazily and gives memory back late; a fifth of a ' +
      '30-minute window is a few minutes, so the rule looks for steady growth, not for a leak of a few bytes per event. Longer runs ' +
      '(`--minutes`) sharpen it.',
  );
  out.push(
    "- The machine is shared (2 cores, other sessions' builds and tests); contention stretches recovery times but does not change memory.",
  );
  if (cfg.natsCluster)
    out.push(
      '- On a NATS cluster each node is shown but not judged (a killed node restarts small, and clients move between nodes at ' +
        "every kill); the nodes' sum is judged, over the samples with every node up. A short run mostly shows JetStream " +
        'settling (streams and Raft logs filling, a restarted node catching up); the long run (`--minutes 120`) is the one to judge.',
    );
  out.push('');
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n')}`;
}
