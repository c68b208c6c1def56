import { CompressionMethod, WebSocketManager, WebSocketShardEvents, type SessionInfo } from '@discordjs/ws';
import type { APIGatewayBotInfo, GatewayDispatchPayload } from 'discord-api-types/v10';
import { holdOnFailure } from '../identify/holdOnFailure.js';
import type { IdentifyThrottler } from '../identify/IdentifyThrottler.js';
import type { GatewaySourceRelay } from '../net/GatewaySourceRelay.js';
import type { ClusterAssignment, ResolvedClusterSettings } from './ClusterOptions.js';
import type { ClusterSessionStore } from './clusterSeams.js';
import { neverAnswered, type ShardManagerLife } from './ShardManagerLife.js';
import type { ShardStatusTracker } from './ShardStatus.js';

/** What the gateway shards of one cluster are wired to. */
export interface ShardManagerWiring {
  readonly assignment: ClusterAssignment;
  readonly settings: ResolvedClusterSettings;
  readonly sessions: ClusterSessionStore;
  readonly throttler: IdentifyThrottler;
  readonly tracker: ShardStatusTracker;
  /** Whether this manager may still open sessions and is still heard (see ShardManagerLife). */
  readonly life: ShardManagerLife;
  /** True while shards are closed on purpose to RESUME later (fence, stop): their sessions are kept. */
  readonly keepSessions: () => boolean;
  /** True while a socket close is expected (fence, stop) rather than a disconnection. */
  readonly closingOnPurpose: () => boolean;
  /** `sessionSetup`: READY, or a GUILD_CREATE of a guild READY listed (see ShardStatusTracker). */
  readonly onDispatch: (packet: GatewayDispatchPayload, shardId: number, sessionSetup: boolean) => void;
  /** A heartbeat was acknowledged (the cluster's `heartbeat` event: discord.js's `client.ws.ping`). */
  readonly onHeartbeat: (shardId: number, latency: number) => void;
  readonly onShardError: (shardId: number, error: Error) => void;
  /** A shard's identify wait failed for a reason other than its own close: it is held, not identified. */
  readonly onIdentifyHeld: (shardId: number, error: unknown) => void;
  readonly onDebug: (message: string) => void;
  /**
   * True while a resumed shard's events are held for its restored guilds: it turns `ready` when
   * they are delivered (so `ready` listeners see them counted), not at RESUMED.
   */
  readonly deferResumed?: (shardId: number) => boolean;
  /**
   * The assignment's `sourceAddress`: every gateway and resume URL the shards connect to goes
   * through this relay, which connects from that address (see GatewaySourceRelay).
   */
  readonly relay?: GatewaySourceRelay | null;
}

/**
 * The @discordjs/ws manager of a cluster's shards, with Discluster's identify throttler (fleet-wide
 * identify compliance) and session store (RESUME from NATS KV), and the status tracker fed from
 * its events.
 */
export function createShardManager(wiring: ShardManagerWiring): WebSocketManager {
  const { assignment, settings, sessions, throttler, tracker, life } = wiring;
  /** A shard of a closing or closed manager asked to connect: it waits for ever (see ShardManagerLife). */
  const held = (shardId: number): Promise<SessionInfo | null> => {
    wiring.onDebug(`[shard ${shardId}] a shard of a closed connection tried to connect on its own: held`);
    return neverAnswered();
  };
  const relay = wiring.relay ?? null;
  const gateway: APIGatewayBotInfo = relay
    ? { ...assignment.gateway, url: relay.wrap(assignment.gateway.url) }
    : assignment.gateway;
  // With a relay, the shards see relayed resume URLs and the session store keeps the real ones.
  const toShard = (session: SessionInfo | null): SessionInfo | null =>
    relay && session ? { ...session, resumeURL: relay.wrap(session.resumeURL) } : session;
  const fromShard = (session: SessionInfo): SessionInfo =>
    relay ? { ...session, resumeURL: relay.unwrap(session.resumeURL) } : session;
  const manager = new WebSocketManager({
    token: assignment.token,
    intents: settings.intents,
    shardCount: assignment.shardCount,
    shardIds: [...assignment.shardIds],
    // The fleet already has /gateway/bot; one REST call per cluster would multiply against its rate limit.
    rest: { get: async () => gateway } as unknown as ConstructorParameters<
      typeof WebSocketManager
    >[0]['rest'],
    compression: settings.compression === 'zlib-stream' ? CompressionMethod.ZlibSync : null,
    buildIdentifyThrottler: () =>
      holdOnFailure(
        {
          waitForIdentify: async (shardId: number, signal: AbortSignal) => {
            tracker.setState(shardId, 'waiting');
            await throttler.waitForIdentify(shardId, signal);
            tracker.setState(shardId, 'identifying');
          },
        },
        (shardId, error) => {
          const why = error instanceof Error ? error.message : String(error);
          tracker.setState(shardId, 'waiting', `held: identify coordination is unavailable (${why})`);
          wiring.onIdentifyHeld(shardId, error);
        },
      ),
    retrieveSessionInfo: (shardId: number): SessionInfo | null | Promise<SessionInfo | null> => {
      // Asked before every connect, and for every dispatch: once the manager closes, neither goes
      // on (a dispatch held here was not counted in the session's sequence, so RESUME replays it).
      if (!life.acceptsSessions) return held(shardId);
      // @discordjs/ws asks on every dispatch. A serving shard's session is in memory: answer it
      // without a promise, so the hot path costs what a bare manager's Map lookup costs.
      const state = tracker.state(shardId);
      if (state === 'ready' || state === 'identifying' || state === 'resuming') {
        const cached = sessions.cachedSessionInfo?.(shardId);
        if (cached !== undefined) return toShard(cached);
      }
      return sessions.retrieveSessionInfo(shardId).then((session) => {
        if (!life.acceptsSessions) return held(shardId);
        // Only a shard that is (re)connecting with a stored session of this shard count resumes.
        const connecting = state !== 'ready' && state !== 'identifying' && state !== 'resuming';
        if (connecting && session && session.shardCount === assignment.shardCount)
          tracker.setState(shardId, 'resuming');
        return toShard(session);
      });
    },
    updateSessionInfo: (shardId: number, info: SessionInfo | null) => {
      if (!life.heard || (info === null && wiring.keepSessions())) return;
      sessions.updateSessionInfo(shardId, info && fromShard(info));
    },
  });
  manager.on(WebSocketShardEvents.Dispatch, (packet, shardId) => {
    if (!life.heard) return;
    wiring.onDispatch(packet, shardId, tracker.onDispatch(shardId, packet.t, packet.d));
  });
  manager.on(WebSocketShardEvents.Ready, (data, shardId) => {
    if (!life.heard) return;
    tracker.onReady(shardId, data);
    tracker.setState(shardId, 'ready');
  });
  manager.on(WebSocketShardEvents.Resumed, (shardId) => {
    if (!life.heard) return;
    if (!wiring.deferResumed?.(shardId)) tracker.setState(shardId, 'ready');
  });
  manager.on(WebSocketShardEvents.HeartbeatComplete, ({ latency }, shardId) => {
    if (!life.heard) return;
    tracker.onHeartbeat(shardId, latency);
    wiring.onHeartbeat(shardId, latency);
  });
  manager.on(WebSocketShardEvents.Closed, (code, shardId) => {
    if (!life.heard) return;
    tracker.onClosed(shardId, code);
    if (!wiring.closingOnPurpose()) tracker.setState(shardId, 'disconnected');
  });
  manager.on(WebSocketShardEvents.Error, (error, shardId) => {
    if (life.heard) wiring.onShardError(shardId, error);
  });
  manager.on(WebSocketShardEvents.Debug, (message, shardId) =>
    wiring.onDebug(`[shard ${shardId}] ${message}`),
  );
  return manager;
}
