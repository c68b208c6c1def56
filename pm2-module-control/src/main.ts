#!/usr/bin/env node
/**
 * discluster-control's one entry point, for all of package.json: the pm2 module's script (`apps`),
 * the foreground bin (`bin`) and the package's exports (`main`, `types`). Run as a program (pm2
 * loads it as the main module; so does `node dist/main.js` or the bin) it starts CONTROL; imported,
 * it only exports.
 *
 * Settings come from `process.env['discluster-control']` under pm2 (what `pm2 set
 * discluster-control:<key>` writes; not @pm2/io's `initModule`, which reads pm2's own package.json
 * when run under pm2) and from `DISCLUSTER_*` variables in the foreground.
 */
import { startControl, type ControlHandle } from './control.js';

export { MODULE_NAME, startControl } from './control.js';
export type { ControlHandle } from './control.js';
export { ClusterSupervisor } from './clusters/supervisor.js';
export type { HostAssignment, SupervisorOptions } from './clusters/supervisor.js';
export { DEFAULT_LEASE_TTL_MS, LeaseKeeper } from './leases/leaseKeeper.js';
export type {
  AcquireOptions,
  AcquireOutcome,
  ConfirmOutcome,
  LeaseClaim,
  LeaseHolder,
  LeaseKeeperOptions,
  LeaseTimes,
  ShardLeases,
} from './leases/leaseKeeper.js';
export { ROLLING_READY_TIMEOUT_MS, rollingRestart } from './clusters/rollingRestart.js';
export type { RollingOptions, RollingTarget } from './clusters/rollingRestart.js';
export { hostSummary, parseClusterId, registerPm2Surface } from './pm2/metricsAndActions.js';
export type { HostSurfaceSource } from './pm2/metricsAndActions.js';
export {
  DEFAULT_RESTART_POLICY,
  backoffDelay,
  decideOnExit,
  isFailedStart,
} from './clusters/restartPolicy.js';
export type { ExitFacts, ExitKind, RestartDecision, RestartPolicyOptions } from './clusters/restartPolicy.js';

/** How long a clean stop may take before the process exits anyway (pm2's kill_timeout is 10 s). */
const CLOSE_LIMIT_MS = 5_000;

/**
 * Starts CONTROL as a long-lived process (module or foreground) and wires process-level concerns:
 * a crash handler that really exits (pm2's injected APM would otherwise only log an unhandled
 * rejection and leave a half-dead CONTROL), and a clean stop on SIGINT/SIGTERM.
 */
export function runControlProcess(env: NodeJS.ProcessEnv): void {
  let handle: ControlHandle | undefined;
  const fail = (error: unknown) => {
    process.stderr.write(
      `discluster-control: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  };
  process.on('unhandledRejection', fail);
  process.on('uncaughtException', fail);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      // Cluster processes are pm2's, not our children: they keep serving while CONTROL restarts.
      // Bounded: with NATS already gone, draining the connection would wait forever.
      const closing = handle?.close() ?? Promise.resolve();
      const limit = new Promise((resolve) => setTimeout(resolve, CLOSE_LIMIT_MS).unref());
      void Promise.race([closing, limit]).finally(() => process.exit(0));
    });
  }
  startControl(env).then((started) => (handle = started), fail);
}

// pm2's fork container loads the script with `Module._load(script, null, true)`, which makes it the
// main module as `node` does; a file that require()s this one (a wrapper) calls runControlProcess.
if (require.main === module) runControlProcess(process.env);
