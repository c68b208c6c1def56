import type { SessionInfo } from '@discordjs/ws';
import type { NatsConnection } from '@nats-io/transport-node';
import type { GatewayDispatchPayload } from 'discord-api-types/v10';
import type { ClusterAssignment, ResolvedGuildSnapshotSettings } from '../cluster/ClusterOptions.js';
import { GuildSnapshotRecorder } from './GuildSnapshotRecorder.js';
import { GuildSnapshotStore, type RestoredSnapshot, type SnapshotLoad } from './GuildSnapshotStore.js';
import { ResumeRestorer } from './ResumeRestorer.js';

/** A snapshot read that has not answered by then counts as unusable: the shard's events wait on it. */
const LOAD_DEADLINE_MS = 15_000;

export interface GuildSnapshotWiring {
  readonly nc: NatsConnection;
  readonly assignment: Omit<ClusterAssignment, 'token'>;
  readonly settings: ResolvedGuildSnapshotSettings;
  readonly session: (shardId: number) => SessionInfo | null | undefined;
  readonly deliver: (packet: GatewayDispatchPayload, shardId: number, sessionSetup: boolean) => void;
  readonly restored: (shardId: number, snapshot: RestoredSnapshot) => void;
  readonly released: (shardId: number) => void;
  readonly onDebug: (message: string) => void;
  readonly onError: (error: Error) => void;
}

/** What the cluster's dispatch path goes through when guild snapshots are on. */
export interface GuildSnapshots {
  readonly restorer: ResumeRestorer;
  readonly recorder: GuildSnapshotRecorder;
}

/**
 * Opens the snapshot bucket and wires the recorder (follows what the shards deliver) behind the
 * restorer (puts a resumed shard's restored guilds first), so the recorder sees events in the
 * order bot code does, restored ones as its starting point.
 */
export async function openGuildSnapshots(wiring: GuildSnapshotWiring): Promise<GuildSnapshots> {
  const { assignment, settings } = wiring;
  const store = await GuildSnapshotStore.create(wiring.nc, {
    bot: assignment.bot,
    shardCount: assignment.shardCount,
    replicas: assignment.kvReplicas ?? 1,
    timeoutMs: settings.requestTimeoutMs,
  });
  const recorder = new GuildSnapshotRecorder(store, {
    shardIds: assignment.shardIds,
    flushIntervalMs: settings.flushIntervalMs,
    members: settings.members,
    onDebug: wiring.onDebug,
    onError: wiring.onError,
  });
  const restorer = new ResumeRestorer({
    shardCount: assignment.shardCount,
    load: (shardId) => withDeadline(store.load(shardId)),
    session: (shardId) => {
      const session = wiring.session(shardId);
      return session ? { sessionId: session.sessionId, resumeURL: session.resumeURL } : null;
    },
    deliver: (packet, shardId, sessionSetup) => {
      // Restored packets (`s: 0`) are the snapshot itself: `restored` already made it the base.
      if (packet.s !== 0) recorder.observe(packet.t, packet.d, shardId);
      wiring.deliver(packet, shardId, sessionSetup);
    },
    restored: (shardId, snapshot) => {
      recorder.restore(shardId, snapshot);
      wiring.restored(shardId, snapshot);
    },
    released: wiring.released,
    onDebug: wiring.onDebug,
    onError: wiring.onError,
  });
  return { restorer, recorder };
}

function withDeadline(load: Promise<SnapshotLoad>): Promise<SnapshotLoad> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<SnapshotLoad>((resolve) => {
    timer = setTimeout(
      () => resolve({ kind: 'corrupt', reason: `not read within ${LOAD_DEADLINE_MS} ms` }),
      LOAD_DEADLINE_MS,
    );
  });
  return Promise.race([load, deadline]).finally(() => clearTimeout(timer));
}
