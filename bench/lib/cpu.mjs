// CPU accounting for benchmarks whose processes come and go (fleets, peer managers' children, pm2
// daemons that re-parent to init): a sampler reads /proc/<pid>/stat of every process once per
// interval and splits the CPU time between the bench's processes and everything else on the
// machine. A process is the bench's when its environment carries this bench's marker variable
// (inherited by every descendant, pm2 daemons included) or names one of the registered strings (a
// PM2_HOME: pm2 apps get a filtered environment but always carry their PM2_HOME).
// Also the /proc readers every bench uses: one process's CPU seconds and memory, the machine's busy
// seconds, a meter over a fixed set of pids, and a wait for a quiet machine.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { round } from './figures.mjs';
import { log, sleep } from './log.mjs';

export const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds (user + system, every thread) a process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // After "pid (comm) ": state is fields[0]; utime and stime are stat fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** CPU seconds every process on the machine has used so far (/proc/stat). */
export function machineBusySeconds() {
  const fields = fs
    .readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  // user nice system idle iowait irq softirq steal …: busy is everything but idle and iowait.
  const busy = fields.slice(0, 8).reduce((a, b) => a + b, 0) - fields[3] - fields[4];
  return busy / CLK_TCK;
}

/** RSS and its high-water mark of a process (MiB), or null when it is gone. */
export function memoryMiB(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssMiB: round(kib('VmRSS') / 1024, 1), hwmMiB: round(kib('VmHWM') / 1024, 1) };
  } catch {
    return null;
  }
}

/**
 * CPU of some processes between now and the call of the returned function (seconds and % of one
 * core), and what every other process on the machine used meanwhile (other people's processes on
 * a shared machine make figures noisy).
 */
export function cpuMeter(pids) {
  const startedAt = performance.now();
  const start = pids.map(cpuSeconds);
  const self = process.cpuUsage();
  const machine = machineBusySeconds();
  return () => {
    const wall = (performance.now() - startedAt) / 1000;
    const used = pids.map((pid, i) => cpuSeconds(pid) - start[i]);
    const selfUsage = process.cpuUsage(self);
    const ours = used.reduce((a, b) => a + b, 0) + (selfUsage.user + selfUsage.system) / 1e6;
    const others = Math.max(0, machineBusySeconds() - machine - ours);
    return {
      wallS: round(wall, 3),
      cpuS: used.map((s) => round(s, 3)),
      pct: used.map((s) => round((100 * s) / wall, 1)),
      benchPct: round((100 * (selfUsage.user + selfUsage.system)) / 1e6 / wall, 1),
      otherPct: round((100 * others) / wall, 1),
    };
  };
}

/** Waits (bounded) until processes outside the bench use at most `maxPct` of a core, so runs compare. */
export async function waitForQuietMachine(waitMs, maxPct = 15, ourPids = []) {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const meter = cpuMeter(ourPids);
    await sleep(1000);
    const { otherPct } = meter();
    if (otherPct <= maxPct) return otherPct;
    if (Date.now() >= deadline) {
      log(`  machine still busy (others use ${otherPct}% of a core); measuring anyway`);
      return otherPct;
    }
    log(`  waiting for a quiet machine: others use ${otherPct}% of a core`);
  }
}

// ---- a sampler over every process on the machine -------------------------------------------------

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
