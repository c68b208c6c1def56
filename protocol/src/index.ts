export { DisclusterError, ErrorCode, WIRE_ERROR_FALLBACK, isDisclusterError, toWireError } from './errors.js';
export type { WireError } from './errors.js';
export {
  BucketPurpose,
  DEFAULT_BOT,
  budgetBucket,
  budgetKey,
  budgetRefreshKey,
  identifyBucket,
  identifySlotKey,
  identifyWaiterKey,
  identifyWaitersBucket,
  handoverBucket,
  handoverKey,
  leaderBucket,
  leaderKey,
  leaseBucket,
  leaseKey,
  masterBucket,
  planKey,
  restBucket,
  restGlobalSlotKey,
  restInvalidKey,
  restRouteKey,
  restTokenRejectedKey,
  sessionBucket,
  sessionKey,
  validateBotNamespace,
  validateToken,
} from './kv.js';
export type { IdentifyWaiterKeyParts } from './kv.js';
export {
  BudgetRecordSchema,
  BudgetRefreshClaimSchema,
  IdentifySlotRecordSchema,
  IdentifyWaiterRecordSchema,
  LeaderRecordSchema,
  PlanRecordSchema,
  SessionRecordSchema,
  ShardLeaseRecordSchema,
  decodeRecord,
  encodeRecord,
} from './schemas.js';
export type {
  BudgetRecord,
  BudgetRefreshClaim,
  DecodeResult,
  IdentifySlotRecord,
  IdentifyWaiterRecord,
  LeaderRecord,
  PlanRecord,
  SessionRecord,
  ShardLeaseRecord,
} from './schemas.js';
export {
  RestGlobalSlotRecordSchema,
  RestInvalidCountRecordSchema,
  RestRouteRecordSchema,
  RestTokenRejectedRecordSchema,
} from './restRecords.js';
export type {
  RestGlobalSlotRecord,
  RestInvalidCountRecord,
  RestRouteRecord,
  RestTokenRejectedRecord,
} from './restRecords.js';
export { handoverSubjects, ipcSubjects } from './subjects.js';
export { IpcEnvelopeSchema, IpcReplySchema, MAX_IPC_NAME_LENGTH } from './ipc.js';
export type { IpcEnvelope, IpcReply } from './ipc.js';
export {
  AssignMessageSchema,
  AssignmentSchema,
  CLUSTER_CONTROL_TOPIC,
  CLUSTER_ID_ENV,
  ClusterToControlSchema,
  ConfirmReplySchema,
  ControlToClusterSchema,
  FenceMessageSchema,
  GatewayBotSchema,
  KeepaliveMessageSchema,
  NatsAccessSchema,
  ShutdownMessageSchema,
} from './clusterControl.js';
export type { AssignMessage, ClusterToControl, ControlToCluster, NatsAccess } from './clusterControl.js';
export {
  CommonConfigShape,
  ControlConfigSchema,
  MasterConfigSchema,
  formatConfigIssues,
  loadModuleConfig,
} from './config.js';
export type { ConfigIssue, ConfigResult, ConfigSources, ControlConfig, MasterConfig } from './config.js';
export { ShardStatusSchema } from './clusterControl.js';
export { SHARD_STATES, ShardStateSchema } from './shardStates.js';
export type { ShardState } from './shardStates.js';
export { fleetSubjects, subjectHostId } from './subjects.js';
export {
  AssignCommandSchema,
  ClusterAssignmentSchema,
  ClusterFailedEventSchema,
  ClusterReportSchema,
  FatalEventSchema,
  FleetEventSchema,
  FleetReplySchema,
  HostAnnounceSchema,
  HostCommandSchema,
  HostHeartbeatSchema,
  HostIdSchema,
  RevokeCommandSchema,
  RollingRestartCommandSchema,
  StopAllCommandSchema,
} from './fleet.js';
export type {
  AssignCommand,
  ClusterAssignment,
  ClusterFailedEvent,
  ClusterReport,
  FatalEvent,
  FleetEvent,
  FleetReply,
  HostAnnounce,
  HostCommand,
  HostHeartbeat,
} from './fleet.js';
export {
  HostPublicKeySchema,
  SealedBoxSchema,
  generateHostKeyPair,
  openSealed,
  sealForHost,
  tokenContext,
} from './sealedToken.js';
export type { HostKeyPair, SealedBox } from './sealedToken.js';
export { clusterSize, splitIntoClusters } from './clusterPlan.js';
export type { PlannedCluster, SplitOptions } from './clusterPlan.js';
export {
  ClusterStatusEntrySchema,
  FleetStatusSchema,
  HostStatusEntrySchema,
  MasterReplySchema,
  MasterRequestSchema,
  ReshardProgressSchema,
  ShardStatusEntrySchema,
  SnowflakeSchema,
  WhichResultSchema,
  shardForGuild,
} from './operator.js';
export type { FleetStatus, MasterReply, MasterRequest, ReshardProgress, WhichResult } from './operator.js';
export {
  NATS_ROLES,
  natsHostPermissions,
  natsInboxPrefix,
  natsPermissions,
  renderNatsAuthorization,
  renderNatsPermissions,
} from './natsSecurity.js';
export type {
  NatsCustomUser,
  NatsRole,
  NatsRolePermissions,
  NatsRoleUser,
  NatsSettings,
  NatsUserIdentity,
} from './natsSecurity.js';
export {
  HandoverChunkSchema,
  HandoverCountSchema,
  HandoverReplySchema,
  HandoverRequestSchema,
  HandoverStepSchema,
} from './handover.js';
export type { HandoverReply, HandoverRequest, HandoverStep } from './handover.js';
