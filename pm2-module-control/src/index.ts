export { MODULE_NAME, startControl } from './control.js';
export type { ControlHandle } from './control.js';
export { ClusterSupervisor } from './supervisor.js';
export type { HostAssignment, SupervisorOptions } from './supervisor.js';
export { DEFAULT_LEASE_TTL_MS, LeaseKeeper } from './leaseKeeper.js';
export type {
  AcquireOptions,
  AcquireOutcome,
  ConfirmOutcome,
  LeaseClaim,
  LeaseHolder,
  LeaseKeeperOptions,
  ShardLeases,
} from './leaseKeeper.js';
export { ROLLING_READY_TIMEOUT_MS, rollingRestart } from './rollingRestart.js';
export type { RollingOptions, RollingTarget } from './rollingRestart.js';
export { hostSummary, parseClusterId, registerPm2Surface } from './pm2Surface.js';
export type { HostSurfaceSource } from './pm2Surface.js';
export { DEFAULT_RESTART_POLICY, backoffDelay, decideOnExit, isFailedStart } from './restartPolicy.js';
export type { ExitFacts, ExitKind, RestartDecision, RestartPolicyOptions } from './restartPolicy.js';
