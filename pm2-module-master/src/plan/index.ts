export {
  failoverPlan,
  hostWeight,
  initialPlan,
  movedShardCount,
  rebalancePlan,
  targetShareCounts,
} from './shardPlan.js';
export type { HostShares, PlanHost, TargetOptions } from './shardPlan.js';
export { numberClusters } from './clusterNumbering.js';
export type { ClusterLayout } from './clusterNumbering.js';
export {
  pinAlignment,
  placeFailover,
  placeInitial,
  placeRebalance,
  placementProblem,
  toRanges,
} from './placement.js';
export type { FailoverPlacement, PlacementHost } from './placement.js';
