import { EventEmitter } from 'node:events';
import { WebSocketManager, WebSocketShardEvents, CompressionMethod, type SessionInfo } from '@discordjs/ws';
import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import type { APIGatewayBotInfo, GatewayDispatchPayload, GatewaySendPayload } from 'discord-api-types/v10';
import { DisclusterError, ErrorCode } from 'discluster-protocol';
import { NatsIdentifyThrottler } from '../identify/NatsIdentifyThrottler.js';
import { ClusterIpc } from '../ipc/ClusterIpc.js';
import { NatsSessionStore } from '../session/NatsSessionStore.js';
import {
  resolveClusterSettings,
  validateAssignment,
  type ClusterAssignment,
  type ClusterOptions,
  type ResolvedClusterSettings,
} from './ClusterOptions.js';
import { FATAL_CLOSE_CODES, isFatalCloseCode } from './fatalCloseCodes.js';
import { NatsLiveness } from './NatsLiveness.js';
import { ShardStatusTracker, type ShardState, type ShardStatus } from './ShardStatus.js';

/** A fatal gateway close: the shard stays down and the fleet should stop. */
export interface FatalShardClose {
  readonly shardId: number;
  readonly code: number;
  readonly reason: string;
}

/** Events of {@link Cluster}. */
export interface ClusterEvents {
  /** A gateway dispatch (`{op, t, s, d}`) of one of this cluster's shards. */
  dispatch: [packet: GatewayDispatchPayload, shardId: number];
  /** Every shard of this cluster is serving (emitted again after recovering from a fence). */
  ready: [];
  /** A shard changed state. */
  shardState: [shardId: number, state: ShardState, previous: ShardState];
  /** A shard keeps waiting to identify for a reason other than the rate limit (e.g. the budget floor). */
  waiting: [shardId: number, reason: string];
  /** A shard closed with a fatal code and will not reconnect. */
  fatal: [close: FatalShardClose];
  /** NATS was unreachable for `fenceAfterMs`: shards closed so another owner can take over. */
  fenced: [];
  /** NATS is back and the assignment still holds: shards reconnect (and RESUME). */
  unfenced: [];
  /** Something failed that the cluster survived (a listener, a NATS write, a malformed message). */
  error: [error: Error];
  /** Diagnostics. Never contains the token. */
  debug: [message: string];
}

const FLEET_ONLY = 'running under CONTROL (fleet mode) is not wired yet: pass options.standalone';

/**
 * The shards of one cluster process, and its link to the other clusters. Bot code creates one,
 * listens for `dispatch`, and calls `start()`.
 *
 * @example
 * ```ts
 * const cluster = new Cluster({ intents: GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages });
 * cluster.on('dispatch', (packet, shardId) => { if (packet.t === 'MESSAGE_CREATE') handle(packet.d); });
 * cluster.ipc.handle('guildCount', () => cluster.status().reduce((n, s) => n + s.guilds, 0));
 * await cluster.start();
 * ```
 */
export class Cluster extends EventEmitter<ClusterEvents> {
  private readonly settings: ResolvedClusterSettings;
  private assignmentValue: ClusterAssignment | null = null;
  private nc: NatsConnection | null = null;
  private ownsConnection = false;
  private ipcValue: ClusterIpc | null = null;
  private manager: WebSocketManager | null = null;
  private throttler: NatsIdentifyThrottler | null = null;
  private sessions: NatsSessionStore | null = null;
  private tracker: ShardStatusTracker | null = null;
  private liveness: NatsLiveness | null = null;
  /** While set, @discordjs/ws's "forget this session" on destroy is ignored: we close to resume later. */
  private keepSessionsOnDestroy = false;
  private fenced = false;
  private stopping = false;
  private signalHandler: (() => void) | null = null;

  public constructor(private readonly options: ClusterOptions) {
    super();
    this.settings = resolveClusterSettings(options);
    if (options.standalone) this.assignmentValue = validateAssignment(options.standalone.assignment);
  }

  /** This cluster's id. */
  public get id(): number {
    return this.assignment.clusterId;
  }

  /** Shards this cluster serves. */
  public get shardIds(): readonly number[] {
    return this.assignment.shardIds;
  }

  /** Total shard count of the fleet. */
  public get shardCount(): number {
    return this.assignment.shardCount;
  }

  /** Events and requests to other clusters (available once `start()` has resolved). */
  public get ipc(): ClusterIpc {
    if (!this.ipcValue)
      throw new DisclusterError(
        ErrorCode.Closed,
        'cluster.ipc is available once cluster.start() has resolved',
      );
    return this.ipcValue;
  }

  /** The shard that serves a guild: `(guild_id >> 22) % shardCount`. */
  public shardForGuild(guildId: string | bigint): number {
    let id: bigint;
    try {
      id = BigInt(guildId);
    } catch {
      throw new DisclusterError(
        ErrorCode.InvalidOption,
        `shardForGuild: ${JSON.stringify(String(guildId))} is not a snowflake`,
      );
    }
    if (id < 0n)
      throw new DisclusterError(ErrorCode.InvalidOption, 'shardForGuild: a snowflake is never negative');
    return Number((id >> 22n) % BigInt(this.shardCount));
  }

  /** Per-shard state, latency, guilds and events. */
  public status(): ShardStatus[] {
    return this.tracker?.snapshot() ?? [];
  }

  /** Sends a gateway command (presence, voice state, …) on one of this cluster's shards. */
  public async send(shardId: number, payload: GatewaySendPayload): Promise<void> {
    if (!this.manager || !this.shardIds.includes(shardId)) {
      throw new DisclusterError(
        ErrorCode.InvalidShard,
        `shard ${shardId} is not served by cluster ${this.assignmentValue?.clusterId ?? '?'}`,
      );
    }
    await this.manager.send(shardId, payload);
  }

  /** Connects to NATS, starts IPC and every shard. Resolves once the shards are connecting (listen for `ready`). */
  public async start(): Promise<void> {
    if (this.manager)
      throw new DisclusterError(ErrorCode.InvalidOption, 'cluster.start() was already called');
    const standalone = this.options.standalone;
    if (!standalone) throw new DisclusterError(ErrorCode.InvalidOption, FLEET_ONLY);
    const assignment = this.assignment;
    this.nc = await this.connectNats(standalone.nats);
    this.tracker = new ShardStatusTracker(assignment.shardIds, (shardId, state, previous) =>
      this.onShardState(shardId, state, previous),
    );

    this.sessions = await NatsSessionStore.create(this.nc, {
      bot: assignment.bot,
      shardCount: assignment.shardCount,
      flushIntervalMs: this.settings.sessionFlushIntervalMs,
    });
    this.sessions.on('debug', (message) => this.emit('debug', message));
    this.throttler = await NatsIdentifyThrottler.create(this.nc, {
      bot: assignment.bot,
      shardCount: assignment.shardCount,
      maxConcurrency: assignment.gateway.session_start_limit.max_concurrency,
      windowMs: this.settings.identifyWindowMs,
      safetyMarginMs: this.settings.identifySafetyMarginMs,
      budgetFloor: this.settings.sessionStartFloor,
    });
    this.throttler.on('waiting', (shardId, reason) => {
      this.tracker?.setState(shardId, 'waiting', reason.message);
      this.emit('waiting', shardId, reason.message);
    });
    this.throttler.on('debug', (message) => this.emit('debug', message));
    this.throttler.on('granted', (shardId) =>
      this.emit('debug', `identify granted to shard ${shardId} at ${Date.now()}`),
    );
    await this.throttler.updateBudget(assignment.gateway.session_start_limit);

    this.ipcValue = new ClusterIpc({
      nc: this.nc,
      bot: assignment.bot,
      clusterId: assignment.clusterId,
      clusterIds: () => this.assignment.clusterIds,
      maxPayloadBytes: this.settings.ipcMaxPayloadBytes,
      onError: (error) => this.emit('error', error),
    });
    await this.ipcValue.start();

    this.manager = this.createManager(assignment);
    this.liveness = new NatsLiveness(this.nc, {
      lostAfterMs: this.settings.fenceAfterMs,
      onLost: () => void this.fence(),
      onRestored: () => void this.unfence(),
    });
    this.liveness.start();
    if (this.settings.handleSignals) this.installSignalHandlers();
    await this.manager.connect();
  }

  /**
   * Closes every shard with a resumable close code, saves sessions to NATS so a restarted or moved
   * cluster RESUMEs, and closes IPC and NATS.
   */
  public async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.liveness?.stop();
    if (this.signalHandler) {
      process.off('SIGINT', this.signalHandler);
      process.off('SIGTERM', this.signalHandler);
    }
    await this.closeShardsForResume('cluster stopping');
    for (const id of this.shardIds) this.tracker?.setState(id, 'idle');
    await this.sessions?.close().catch((error: unknown) => this.emit('error', asError(error)));
    await this.throttler?.close().catch((error: unknown) => this.emit('error', asError(error)));
    this.ipcValue?.close();
    if (this.ownsConnection) await this.nc?.drain().catch(() => this.nc?.close());
  }

  private get assignment(): ClusterAssignment {
    if (!this.assignmentValue) throw new DisclusterError(ErrorCode.InvalidOption, FLEET_ONLY);
    return this.assignmentValue;
  }

  private async connectNats(nats: ConnectionOptions | NatsConnection): Promise<NatsConnection> {
    if ('publish' in nats && typeof nats.publish === 'function') return nats;
    this.ownsConnection = true;
    // Never give up reconnecting: fencing, not a dead connection, is how NATS loss is handled.
    return connect({
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
      name: `discluster-cluster`,
      ...(nats as ConnectionOptions),
    });
  }

  private createManager(assignment: ClusterAssignment): WebSocketManager {
    const sessions = this.sessions!;
    const throttler = this.throttler!;
    const tracker = this.tracker!;
    const gateway: APIGatewayBotInfo = assignment.gateway;
    const manager = new WebSocketManager({
      token: assignment.token,
      intents: this.settings.intents,
      shardCount: assignment.shardCount,
      shardIds: [...assignment.shardIds],
      // The fleet already has /gateway/bot; one REST call per cluster would multiply against its rate limit.
      rest: { get: async () => gateway } as unknown as ConstructorParameters<
        typeof WebSocketManager
      >[0]['rest'],
      compression: this.settings.compression === 'zlib-stream' ? CompressionMethod.ZlibSync : null,
      buildIdentifyThrottler: () => ({
        waitForIdentify: async (shardId: number, signal: AbortSignal) => {
          tracker.setState(shardId, 'waiting');
          await throttler.waitForIdentify(shardId, signal);
          tracker.setState(shardId, 'identifying');
        },
      }),
      retrieveSessionInfo: async (shardId: number): Promise<SessionInfo | null> => {
        const session = await sessions.retrieveSessionInfo(shardId);
        // @discordjs/ws also asks on every dispatch; only a shard that is (re)connecting is resuming.
        const state = tracker.state(shardId);
        const connecting = state !== 'ready' && state !== 'identifying' && state !== 'resuming';
        if (connecting && session && session.shardCount === assignment.shardCount)
          tracker.setState(shardId, 'resuming');
        return session;
      },
      updateSessionInfo: (shardId: number, info: SessionInfo | null) => {
        if (info === null && this.keepSessionsOnDestroy) return;
        sessions.updateSessionInfo(shardId, info);
      },
    });
    manager.on(WebSocketShardEvents.Dispatch, (packet, shardId) => {
      tracker.onDispatch(shardId, packet.t, packet.d);
      this.emit('dispatch', packet, shardId);
    });
    manager.on(WebSocketShardEvents.Ready, (_data, shardId) => tracker.setState(shardId, 'ready'));
    manager.on(WebSocketShardEvents.Resumed, (shardId) => tracker.setState(shardId, 'ready'));
    manager.on(WebSocketShardEvents.HeartbeatComplete, ({ latency }, shardId) =>
      tracker.onHeartbeat(shardId, latency),
    );
    manager.on(WebSocketShardEvents.Closed, (code, shardId) => {
      tracker.onClosed(shardId, code);
      if (!this.fenced && !this.stopping) tracker.setState(shardId, 'disconnected');
    });
    manager.on(WebSocketShardEvents.Error, (error, shardId) => this.onShardError(shardId, error));
    manager.on(WebSocketShardEvents.Debug, (message, shardId) =>
      this.emit('debug', `[shard ${shardId}] ${message}`),
    );
    return manager;
  }

  private onShardError(shardId: number, error: Error): void {
    const code = this.tracker?.snapshot().find((shard) => shard.id === shardId)?.lastCloseCode ?? null;
    if (isFatalCloseCode(code)) {
      this.tracker?.setState(shardId, 'idle');
      this.emit('fatal', { shardId, code, reason: `${FATAL_CLOSE_CODES[code]} (${error.message})` });
      return;
    }
    this.emit('error', new Error(`shard ${shardId}: ${error.message}`, { cause: error }));
  }

  private onShardState(shardId: number, state: ShardState, previous: ShardState): void {
    this.emit('shardState', shardId, state, previous);
    if (state === 'ready' && this.tracker?.allInState('ready')) {
      this.emit('ready');
    }
  }

  /** Lost NATS: close shards so that the lease owner (after expiry) is the only one serving them. */
  private async fence(): Promise<void> {
    if (this.fenced || this.stopping) return;
    this.fenced = true;
    this.emit('debug', `NATS unreachable for ${this.settings.fenceAfterMs} ms: fencing shards`);
    for (const id of this.shardIds) this.tracker?.setState(id, 'fenced');
    await this.closeShardsForResume('fenced: NATS unreachable');
    this.emit('fenced');
  }

  /** NATS is back. Standalone, the assignment is our own; in a fleet CONTROL confirms it first. */
  private async unfence(): Promise<void> {
    if (!this.fenced || this.stopping || !this.manager) return;
    this.fenced = false;
    this.emit('debug', 'NATS reachable again: reconnecting shards');
    this.emit('unfenced');
    await this.manager.connect().catch((error: unknown) => this.emit('error', asError(error)));
  }

  private async closeShardsForResume(reason: string): Promise<void> {
    if (!this.manager) return;
    this.keepSessionsOnDestroy = true;
    try {
      // 4200 is @discordjs/ws's "resuming" close: any code but 1000/1001 keeps the session resumable.
      await this.manager.destroy({ code: 4200, reason });
    } catch (error) {
      this.emit('error', asError(error));
    } finally {
      this.keepSessionsOnDestroy = false;
    }
  }

  private installSignalHandlers(): void {
    this.signalHandler = () => {
      void this.stop().finally(() => process.exit(0));
    };
    process.once('SIGINT', this.signalHandler);
    process.once('SIGTERM', this.signalHandler);
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
