import type { GatewayBotSchema } from 'discluster-protocol';
import type { z } from 'zod';

/** What CONTROL runs, after it opened the token. */
export interface HostAssignment {
  readonly epoch: number;
  readonly shardCount: number;
  readonly gateway: z.infer<typeof GatewayBotSchema>;
  readonly clusterIds: readonly number[];
  readonly clusters: readonly PlannedClusterOf[];
  readonly token: string;
  /** A reshard's new generation on this host, run beside `clusters` in standby. */
  readonly next?: {
    readonly shardCount: number;
    readonly clusterIds: readonly number[];
    readonly clusters: readonly PlannedClusterOf[];
  };
}

export interface PlannedClusterOf {
  readonly clusterId: number;
  readonly shardIds: readonly number[];
}
