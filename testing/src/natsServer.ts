import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { launchWithPorts, makeTempDir, relaunchOnPort, removeTempDir, terminate } from './natsProcess.js';
import type { RunningServer } from './natsProcess.js';

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

/** Starts a private nats-server on 127.0.0.1 with a random port and waits until it greets clients. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const bin = findNatsServerBinary();
  const jetstream = options.jetstream ?? true;
  const tmpDir = await makeTempDir('discluster-nats-');
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
    const launched = await launchWithPorts(bin, argsFor(-1), portsDir, keepLog);
    server = launched.server;
    port = (await launched.ready).client;
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
