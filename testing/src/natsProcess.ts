import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { lazyExitHook } from './exitHook.js';

/**
 * One nats-server process: spawning, readiness, stopping, and the exit-hook safety net that
 * kills every server this module started. Shared by startNatsServer and startNatsCluster.
 */

// Liveness bounds for waiting, not performance assertions.
const READY_TIMEOUT_MS = 30_000;
const POLL_MS = 50;
// JetStream shutdown is graceful but takes a moment (observed 1-2 s).
const STOP_GRACE_MS = 10_000;
const STDERR_TAIL_CHARS = 16_000;

// Pids of servers this module started and has not seen exit; only these are killed at exit.
const runningPids = new Set<number>();
// Temp dirs of servers not yet stopped, removed by the exit hook too.
const tempDirs = new Set<string>();

// Safety net if a suite forgot stop(): 'exit' handlers must be synchronous, so SIGKILL.
const installExitHook = lazyExitHook(() => {
  for (const pid of runningPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

export interface RunningServer {
  child: ChildProcess;
  pid: number;
  exited: Promise<void>;
  stderr: () => string;
}

/** The ports a ready server listens on, from its ports file. */
export interface ServerPorts {
  client: number;
  /** Present when the server was started with `-m`. */
  monitoring?: number;
}

/** A fresh temp dir that the exit hook removes if nobody else does. */
export async function makeTempDir(prefix: string): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  await fsp.rm(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/**
 * Starts a server on ports it (or another of its runs) just released. Another process may grab
 * a port in between (rare); retry a few times rather than fail a fault test for that.
 */
export async function relaunchOnPort(
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

/**
 * Launches a server that writes its ports file into `portsDir` (made here, so the file tells when
 * it is ready); `ready` resolves with its ports. The server is returned at once, so a caller can
 * stop it when it never gets ready.
 */
export async function launchWithPorts(
  bin: string,
  args: string[],
  portsDir: string,
  onOutput?: (text: string) => void,
): Promise<{ server: RunningServer; ready: Promise<ServerPorts> }> {
  await fsp.mkdir(portsDir, { recursive: true });
  const server = launch(bin, args, onOutput);
  return { server, ready: waitUntilReady(server, portsDir) };
}

export function launch(bin: string, args: string[], onOutput?: (text: string) => void): RunningServer {
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

export function hasExited(server: RunningServer): boolean {
  return server.child.exitCode !== null || server.child.signalCode !== null || server.pid < 0;
}

/** SIGTERM, SIGKILL after a grace period; resolves once the process has exited. */
export async function terminate(server: RunningServer): Promise<void> {
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

/** SIGKILL (a crash: no graceful JetStream shutdown); resolves once the process has exited. */
export async function kill(server: RunningServer): Promise<void> {
  if (hasExited(server)) return server.exited;
  signal(server.pid, 'SIGKILL');
  await server.exited;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/** Waits for the ports file of this pid, then for the server's INFO greeting; returns its ports. */
export async function waitUntilReady(server: RunningServer, portsDir: string): Promise<ServerPorts> {
  const portsFile = path.join(portsDir, `nats-server_${server.pid}.ports`);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let ports: ServerPorts | undefined;
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
      if (ports === undefined) ports = readPorts(await fsp.readFile(portsFile, 'utf8'));
      if (ports !== undefined && (await greets(ports.client))) return ports;
      lastProblem = ports === undefined ? 'ports file incomplete' : `no INFO from port ${ports.client}`;
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

// Ports file: {"nats":["nats://127.0.0.1:42803"],"monitoring":["http://127.0.0.1:8222"], ...}
function readPorts(text: string): ServerPorts | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined; // Written but not complete yet.
  }
  const client = firstPort((parsed as { nats?: unknown }).nats);
  if (client === undefined) return undefined;
  const monitoring = firstPort((parsed as { monitoring?: unknown }).monitoring);
  return monitoring === undefined ? { client } : { client, monitoring };
}

function firstPort(urls: unknown): number | undefined {
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

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
