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

/** The first nats-server release that keeps a replicated stream's sequence numbers in step (nats-server #4365). */
export const REPLICATED_STREAM_FIX_VERSION = '2.9.21';

/**
 * A warning for a replicated NATS whose server predates the fix of a replicated stream's sequence
 * numbers drifting apart between replicas after node restarts: KV compare-and-set (leases,
 * leadership, sessions) then meets conflicts that do not exist. The soak saw MASTER's leadership
 * flap on 2.9.10 (Debian's package). Null when fine or unknown.
 */
export function natsVersionAdvice(kvReplicas: number, serverVersion: string | undefined): string | null {
  if (kvReplicas <= 1 || serverVersion === undefined) return null;
  const parse = (version: string): number[] =>
    version
      .split(/[.-]/)
      .slice(0, 3)
      .map((part) => Number(part));
  const have = parse(serverVersion);
  const fixed = parse(REPLICATED_STREAM_FIX_VERSION);
  if (have.some((part) => !Number.isInteger(part))) return null;
  for (let i = 0; i < 3; i++) {
    if ((have[i] ?? 0) > (fixed[i] ?? 0)) return null;
    if ((have[i] ?? 0) < (fixed[i] ?? 0))
      return (
        `nats-server ${serverVersion} with kv_replicas ${kvReplicas}: releases before ${REPLICATED_STREAM_FIX_VERSION} ` +
        'can number a replicated stream differently on each node after node restarts, and KV compare-and-set then ' +
        `fails without cause (MASTER's leadership flapped in a soak on 2.9.10). Use nats-server ${REPLICATED_STREAM_FIX_VERSION} or later on a NATS cluster (docs/operations.md).`
      );
  }
  return null;
}
