// KV helpers live in discluster-protocol (shared with the SDK and MASTER).
export { describeError, isCasConflict, openBucket } from 'discluster-protocol';
export type { BucketSpec, OpenBucket } from 'discluster-protocol';
