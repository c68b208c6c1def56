/**
 * A private pm2 daemon for tests (not a test file). pm2 computes its paths from PM2_HOME when it
 * is first required, so {@link startPm2} sets PM2_HOME before requiring it, and a test file may
 * start one daemon only (vitest runs each file in its own process). The daemon is always ended by
 * {@link Pm2Harness.kill}, with the pid in `$PM2_HOME/pm2.pid` as a safety net. The in-process
 * (`connect(true)`) mode is never used: its teardown calls process.exit in the test runner.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { CLUSTER_CONTROL_TOPIC, type ClusterToControl } from 'discluster-protocol';
import type { ControlPeer } from './control';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- pm2's packets and descriptions are loosely typed
type Json = Record<string, any>;
type Callback<T = unknown> = (error: Error | null, result: T) => void;

/** The part of pm2's programmatic API the tests use. */
interface Pm2Api {
  connect(callback: (error: Error | null) => void): void;
  disconnect(): void;
  start(options: Json, callback: Callback<Json[]>): void;
  restart(name: string, callback: Callback<Json[]>): void;
  delete(name: string, callback: Callback<Json[]>): void;
  list(callback: Callback<Json[]>): void;
  describe(name: string | number, callback: Callback<Json[]>): void;
  msgProcess(command: Json, callback: Callback<Json>): void;
  sendDataToProcessId(pmId: number, packet: Json, callback: Callback<Json>): void;
  launchBus(
    callback: (
      error: Error | null,
      bus: { on(event: string, listener: (packet: Json) => void): void },
    ) => void,
  ): void;
  kill(callback: Callback<unknown>): void;
}

/** A pm2 app as CONTROL sees it: its messages, and a way to send it CONTROL messages. */
export interface Pm2App extends ControlPeer {
  readonly name: string;
  /** `process:event` packets (`start`, `online`, `exit`, …) of this app, in order. */
  readonly processEvents: Json[];
  pmId(): Promise<number>;
  /** Sends any packet with this topic (for messages that are not CONTROL's). */
  sendTopic(topic: string, data: unknown): Promise<void>;
}

export interface Pm2Harness {
  readonly home: string;
  readonly api: Pm2Api;
  /** Starts `options.name` and tracks its bus traffic. */
  start(options: Json): Promise<Pm2App>;
  restart(name: string): Promise<void>;
  delete(name: string): Promise<void>;
  list(): Promise<Json[]>;
  describe(name: string | number): Promise<Json | undefined>;
  /** What `pm2 trigger <name> <action>` does, without its races (see the implementation). */
  trigger(name: string, action: string): Promise<unknown>;
  /** Runs the pm2 CLI against this daemon (bounded: a CLI that hangs fails the call). */
  cli(...args: string[]): Promise<{ stdout: string; stderr: string }>;
  /** Ends the daemon (and every app); safe to call twice. */
  kill(): Promise<void>;
}

const PM2_BIN = path.join(path.dirname(require.resolve('pm2/package.json')), 'bin', 'pm2');

/** Liveness bound of one pm2 call: a hang fails the test with the call's name instead of at its timeout. */
const CALL_TIMEOUT_MS = 30_000;

function call<T>(run: (callback: Callback<T>) => void, what = 'a pm2 call'): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${what} did not answer within ${CALL_TIMEOUT_MS} ms`)),
      CALL_TIMEOUT_MS,
    );
    run((error, result) => {
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(result);
    });
  });
}

/** Creates a private PM2_HOME, starts a daemon there and listens to its bus. */
export async function startPm2(): Promise<Pm2Harness> {
  // Short: pm2's unix sockets live here and socket paths are limited to ~107 bytes.
  const home = fs.mkdtempSync('/tmp/pm2-');
  process.env['PM2_HOME'] = home;
  process.env['PM2_DISCRETE_MODE'] = 'true'; // no banner
  process.env['PM2_DISABLE_VERSION_CHECK'] = 'true'; // no network call from the daemon
  const api = createRequire(__filename)('pm2') as Pm2Api;
  await call<void>((cb) => api.connect((error) => cb(error, undefined)));
  const bus = await call<{ on(event: string, listener: (packet: Json) => void): void }>((cb) =>
    api.launchBus(cb),
  );
  const apps = new Map<string, { received: ClusterToControl[]; processEvents: Json[] }>();
  const replyWaiters = new Set<(packet: Json) => void>();
  bus.on('axm:reply', (packet) => {
    for (const waiter of replyWaiters) waiter(packet);
  });
  const track = (name: string) => {
    let entry = apps.get(name);
    if (!entry) apps.set(name, (entry = { received: [], processEvents: [] }));
    return entry;
  };
  bus.on('process:msg', (packet) => {
    if (packet['data'] !== undefined) track(packet['process'].name).received.push(packet['data']);
  });
  bus.on('process:event', (packet) => track(packet['process'].name).processEvents.push(packet));

  let killed = false;
  const describe = async (name: string | number) =>
    (await call<Json[]>((cb) => api.describe(name, cb), `pm2 describe ${name}`))[0];
  const harness: Pm2Harness = {
    home,
    api,
    async start(options) {
      const name = String(options['name']);
      const entry = track(name);
      await call<Json[]>((cb) => api.start(options, cb), `pm2 start ${name}`);
      const pmId = async (): Promise<number> => {
        const description = await describe(name);
        if (!description) throw new Error(`pm2 does not know ${name}`);
        return description['pm_id'] as number;
      };
      const sendTopic = async (topic: string, data: unknown): Promise<void> => {
        const id = await pmId();
        await call<Json>(
          (cb) => api.sendDataToProcessId(id, { topic, data, type: 'process:msg' }, cb),
          `pm2 sendDataToProcessId ${id}`,
        );
      };
      return {
        name,
        received: entry.received,
        processEvents: entry.processEvents,
        pmId,
        sendTopic,
        send: (data) => sendTopic(CLUSTER_CONTROL_TOPIC, data),
      };
    },
    restart: async (name) => void (await call<Json[]>((cb) => api.restart(name, cb), `pm2 restart ${name}`)),
    delete: async (name) => void (await call<Json[]>((cb) => api.delete(name, cb), `pm2 delete ${name}`)),
    list: () => call<Json[]>((cb) => api.list(cb), 'pm2 list'),
    describe,
    // pm2.trigger() opens a new bus per call and counts replies against a number it only learns
    // when its RPC returns: under load the reply can beat either, and it then waits forever. This
    // does the same (an action message to the app, one `axm:reply` back) on the bus already open.
    trigger: (name, action) =>
      call<unknown>((cb) => {
        const waiter = (packet: Json): void => {
          if (packet['process']?.name !== name || packet['data']?.action_name !== action) return;
          replyWaiters.delete(waiter);
          cb(null, packet['data'].return);
        };
        replyWaiters.add(waiter);
        api.msgProcess({ name, msg: action }, (error) => {
          if (!error) return;
          replyWaiters.delete(waiter);
          cb(error, undefined);
        });
      }, `pm2 trigger ${name} ${action}`),
    cli: async (...args) => {
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [PM2_BIN, ...args], {
        timeout: CALL_TIMEOUT_MS,
        // require('pm2') set PM2_PROGRAMMATIC in this process, which would silence the CLI's output.
        env: { ...process.env, PM2_HOME: home, PM2_PROGRAMMATIC: undefined },
        maxBuffer: 64 * 1024 * 1024,
      });
      return { stdout, stderr };
    },
    async kill() {
      if (killed) return;
      killed = true;
      try {
        await call<unknown>((cb) => api.kill(cb));
      } finally {
        api.disconnect();
        killDaemonByPidFile(home);
      }
    },
  };
  return harness;
}

/** Safety net: SIGTERM (never SIGKILL, which would orphan the apps) to the daemon of `home`. */
export function killDaemonByPidFile(home: string): void {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(path.join(home, 'pm2.pid'), 'utf8'));
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0) return;
  // The pid file may outlive the daemon; never signal a process that merely reused its pid.
  let cmdline = '';
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return;
  }
  if (!/pm2|God Daemon/i.test(cmdline)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // Already gone.
  }
}
