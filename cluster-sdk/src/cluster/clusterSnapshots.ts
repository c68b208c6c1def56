import type { SessionInfo } from '@discordjs/ws';
import type { NatsConnection } from '@nats-io/transport-node';
import { openGuildSnapshots, type GuildSnapshots } from '../cache/guildSnapshots.js';
import type { HandoverGate } from '../handover/HandoverGate.js';
import { asError } from '../util/redact.js';
import type { ClusterAssignment, ResolvedClusterSettings } from './ClusterOptions.js';
import type { ShardStatusTracker } from './ShardStatus.js';

/** Where a cluster's guild snapshots plug in. */
export interface ClusterSnapshotWiring {
  readonly nc: NatsConnection;
  readonly assignment: Omit<ClusterAssignment, 'token'>;
  readonly settings: ResolvedClusterSettings;
  /** A shard's session if the session store has it in memory. */
  readonly session: (shardId: number) => SessionInfo | null | undefined;
  /** Restored guilds, like live ones, reach bot code through the handover gate. */
  readonly gate: HandoverGate;
  readonly tracker: ShardStatusTracker;
  /** The shards' status changed (restored guilds count): report it soon. */
  readonly changed: () => void;
  readonly onDebug: (message: string) => void;
  readonly onError: (error: Error) => void;
}

/**
 * Guild snapshots (opt-in: `guildSnapshots`), wired between the shards and the handover gate, or
 * null when off. A bucket that cannot be opened is reported and the cluster runs without them
 * (resumed shards then restore nothing, as before snapshots existed).
 */
export async function openClusterSnapshots(wiring: ClusterSnapshotWiring): Promise<GuildSnapshots | null> {
  const { settings, gate, tracker } = wiring;
  if (!settings.guildSnapshots) return null;
  try {
    return await openGuildSnapshots({
      nc: wiring.nc,
      assignment: wiring.assignment,
      settings: settings.guildSnapshots,
      session: wiring.session,
      deliver: (packet, shardId, sessionSetup) => gate.offer(packet, shardId, sessionSetup),
      restored: (shardId, snapshot) => {
        tracker.restoreGuilds(shardId, [
          ...snapshot.guilds.map((guild) => guild.id),
          ...snapshot.unavailable,
        ]);
        wiring.changed();
      },
      // A RESUMED whose `ready` waited for the restored guilds (see deferResumed); after a
      // READY the shard is ready already.
      released: (shardId) => {
        if (tracker.state(shardId) === 'resuming') tracker.setState(shardId, 'ready');
      },
      onDebug: wiring.onDebug,
      onError: wiring.onError,
    });
  } catch (error) {
    wiring.onError(new Error(`guild snapshots off: ${asError(error).message}`, { cause: error }));
    return null;
  }
}
