import { ClusterStatusEntrySchema } from 'discluster-protocol';

/** Every cluster state of `discluster status` (shard states: protocol's `SHARD_STATES`). */
export const CLUSTER_STATES = ClusterStatusEntrySchema.shape.state.options;
