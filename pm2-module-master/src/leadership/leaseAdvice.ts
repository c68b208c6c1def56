import type { MasterConfig } from 'discluster-protocol';

/** The lease time docs/operations.md advises on a replicated NATS (a 15 s fence time). */
export const REPLICATED_NATS_LEASE_MS = 30_000;

/**
 * A warning for settings that fence clusters when a NATS node is lost: with `kv_replicas` above 1
 * the fleet runs on a NATS cluster, where a node's loss stalls KV writes for 4-9 s while its buckets
 * elect new leaders, and CONTROL's renewals outlast a stall of about 30 % of `lease_ms`
 * (pm2-module-control/src/leases/leaseTimes.ts). Null when the settings are fine.
 */
export function leaseAdvice(config: Pick<MasterConfig, 'kv_replicas' | 'lease_ms'>): string | null {
  if (config.kv_replicas <= 1 || config.lease_ms >= REPLICATED_NATS_LEASE_MS) return null;
  return (
    `lease_ms is ${config.lease_ms} with kv_replicas ${config.kv_replicas}: losing a NATS node stalls KV writes ` +
    `for 4-9 s, which can fence clusters (they resume, nothing is lost, but the shards pause). ` +
    `Set lease_ms to ${REPLICATED_NATS_LEASE_MS} on a NATS cluster (docs/operations.md).`
  );
}
