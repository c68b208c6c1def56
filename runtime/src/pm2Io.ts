/** `pm2 trigger` hands an action its answer callback; it must be called exactly once. */
export type ActionReply = (data: unknown) => void;

/** The part of `@pm2/io` (or the copy pm2 itself injects) that CONTROL and the SDK use. */
export interface Pm2Io {
  /** A gauge read by calling `value` every second (pm2 samples metrics every 990 ms). */
  metric(options: { name: string; value: () => number | string; unit?: string }): unknown;
  /**
   * `pm2 trigger <app> <name> [param]`; `reply` must be called exactly once. @pm2/io passes the
   * parameter only to a handler declared with two arguments (it looks at `handler.length`).
   */
  action(
    name: string,
    handler: ((reply: ActionReply) => void) | ((param: unknown, reply: ActionReply) => void),
  ): unknown;
  init(config: object): unknown;
}

/**
 * True when pm2 started this process: pm2 sets `pm_id` in every app's environment. Only then is
 * there a daemon to send metrics to; elsewhere (a foreground bin, plain `node`, a test runner with
 * its own IPC channel) loading @pm2/io would send `axm:*` messages to whoever the parent is.
 */
export function isUnderPm2(env: NodeJS.ProcessEnv = process.env): boolean {
  return env['pm_id'] !== undefined;
}

// Metrics and actions only: no process-wide hooks (no exception handlers: the process installs its
// own, which really exit; no http patching; no inspector profiling).
const LEAN_CONFIG = {
  catchExceptions: false,
  profiling: false,
  metrics: { v8: true, eventLoop: true, network: false, runtime: false, http: false },
};

/** The global key under which @pm2/io (and pm2's injected copy) keeps its singleton. */
const IO_KEY = Symbol.for('@pm2/io');

let loaded: Pm2Io | null | undefined;

/**
 * `@pm2/io`, only under pm2 (null elsewhere). pm2 normally injects its own instance before the app
 * starts (a global singleton): it is used as is, since bot code may already have registered metrics
 * on it. Only when there is none (an app started with `pmx: false`) is @pm2/io loaded, and that
 * instance initialised without its default hooks.
 */
export function loadPm2Io(): Pm2Io | null {
  if (loaded !== undefined) return loaded;
  if (!isUnderPm2()) return (loaded = null);
  // pm2's process wrapper injects its own copy (pm2/modules/pm2-io-bpm) under this symbol: use it
  // as it is. Requiring @pm2/io would load all of its code only to hand back the same instance.
  const injected = (globalThis as Record<symbol, unknown>)[IO_KEY] as Pm2Io | undefined;
  if (injected) return (loaded = injected);
  // A plain require on purpose: a top-level import would load @pm2/io in every process.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const io = require('@pm2/io') as Pm2Io;
  io.init(LEAN_CONFIG);
  return (loaded = io);
}
