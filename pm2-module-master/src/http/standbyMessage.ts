import type { LeaderRecord } from 'discluster-protocol';

/** Why a MASTER that does not lead has no fleet status to give, naming the one that leads if known. */
export function standbyMessage(instanceId: string, leader: LeaderRecord | null): string {
  const self = `this MASTER (instance ${instanceId}) is not the leader`;
  if (!leader || leader.instanceId === instanceId)
    return `${self} and no MASTER leads right now: one takes over within leader_lease_ms`;
  return `${self}: MASTER instance ${leader.instanceId} on ${leader.hostname} leads; ask its status page`;
}
