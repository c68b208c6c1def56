// CPU accounting for benchmarks whose processes come and go (fleets, peer managers' children, pm2
// daemons that re-parent to init): a sampler reads /proc/<pid>/stat of every process once per
// interval and splits the CPU time between the bench's processes and everything else on the
// machine. A process is the bench's when its environment carries this bench's marker variable
// (inherited by every descendant, pm2 daemons included) or names one of the registered strings (a
// PM2_HOME: pm2 apps get a filtered environment but always carry their PM2_HOME).
import fs from 'node:fs';
import { CLK_TCK, machineBusySeconds, round } from '../sdk/common.mjs';

export const MARKER = 'BENCH_PEERS_RUN';
process.env[MARKER] ??= `${process.pid}-${Date.now()}`;
const marker = `${MARKER}=${process.env[MARKER]}`;
const needles = new Set();

/** Counts processes whose environment or command line mentions `needle` as the bench's. */
export function markOurs(needle) {
  needles.add(needle);
  classified.clear();
}

// pid:starttime → true (ours) / false (other)
const classified = new Map();

function readStat(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ticks: Number(fields[11]) + Number(fields[12]), start: fields[19] };
  } catch {
    return null;
  }
}

function isOurs(pid, start) {
  const key = `${pid}:${start}`;
  let ours = classified.get(key);
  if (ours !== undefined) return ours;
  ours = pid === process.pid;
  if (!ours) {
    try {
      const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      ours = environ.includes(marker) || [...needles].some((n) => environ.includes(n) || cmdline.includes(n));
    } catch {
      ours = false;
    }
  }
  classified.set(key, ours);
  return ours;
}

/**
 * Starts sampling. `measure()` returns a function that, when called, reports what the bench's
 * processes and all others used since (seconds and % of one core), and the busiest other processes.
 */
export function startCpuSampler(intervalMs = 1000) {
  let last = new Map();
  const totals = { ours: 0, others: 0 };
  const otherByName = new Map();
  const sample = () => {
    const now = new Map();
    for (const entry of fs.readdirSync('/proc')) {
      if (entry.charCodeAt(0) > 57) continue;
      const pid = Number(entry);
      if (!Number.isInteger(pid)) continue;
      const stat = readStat(pid);
      if (!stat) continue;
      const key = `${pid}:${stat.start}`;
      now.set(key, stat.ticks);
      const before = last.get(key);
      // A process born since the last sample: count all of its CPU time (it is all since then).
      const delta = (stat.ticks - (before ?? 0)) / CLK_TCK;
      if (delta <= 0 || (before === undefined && last.size === 0)) continue;
      if (isOurs(pid, stat.start)) totals.ours += delta;
      else {
        totals.others += delta;
        let name = '?';
        try {
          name = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
        } catch {
          // gone
        }
        otherByName.set(name, (otherByName.get(name) ?? 0) + delta);
      }
    }
    last = now;
    for (const key of classified.keys()) if (!now.has(key)) classified.delete(key);
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  timer.unref();
  return {
    measure() {
      sample();
      const startedAt = performance.now();
      const start = { ...totals };
      const startByName = new Map(otherByName);
      const machine = machineBusySeconds();
      return () => {
        sample();
        const wallS = (performance.now() - startedAt) / 1000;
        const ours = totals.ours - start.ours;
        const others = totals.others - start.others;
        const busiest = [...otherByName]
          .map(([name, s]) => [name, s - (startByName.get(name) ?? 0)])
          .filter(([, s]) => s > 0.05 * wallS)
          .sort((a, b) => b[1] - a[1])
          .slice(0, 5)
          .map(([name, s]) => ({ name, pct: round((100 * s) / wallS, 1) }));
        return {
          wallS: round(wallS, 2),
          benchCpuPct: round((100 * ours) / wallS, 1),
          otherCpuPct: round((100 * others) / wallS, 1),
          machineBusyPct: round((100 * (machineBusySeconds() - machine)) / wallS, 1),
          busiestOthers: busiest,
        };
      };
    },
    stop: () => clearInterval(timer),
  };
}
