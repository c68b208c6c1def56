export { DisclusterError, ErrorCode, isDisclusterError } from './errors.js';
export type { WireError } from './errors.js';
export {
  BucketPurpose,
  DEFAULT_BOT,
  budgetBucket,
  budgetKey,
  identifyBucket,
  identifySlotKey,
  identifyWaiterKey,
  identifyWaitersBucket,
  sessionBucket,
  sessionKey,
  validateBotNamespace,
  validateToken,
} from './kv.js';
export type { IdentifyWaiterKeyParts } from './kv.js';
export {
  BudgetRecordSchema,
  IdentifySlotRecordSchema,
  IdentifyWaiterRecordSchema,
  SessionRecordSchema,
  decodeRecord,
  encodeRecord,
} from './schemas.js';
export type {
  BudgetRecord,
  DecodeResult,
  IdentifySlotRecord,
  IdentifyWaiterRecord,
  SessionRecord,
} from './schemas.js';
export { ipcSubjects } from './subjects.js';
export { IpcEnvelopeSchema, IpcReplySchema, MAX_IPC_NAME_LENGTH } from './ipc.js';
export type { IpcEnvelope, IpcReply } from './ipc.js';
export {
  AssignMessageSchema,
  CLUSTER_CONTROL_TOPIC,
  CLUSTER_ID_ENV,
  ClusterToControlSchema,
  ConfirmReplySchema,
  ControlToClusterSchema,
  GatewayBotSchema,
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
