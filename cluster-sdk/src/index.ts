export type { IdentifyThrottler, IdentifyWaitReason } from './identify/IdentifyThrottler.js';
export { LocalIdentifyThrottler } from './identify/LocalIdentifyThrottler.js';
export { NatsIdentifyThrottler } from './identify/NatsIdentifyThrottler.js';
export type { NatsIdentifyThrottlerEvents } from './identify/NatsIdentifyThrottler.js';
export { natsIdentifyThrottlerBuilder } from './identify/natsIdentifyThrottlerBuilder.js';
export type {
  NatsIdentifyThrottlerBuilder,
  NatsIdentifyThrottlerBuilderOptions,
} from './identify/natsIdentifyThrottlerBuilder.js';
export {
  DISCORD_IDENTIFY_WINDOW_MS,
  DefaultNatsIdentifyThrottlerOptions,
  defaultSafetyMarginMs,
  rateLimitKey,
  resolveNatsIdentifyThrottlerOptions,
} from './identify/options.js';
export type {
  LocalIdentifyThrottlerOptions,
  NatsIdentifyThrottlerOptions,
  OptionalNatsIdentifyThrottlerOptions,
  RequiredNatsIdentifyThrottlerOptions,
  ResolvedNatsIdentifyThrottlerOptions,
} from './identify/options.js';
export { budgetFromLimit, checkBudget, mergeBudget } from './identify/budgetPolicy.js';
export type { BudgetCheck } from './identify/budgetPolicy.js';
export { NatsSessionStore } from './session/NatsSessionStore.js';
export type { NatsSessionStoreEvents, SessionStoreManagerOptions } from './session/NatsSessionStore.js';
export { DefaultNatsSessionStoreOptions, resolveNatsSessionStoreOptions } from './session/options.js';
export type {
  NatsSessionStoreOptions,
  OptionalNatsSessionStoreOptions,
  RequiredNatsSessionStoreOptions,
  ResolvedNatsSessionStoreOptions,
} from './session/options.js';
export { Cluster } from './cluster/Cluster.js';
export { isRestoredDispatch } from './cache/restoredDispatch.js';
export { GuildSnapshotStore } from './cache/GuildSnapshotStore.js';
export type {
  GuildSnapshotStoreOptions,
  RestoredSnapshot,
  SnapshotLoad,
} from './cache/GuildSnapshotStore.js';
export type { ClusterEvents, FatalShardClose } from './cluster/Cluster.js';
export type { ClusterAssignment, ClusterOptions } from './cluster/ClusterOptions.js';
export { defaultIdentifyThrottler, defaultSessionStore } from './cluster/clusterSeams.js';
export type {
  ClusterBuildContext,
  ClusterIdentifyThrottler,
  ClusterSessionStore,
} from './cluster/clusterSeams.js';
export type { ShardState, ShardStatus } from './cluster/ShardStatus.js';
export { ClusterGateway } from './cluster/ClusterGateway.js';
export type { ClusterGatewayHost, ClusterGatewayListener } from './cluster/ClusterGateway.js';
export { ClusterIpc } from './ipc/ClusterIpc.js';
export type {
  ClusterIpcBinding,
  ClusterIpcOptions,
  IpcHandler,
  IpcListener,
  IpcRequestAllResult,
  IpcRequestOptions,
} from './ipc/ClusterIpc.js';
export { FleetRestLimiter } from './rest/FleetRestLimiter.js';
export type { FleetRestLimiterOptions, MakeRequest } from './rest/FleetRestLimiter.js';
export { restRouteOf } from './rest/restRoute.js';
export type { RestRoute } from './rest/restRoute.js';
export { decideRoute, mergeRouteAnswer, emptyRouteRecord } from './rest/routePolicy.js';
export type { RouteAnswer, RouteDecision, RoutePolicyOptions } from './rest/routePolicy.js';
export { chooseGlobalSlot } from './rest/globalSlotPolicy.js';
export { invalidRequestVerdict, INVALID_REQUEST_STEPS } from './rest/invalidRequestPolicy.js';
export type { InvalidRequestVerdict } from './rest/invalidRequestPolicy.js';
export { isInvalidRequest, readBucket, readRateLimited } from './rest/rateLimitHeaders.js';
