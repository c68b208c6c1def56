import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface NatsServerOptions {
  /** Enable JetStream with a throwaway store (default true: KV needs it). */
  jetstream?: boolean;
  /** Extra nats-server flags, appended after ours (e.g. `['--auth', 'secret']`). */
  args?: string[];
  /** nats-server config file text; written into the temp dir and passed with `-c`. */
  config?: string;
  /**
   * The scheme of `url` (default `nats`). `tls` when the config requires TLS, so clients that
   * follow `url` insist on it. Readiness is unaffected: the INFO greeting precedes TLS.
   */
  scheme?: 'nats' | 'tls';
}

export interface NatsServerHandle {
  readonly url: string;
  readonly port: number;
  /** The current server pid (changes after restart()). */
  readonly pid: number;
  /** JetStream store directory (kept across restart()). */
  readonly storeDir: string;
  /** SIGTERM this pid, SIGKILL after a grace period, then remove the temp dir. */
  stop(): Promise<void>;
  /** Stop and start again on the same port and store, for NATS-restart fault tests. */
  restart(): Promise<void>;
  /**
   * What nats-server logged so far (all its runs, last 4 MB): authentication failures, TLS
   * handshake errors and permission violations (`[ERR] ... Violation ...`) appear here.
   */
  log(): string;
}

export const NATS_INSTALL_HINT =
  'Install it with `apt-get install -y nats-server` (Debian/Ubuntu) or set NATS_SERVER_BIN to the path of a nats-server binary.';

// Debian installs nats-server into /usr/sbin, which is often not on a non-root PATH.
const WELL_KNOWN_PATHS = ['/usr/sbin/nats-server', '/usr/bin/nats-server'];

// Liveness bounds for waiting, not performance assertions.
const READY_TIMEOUT_MS = 30_000;
const POLL_MS = 50;
// JetStream shutdown is graceful but takes a moment (observed 1-2 s).
const STOP_GRACE_MS = 10_000;
const STDERR_TAIL_CHARS = 16_000;
const LOG_CHARS = 4_000_000;

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** nats-server path by NATS_SERVER_BIN, then PATH, then the Debian locations; throws with install help. */
export function findNatsServerBinary(): string {
  const fromEnv = process.env['NATS_SERVER_BIN'];
  if (fromEnv) {
    // An explicit choice that does not work is an error, not a cue to pick another binary.
    if (isExecutable(fromEnv)) return fromEnv;
    throw new Error(
      `NATS_SERVER_BIN is set to ${fromEnv}, which is not an executable file. ${NATS_INSTALL_HINT}`,
    );
  }
  const onPath = (process.env['PATH'] ?? '')
    .split(path.delimiter)
    .filter((dir) => dir !== '')
    .map((dir) => path.join(dir, 'nats-server'));
  const found = [...onPath, ...WELL_KNOWN_PATHS].find(isExecutable);
  if (found) return found;
  throw new Error(
    `nats-server was not found (looked on PATH and in ${WELL_KNOWN_PATHS.join(', ')}). ${NATS_INSTALL_HINT}`,
  );
}

// Pids of servers this module started and has not seen exit; only these are killed at exit.
const runningPids = new Set<number>();
// Temp dirs of servers not yet stopped, removed by the exit hook too.
const tempDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Safety net if a suite forgot stop(): 'exit' handlers must be synchronous, so SIGKILL.
  process.on('exit', () => {
    for (const pid of runningPids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  });
}

interface RunningServer {
  child: ChildProcess;
  pid: number;
  exited: Promise<void>;
  stderr: () => string;
}

/** Starts a private nats-server on 127.0.0.1 with a random port and waits until it greets clients. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const bin = findNatsServerBinary();
  const jetstream = options.jetstream ?? true;
  const tmpDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'discluster-nats-'));
  tempDirs.add(tmpDir);
  const storeDir = path.join(tmpDir, 'store');
  const portsDir = path.join(tmpDir, 'ports');

  const baseArgs: string[] = [];
  if (options.config !== undefined) {
    const configPath = path.join(tmpDir, 'nats-server.conf');
    await fsp.writeFile(configPath, options.config);
    baseArgs.push('-c', configPath);
  }
  if (jetstream) baseArgs.push('-js', '-sd', storeDir);

  const argsFor = (port: number): string[] => [
    ...baseArgs,
    // Command-line flags override the config file, so loopback and the port always hold.
    '-a',
    '127.0.0.1',
    '-p',
    String(port),
    '--ports_file_dir',
    portsDir,
    ...(options.args ?? []),
  ];

  let log = '';
  const keepLog = (text: string): void => {
    log += text;
    if (log.length > LOG_CHARS) log = log.slice(-LOG_CHARS);
  };

  let server: RunningServer;
  let port: number;
  try {
    await fsp.mkdir(portsDir);
    server = launch(bin, argsFor(-1), keepLog);
    port = await waitUntilReady(server, portsDir);
  } catch (error) {
    await removeTempDir(tmpDir);
    throw error;
  }

  let stopped = false;
  const handle: NatsServerHandle = {
    url: `${options.scheme ?? 'nats'}://127.0.0.1:${port}`,
    port,
    get pid() {
      return server.pid;
    },
    storeDir,
    async stop() {
      if (stopped) return;
      stopped = true;
      await terminate(server);
      await removeTempDir(tmpDir);
    },
    async restart() {
      if (stopped) throw new Error('restart() called on a stopped nats-server');
      await terminate(server);
      server = await relaunchOnPort(bin, argsFor(port), portsDir, keepLog);
    },
    log: () => log,
  };
  return handle;
}

async function removeTempDir(dir: string): Promise<void> {
  await fsp.rm(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/**
 * Starts the server again on a port it just released. Another process may grab the port
 * in between (rare); retry a few times rather than fail a fault test for that.
 */
async function relaunchOnPort(
  bin: string,
  args: string[],
  portsDir: string,
  onOutput?: (text: string) => void,
): Promise<RunningServer> {
  for (let attempt = 1; ; attempt++) {
    // A fresh ports file tells us when the new process is ready.
    await fsp.rm(portsDir, { recursive: true, force: true });
    await fsp.mkdir(portsDir);
    const server = launch(bin, args, onOutput);
    try {
      await waitUntilReady(server, portsDir);
      return server;
    } catch (error) {
      const busy = /address already in use/i.test(server.stderr());
      if (!busy || attempt >= 5) throw error;
      await sleep(200 * attempt);
    }
  }
}

function launch(bin: string, args: string[], onOutput?: (text: string) => void): RunningServer {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderrTail = '';
  const keepTail = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    stderrTail = (stderrTail + text).slice(-STDERR_TAIL_CHARS);
    onOutput?.(text);
  };
  // nats-server logs to stderr; drain both pipes so it can never block on a full pipe.
  child.stderr?.on('data', keepTail);
  child.stdout?.on('data', keepTail);
  const pid = child.pid;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (error) => {
      stderrTail += `\n[spawn error] ${error.message}`;
      resolve();
    });
  }).then(() => {
    if (pid !== undefined) runningPids.delete(pid);
  });
  if (pid !== undefined) {
    runningPids.add(pid);
    installExitHook();
  }
  return { child, pid: pid ?? -1, exited, stderr: () => stderrTail };
}

function hasExited(server: RunningServer): boolean {
  return server.child.exitCode !== null || server.child.signalCode !== null || server.pid < 0;
}

async function terminate(server: RunningServer): Promise<void> {
  if (hasExited(server)) return server.exited;
  // Signal exactly our pid; never by name.
  signal(server.pid, 'SIGTERM');
  const timer = setTimeout(() => signal(server.pid, 'SIGKILL'), STOP_GRACE_MS);
  try {
    await server.exited;
  } finally {
    clearTimeout(timer);
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/** Waits for the ports file of this pid, then for the server's INFO greeting; returns the port. */
async function waitUntilReady(server: RunningServer, portsDir: string): Promise<number> {
  const portsFile = path.join(portsDir, `nats-server_${server.pid}.ports`);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let port: number | undefined;
  let lastProblem = 'no ports file yet';
  while (Date.now() < deadline) {
    if (hasExited(server)) {
      // Let the last stderr bytes arrive before quoting them.
      await Promise.race([server.exited, sleep(500)]);
      await sleep(50);
      throw new Error(
        `nats-server (pid ${server.pid}) exited before it was ready ` +
          `(code ${String(server.child.exitCode)}, signal ${String(server.child.signalCode)}).\n` +
          `--- nats-server stderr ---\n${server.stderr()}`,
      );
    }
    try {
      if (port === undefined) port = readPort(await fsp.readFile(portsFile, 'utf8'));
      if (port !== undefined && (await greets(port))) return port;
      lastProblem = port === undefined ? 'ports file incomplete' : `no INFO from port ${port}`;
    } catch (error) {
      lastProblem = error instanceof Error ? error.message : String(error);
    }
    await sleep(POLL_MS);
  }
  // Do not leave a half-started server behind.
  await terminate(server);
  throw new Error(
    `nats-server (pid ${server.pid}) was not ready within ${READY_TIMEOUT_MS} ms (${lastProblem}).\n` +
      `--- nats-server stderr ---\n${server.stderr()}`,
  );
}

// Ports file: {"nats":["nats://127.0.0.1:42803"], ...}
function readPort(text: string): number | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined; // Written but not complete yet.
  }
  const urls = (parsed as { nats?: unknown }).nats;
  const first = Array.isArray(urls) ? (urls[0] as unknown) : undefined;
  if (typeof first !== 'string') return undefined;
  const port = Number(new URL(first).port);
  return Number.isInteger(port) && port > 0 ? port : undefined;
}

/** True once a TCP client on the port receives the server's INFO line. */
function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let received = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2_000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('data', (chunk) => {
      received += chunk.toString('utf8');
      if (received.includes('\r\n')) done(received.startsWith('INFO '));
    });
    socket.on('close', () => done(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
