export { MODULE_NAME, startControl } from './control.js';
export type { ControlHandle } from './control.js';
export { ClusterSupervisor } from './supervisor.js';
export type { HostAssignment, SupervisorOptions } from './supervisor.js';
export { DEFAULT_RESTART_POLICY, backoffDelay, decideOnExit, isFailedStart } from './restartPolicy.js';
export type { ExitFacts, ExitKind, RestartDecision, RestartPolicyOptions } from './restartPolicy.js';
