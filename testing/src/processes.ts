import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { lazyExitHook } from './exitHook.js';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  /** Added to (not replacing) the parent's environment; an `undefined` value removes a variable. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /**
   * Words run before the command (e.g. `['ip', 'netns', 'exec', ns]`: the process runs inside that
   * network namespace). The prefix must exec the command in place, so the pid is the command's.
   */
  prefix?: readonly string[] | undefined;
}

export interface SpawnNodeOptions extends SpawnOptions {
  /** Flags for node itself, placed before the script (e.g. `--enable-source-maps`). */
  nodeArgs?: string[];
}

export interface SpawnedProcess {
  readonly pid: number;
  /** Resolves once the process has exited; never rejects. */
  readonly exited: Promise<ExitStatus>;
  /** Every stdout line so far, without the newline. */
  readonly lines: readonly string[];
  /** Each iteration replays stdout from the first line, then follows until the process exits. */
  readonly stdoutLines: AsyncIterable<string>;
  /** The tail of stderr, for error messages. */
  stderr(): string;
  /**
   * For a failed test's diagnostics: exited (how), or alive with its scheduler state and CPU time
   * (a process that wrote nothing for a minute: hung in a loop, stopped, or idle?).
   */
  vitals(): string;
  /** First stdout line (seen already or later) matching `predicate`; rejects on timeout or exit. */
  waitForLine(predicate: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Sends `signal` to exactly this pid; false if it has already exited. */
  kill(signal?: NodeJS.Signals): boolean;
  /** SIGTERM, then SIGKILL if still alive after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<ExitStatus>;
}

const STDERR_TAIL_CHARS = 16_000;

// Every process started here until it exits, so stopAll() and the exit hook can end them
// by pid even when a test failed halfway.
const live = new Set<SpawnedProcess>();

// Last resort if a suite forgot stopAll(): 'exit' handlers must be synchronous, so SIGKILL.
const installExitHook = lazyExitHook(() => {
  for (const child of live) child.kill('SIGKILL');
});

/** Starts `command` with piped stdout/stderr and tracks it for stopAll(). */
export function spawnProcess(
  command: string,
  args: string[] = [],
  options: SpawnOptions = {},
): SpawnedProcess {
  const [program, ...argv] = [...(options.prefix ?? []), command, ...args] as [string, ...string[]];
  const child = spawn(program, argv, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  const lines: string[] = [];
  let partial = '';
  let stderrTail = '';
  let exitStatus: ExitStatus | undefined;
  // Woken whenever a line arrives or the process exits.
  let waiters: Array<() => void> = [];
  const notify = (): void => {
    const current = waiters;
    waiters = [];
    for (const wake of current) wake();
  };

  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) lines.push(line.replace(/\r$/, ''));
    if (parts.length > 0) notify();
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
  });

  const exited = new Promise<ExitStatus>((resolve) => {
    const finish = (status: ExitStatus): void => {
      if (exitStatus) return;
      if (partial !== '') lines.push(partial);
      partial = '';
      exitStatus = status;
      live.delete(handle);
      notify();
      resolve(status);
    };
    // 'close' (not 'exit') so that all output has been read before we report the end.
    child.on('close', (code, signal) => finish({ code, signal }));
    child.on('error', (error) => {
      stderrTail += `\n[spawn error] ${error.message}`;
      finish({ code: null, signal: null });
    });
  });

  const nextEvent = (): Promise<void> => new Promise((resolve) => waiters.push(resolve));

  const handle: SpawnedProcess = {
    // A failed spawn has no pid; -1 can never name another process.
    pid: child.pid ?? -1,
    exited,
    lines,
    stdoutLines: {
      async *[Symbol.asyncIterator]() {
        let index = 0;
        for (;;) {
          while (index < lines.length) yield lines[index++] as string;
          if (exitStatus) return;
          await nextEvent();
        }
      },
    },
    stderr: () => stderrTail,
    vitals: () =>
      exitStatus ? `pid ${handle.pid} exited (${describeExit(exitStatus)})` : procVitals(handle.pid),
    async waitForLine(predicate, timeoutMs = 10_000) {
      let index = 0;
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        notify();
      }, timeoutMs);
      try {
        for (;;) {
          while (index < lines.length) {
            const line = lines[index++] as string;
            if (predicate(line)) return line;
          }
          if (exitStatus) {
            throw new Error(
              `${command} (pid ${handle.pid}) exited (${describeExit(exitStatus)}) before printing the awaited line.` +
                describeOutput(lines, stderrTail),
            );
          }
          if (timedOut) {
            throw new Error(
              `Timed out after ${timeoutMs} ms waiting for a line from ${command} (pid ${handle.pid}).` +
                describeOutput(lines, stderrTail),
            );
          }
          await nextEvent();
        }
      } finally {
        clearTimeout(timer);
      }
    },
    kill(signal = 'SIGTERM') {
      if (exitStatus || handle.pid <= 0) return false;
      try {
        // By pid only: never by name, so nothing else on the machine is touched.
        process.kill(handle.pid, signal);
        return true;
      } catch {
        return false;
      }
    },
    async stop(graceMs = 10_000) {
      if (exitStatus) return exitStatus;
      handle.kill('SIGTERM');
      const timer = setTimeout(() => handle.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };

  if (handle.pid > 0) {
    live.add(handle);
    installExitHook();
  }
  return handle;
}

const CLOCK_TICKS_PER_SECOND = 100;

/**
 * `/proc/<pid>/stat`'s state letter and user + system CPU time, then where each thread is: its
 * state and, when asleep, the kernel function it waits in (`wchan`: `ep_poll` is an idle event
 * loop or libuv worker, `pipe_write` a write nobody reads, `futex_wait_queue` a lock or a worker
 * waiting for work) and the main thread's system call. Tells a hung loop from an idle or stopped one.
 */
function procVitals(pid: number): string {
  if (pid <= 0) return 'never started';
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: the fields after it start past its ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
    return `pid ${pid} alive: state ${fields[0]}, ${cpuSeconds.toFixed(2)} s CPU; ${threadVitals(pid)}`;
  } catch {
    return `pid ${pid}: no /proc entry (exited, its output not closed yet)`;
  }
}

/** x86-64 numbers of the system calls a sleeping Node thread is usually in. */
const SYSCALL_NAMES: Readonly<Record<string, string>> = {
  '0': 'read',
  '1': 'write',
  '7': 'poll',
  '35': 'nanosleep',
  '61': 'wait4',
  '202': 'futex',
  '230': 'clock_nanosleep',
  '232': 'epoll_wait',
  '281': 'epoll_pwait',
  '441': 'epoll_pwait2',
};

/** Each thread as `name:state[/wchan]`, and the main thread's system call (best effort). */
function threadVitals(pid: number): string {
  const read = (file: string): string => {
    try {
      return fs.readFileSync(file, 'utf8').trim();
    } catch {
      return '?';
    }
  };
  const threads = fs.readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = read(`/proc/${pid}/task/${tid}/stat`);
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '?';
    const wchan = read(`/proc/${pid}/task/${tid}/wchan`);
    return `${read(`/proc/${pid}/task/${tid}/comm`)}:${state}${state === 'R' || wchan === '0' ? '' : `/${wchan}`}`;
  });
  const call = read(`/proc/${pid}/syscall`).split(' ')[0] ?? '?';
  const known = process.arch === 'x64' ? SYSCALL_NAMES[call] : undefined;
  const named = call === 'running' ? 'running' : (known ?? `syscall ${call}`);
  return `main thread in ${named}; threads ${threads.join(' ')}`;
}

/** Runs a Node script with the same node binary as the tests. */
export function spawnNode(
  scriptPath: string,
  args: string[] = [],
  options: SpawnNodeOptions = {},
): SpawnedProcess {
  const { nodeArgs = [], ...rest } = options;
  return spawnProcess(process.execPath, [...nodeArgs, scriptPath, ...args], rest);
}

/** Stops every process started through this module that is still running (use in afterAll/afterEach). */
export async function stopAll(graceMs = 10_000): Promise<void> {
  await Promise.all([...live].map((child) => child.stop(graceMs)));
}

/** A port that was free a moment ago on 127.0.0.1 (the OS picks it; we release it at once). */
export function getFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('Could not read the port of a freshly bound socket'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

function describeExit(status: ExitStatus): string {
  return status.signal ? `signal ${status.signal}` : `code ${String(status.code)}`;
}

function describeOutput(lines: readonly string[], stderr: string): string {
  const stdout = lines.slice(-20).join('\n');
  return `\n--- stdout (last lines) ---\n${stdout}\n--- stderr (tail) ---\n${stderr}`;
}
