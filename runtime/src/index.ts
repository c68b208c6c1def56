export {
  connectNatsDaemon,
  connectNatsWithRetry,
  describeNatsConnectError,
  isLoopbackHost,
  natsAccessOptions,
  natsConnectOptions,
  natsRequiresTls,
  natsRetryDelayMs,
  plaintextNatsUrls,
  plaintextNatsWarning,
  readNatsServerInfo,
  redactNatsUrl,
} from './natsConnect.js';
export type {
  NatsClientOptions,
  NatsConnectLogger,
  NatsConnectLoopOptions,
  NatsConnectProblem,
  NatsServerInfo,
} from './natsConnect.js';
export {
  describeError,
  isCasConflict,
  openBucket,
  openExistingBucket,
  requireTtlAtLeast,
  setBucketTtl,
} from './natsKv.js';
export type { BucketSpec, OpenBucket } from './natsKv.js';
export { NatsRequestError, requestReply, respond } from './request.js';
export { isUnderPm2, loadPm2Io } from './pm2Io.js';
export type { ActionReply, Pm2Io } from './pm2Io.js';
