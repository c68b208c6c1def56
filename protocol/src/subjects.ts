import { DisclusterError, ErrorCode } from './errors.js';
import { validateBotNamespace } from './kv.js';

/**
 * NATS subjects, built here and nowhere else. Every subject starts with `discluster.v1.<bot>`, so
 * several bots can share one NATS and a future wire format can live beside this one.
 */
const PREFIX = 'discluster.v1';

function clusterToken(clusterId: number): number {
  if (!Number.isSafeInteger(clusterId) || clusterId < 0) {
    throw new DisclusterError(
      ErrorCode.InvalidClusterId,
      `cluster id must be a non-negative integer, got ${String(clusterId)}`,
    );
  }
  return clusterId;
}

/** Subjects of cluster-to-cluster messages (events and requests) of one bot. */
export function ipcSubjects(bot: string) {
  const base = `${PREFIX}.${validateBotNamespace(bot)}.ipc`;
  return {
    /** Events to every cluster (`ipc.emit`). */
    broadcast: `${base}.all`,
    /** Events to one cluster (`ipc.emitTo`). */
    events: (clusterId: number): string => `${base}.cluster.${clusterToken(clusterId)}.event`,
    /** Requests to one cluster (`ipc.request`, `ipc.requestAll`); answered on the reply subject. */
    requests: (clusterId: number): string => `${base}.cluster.${clusterToken(clusterId)}.request`,
  } as const;
}
