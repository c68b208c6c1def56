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

function hostToken(hostId: string): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(hostId)) {
    throw new DisclusterError(
      ErrorCode.InvalidOption,
      `host id must be 1-64 characters of A-Z, a-z, 0-9, _ or -, got ${JSON.stringify(hostId)}`,
    );
  }
  return hostId;
}

/** Subjects between MASTER and the CONTROLs of one bot (messages in fleet.ts). */
export function fleetSubjects(bot: string) {
  const base = `${PREFIX}.${validateBotNamespace(bot)}.fleet`;
  // Every subject a CONTROL publishes names its host id, so per-host NATS credentials can allow a
  // host its own subjects only (natsSecurity.ts) and MASTER can check the message against the subject.
  return {
    /** CONTROL → MASTER announce of one host (request/reply). */
    hostAnnounce: (hostId: string): string => `${base}.host.${hostToken(hostId)}.announce`,
    /** Every host's announce, for MASTER. */
    allHostAnnounces: `${base}.host.*.announce`,
    /** Legacy announce subject without the host id (CONTROLs before per-host subjects); MASTER still listens. */
    announce: `${base}.announce`,
    /** CONTROL → MASTER heartbeat of one host (publish). */
    heartbeat: (hostId: string): string => `${base}.host.${hostToken(hostId)}.heartbeat`,
    /** Every host's heartbeat, for MASTER and `discluster status`. */
    allHeartbeats: `${base}.host.*.heartbeat`,
    /** MASTER → one CONTROL commands (request/reply). */
    commands: (hostId: string): string => `${base}.host.${hostToken(hostId)}.cmd`,
    /** MASTER → every CONTROL (`stop-all`); publish, no reply expected. */
    broadcast: `${base}.cmd.all`,
    /** CONTROL of one host → anyone: `cluster.failed`. */
    hostClusterFailed: (hostId: string): string => `${base}.event.cluster-failed.${hostToken(hostId)}`,
    /** CONTROL of one host → MASTER: fatal gateway close. */
    hostFatal: (hostId: string): string => `${base}.event.fatal.${hostToken(hostId)}`,
    /** Legacy `cluster.failed` subject without the host id; MASTER still listens. */
    clusterFailed: `${base}.event.cluster-failed`,
    /** Legacy fatal subject without the host id; MASTER still listens. */
    fatal: `${base}.event.fatal`,
    /** Every fleet event, legacy or per host. */
    allEvents: `${base}.event.>`,
    /** Anyone → every CONTROL: "report your host" (scatter/gather; each answers a heartbeat). */
    hostStatus: `${base}.status`,
    /** Operator (`discluster` CLI) → the leading MASTER (request/reply, operator.ts). */
    master: `${base}.master`,
  } as const;
}

/**
 * The host id a per-host fleet subject of `bot` names (announce, heartbeat, event), or null for a
 * subject that names none (the legacy ones): what MASTER checks a message's `hostId` against.
 */
export function subjectHostId(bot: string, subject: string): string | null {
  const base = `${PREFIX}.${validateBotNamespace(bot)}.fleet.`;
  if (!subject.startsWith(base)) return null;
  const tokens = subject.slice(base.length).split('.');
  if (tokens[0] === 'host' && tokens.length === 3) return tokens[1] ?? null;
  if (tokens[0] === 'event' && tokens.length === 3) return tokens[2] ?? null;
  return null;
}

/**
 * MASTER → one cluster process: the steps of a reshard's handover (request/reply, handover.ts).
 * Outside `fleet.>`, which clusters may not touch (natsSecurity.ts).
 */
export function handoverSubjects(bot: string) {
  const base = `${PREFIX}.${validateBotNamespace(bot)}.handover`;
  return {
    cluster: (clusterId: number): string => `${base}.${clusterToken(clusterId)}`,
    /** Every cluster's handover subject (permissions). */
    all: `${base}.*`,
  } as const;
}
