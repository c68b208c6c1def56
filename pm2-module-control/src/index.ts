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
