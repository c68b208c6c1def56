import type { PlanRecord } from 'discluster-protocol';
import type { HostRegistry } from '../hosts/hostRegistry.js';

/**
 * Hosts that run clusters in any of `generations` and that this MASTER has not heard from yet,
 * though they are not lost either (the registry counts MASTER's start as a sighting for
 * host_timeout_ms). A handover waits for them: it addresses only the clusters a host reports
 * running. A host never heard from becomes lost after host_timeout_ms, and the handover goes on
 * without it (its clusters fail over).
 */
export function hostsNotHeardFrom(
  registry: Pick<HostRegistry, 'get' | 'isLost'>,
  generations: readonly PlanRecord['hosts'][],
): string[] {
  const waiting = new Set<string>();
  for (const hosts of generations)
    for (const [hostId, clusters] of Object.entries(hosts))
      if (clusters.length > 0 && registry.get(hostId) === undefined && !registry.isLost(hostId))
        waiting.add(hostId);
  return [...waiting].sort();
}
