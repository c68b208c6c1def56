import { createRequire } from 'node:module';

/**
 * The part of pm2's programmatic API CONTROL uses, promisified. pm2's own typings miss options we
 * need (`filter_env`, `namespace` on every call), so this is a narrow hand-written interface.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- pm2 packets and descriptions are loosely typed
export type Pm2Json = Record<string, any>;
type Callback<T> = (error: Error | null, result: T) => void;

interface RawPm2 {
  connect(callback: (error: Error | null) => void): void;
  disconnect(): void;
  start(options: Pm2Json, callback: Callback<Pm2Json[]>): void;
  restart(name: string | number, callback: Callback<Pm2Json[]>): void;
  delete(name: string | number, callback: Callback<Pm2Json[]>): void;
  list(callback: Callback<Pm2Json[]>): void;
  sendDataToProcessId(pmId: number, packet: Pm2Json, callback: Callback<Pm2Json>): void;
  launchBus(callback: Callback<Pm2Bus>): void;
}

/** pm2's event bus (`$PM2_HOME/pub.sock`). */
export interface Pm2Bus {
  on(event: string, listener: (packet: Pm2Json) => void): void;
  close?(): void;
}

/** Promisified pm2 calls. */
export interface Pm2Client {
  start(options: Pm2Json): Promise<Pm2Json[]>;
  /** By pm_id: a name could also match an operator's process in another namespace. */
  restart(pmId: number): Promise<void>;
  delete(pmId: number): Promise<void>;
  list(): Promise<Pm2Json[]>;
  send(pmId: number, topic: string, data: unknown): Promise<void>;
  bus(): Promise<Pm2Bus>;
  disconnect(): void;
}

function call<T>(run: (callback: Callback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => run((error, result) => (error ? reject(error) : resolve(result))));
}

/**
 * Connects to the pm2 daemon of `PM2_HOME` (the one a module runs under: the daemon injects
 * PM2_HOME into its apps). Never `connect(true)`: an in-process daemon would die with CONTROL.
 */
export async function connectPm2(): Promise<Pm2Client> {
  const pm2 = createRequire(__filename)('pm2') as RawPm2;
  await call<void>((cb) => pm2.connect((error) => cb(error, undefined)));
  return {
    start: (options) => call((cb) => pm2.start(options, cb)),
    restart: async (name) => void (await call<Pm2Json[]>((cb) => pm2.restart(name, cb))),
    delete: async (name) => void (await call<Pm2Json[]>((cb) => pm2.delete(name, cb))),
    list: () => call((cb) => pm2.list(cb)),
    send: async (pmId, topic, data) =>
      void (await call<Pm2Json>((cb) =>
        pm2.sendDataToProcessId(pmId, { type: 'process:msg', topic, data }, cb),
      )),
    bus: () => call((cb) => pm2.launchBus(cb)),
    disconnect: () => pm2.disconnect(),
  };
}
