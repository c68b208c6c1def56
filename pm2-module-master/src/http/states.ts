import { ClusterStatusEntrySchema, ShardStatusEntrySchema } from 'discluster-protocol';

/** Every shard state of `discluster status`, in the order the page's legend lists them. */
export const SHARD_STATES = ShardStatusEntrySchema.shape.state.options;

/** Every cluster state of `discluster status`. */
export const CLUSTER_STATES = ClusterStatusEntrySchema.shape.state.options;
