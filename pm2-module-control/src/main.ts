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
import { runModuleProcess } from 'discluster-runtime/module';
import { startControl } from './control.js';

export { MODULE_NAME, startControl } from './control.js';
export type { ControlHandle } from './control.js';
export { ClusterSupervisor } from './clusters/supervisor.js';
export type { HostAssignment, SupervisorOptions } from './clusters/supervisor.js';
export { DEFAULT_LEASE_TTL_MS, LeaseKeeper } from './leases/leaseKeeper.js';
export type { LeaseKeeperOptions } from './leases/leaseKeeper.js';
export type { LeaseTimes } from './leases/leaseTimes.js';
export type * from './leases/shardLeases.js';
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

/**
 * Starts CONTROL as a long-lived process (module or foreground) with discluster-runtime's
 * `runModuleProcess`: a crash handler that really exits, and a clean stop on SIGINT/SIGTERM. Cluster
 * processes are pm2's, not our children: they keep serving while CONTROL restarts.
 */
export function runControlProcess(env: NodeJS.ProcessEnv): void {
  runModuleProcess('discluster-control', () => startControl(env));
}

// pm2's fork container loads the script with `Module._load(script, null, true)`, which makes it the
// main module as `node` does; a file that require()s this one (a wrapper) calls runControlProcess.
if (require.main === module) runControlProcess(process.env);
