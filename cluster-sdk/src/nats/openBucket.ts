// Bucket opening lives in discluster-protocol (shared with CONTROL and MASTER).
export { openBucket, requireTtlAtLeast } from 'discluster-protocol';
export type { BucketSpec, OpenBucket } from 'discluster-protocol';
