import { EventEmitter } from 'node:events';
import type { WebSocketManager } from '@discordjs/ws';
import type { REST } from '@discordjs/rest';
import type { ConnectionOptions, NatsConnection } from '@nats-io/transport-node';
import type { GatewaySendPayload } from 'discord-api-types/v10';
import { DisclusterError, ErrorCode, shardForGuild } from 'discluster-protocol';
import { openGuildSnapshots, type GuildSnapshots } from '../cache/guildSnapshots.js';
import type { FleetLink } from '../fleet/FleetLink.js';
import type { StatusReporter } from '../fleet/StatusReporter.js';
import { HandoverGate } from '../handover/HandoverGate.js';
import { HandoverResponder } from '../handover/HandoverResponder.js';
import { gatewayBotSource } from '../identify/gatewayBotSource.js';
import { ClusterIpc } from '../ipc/ClusterIpc.js';
import { asError, redact, redactError } from '../util/redact.js';
import {
  resolveClusterSettings,
  validateAssignment,
  type ClusterAssignment,
  type ClusterOptions,
  type ResolvedClusterSettings,
} from './ClusterOptions.js';
import type { ClusterEvents } from './ClusterEvents.js';
import {
  handoverOverflowError,
  identifyHeldError,
  natsClosedError,
  parseSnowflake,
} from './clusterErrors.js';
import { ClusterGateway } from './ClusterGateway.js';
import { registerClusterInternals } from './clusterInternals.js';
import { connectClusterNats } from './clusterNats.js';
import { ClusterRestLink } from './clusterRest.js';
import { clusterReport, startClusterReporting } from './clusterReporting.js';
import {
  buildThrottler,
  defaultSessionStore,
  type ClusterBuildContext,
  type ClusterIdentifyThrottler,
  type ClusterSessionStore,
} from './clusterSeams.js';
import { ControlKeepalive } from './ControlKeepalive.js';
import { createShardManager } from './createShardManager.js';
import { FATAL_CLOSE_CODES, isFatalCloseCode } from './fatalCloseCodes.js';
import { effectiveFenceAfterMs, joinFleet, openFleetLink } from './fleetMode.js';
import { NatsLiveness } from './NatsLiveness.js';
import { ShardFence, type ShardFenceHost } from './ShardFence.js';
import { guardProcess, settleWithin, signalStopDeadlineMs } from './processGuards.js';
import { ShardStatusTracker, type ShardState, type ShardStatus } from './ShardStatus.js';

export type { ClusterEvents, FatalShardClose } from './ClusterEvents.js';

/** A shutdown asked for by CONTROL has no SIGKILL behind it, but must not hang forever either. */
const CONTROL_SHUTDOWN_DEADLINE_MS = 10_000;

/**
 * The shards of one cluster process, and its link to the other clusters. Bot code creates one,
 * listens for `dispatch`, and calls `start()`.
 *
 * Two modes, one start path: in a fleet (no `standalone` option) the assignment, the token and
 * the NATS access arrive from CONTROL over pm2's IPC channel, never through the environment or
 * argv; standalone, they are given in the options.
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
  // Private fields (#): the token (in the options, the assignment and @discordjs/ws's options) and
  // the NATS credentials must not show in util.inspect or JSON.stringify of a cluster (promise 4).
  #assignmentValue: ClusterAssignment | null = null;
  #fleet: FleetLink | null = null;
  private reporter: StatusReporter | null = null;
  #nc: NatsConnection | null = null;
  private ownsConnection = false;
  private readonly ipcValue: ClusterIpc;
  #manager: WebSocketManager | null = null;
  private throttler: ClusterIdentifyThrottler | null = null;
  private sessions: ClusterSessionStore | null = null;
  private tracker: ShardStatusTracker | null = null;
  private liveness: NatsLiveness | null = null;
  /** The fence time in force: the own setting, lowered by CONTROL's `fenceAfterMs` in a fleet. */
  private fenceAfterMs: number;
  /** While set, @discordjs/ws's "forget this session" on destroy is ignored: we close to resume later. */
  private keepSessionsOnDestroy = false;
  private readonly fence: ShardFence;
  /** Fleet: CONTROL's keepalives; silence for the fence time fences like CONTROL's `fence`. */
  private readonly controlKeepalive: ControlKeepalive;
  private readonly fatalShards = new Set<number>();
  /** Where dispatches go during a reshard's handover (serving otherwise). */
  private gate: HandoverGate | null = null;
  private handover: HandoverResponder | null = null;
  /** Guild snapshots (caches across a resume), when on and their bucket opened. */
  private snapshots: GuildSnapshots | null = null;
  private startCalled = false;
  private serving = false;
  private stopping = false;
  private stopped: Promise<void> | null = null;
  private signalHandler: (() => void) | null = null;
  private unguard: (() => void) | null = null;

  readonly #options: ClusterOptions;
  readonly #restLink = new ClusterRestLink();
  readonly #gateway: ClusterGateway;
  /** Resolved once start() has bound cluster.rest: discluster-sdk/discord.js logs in from then on. */
  #restBound: () => void = () => undefined;

  public constructor(options: ClusterOptions) {
    super();
    this.#options = options;
    this.settings = resolveClusterSettings(options);
    this.fenceAfterMs = this.settings.fenceAfterMs;
    this.fence = new ShardFence(this.fenceHost());
    this.controlKeepalive = new ControlKeepalive({
      fenceAfterMs: () => this.fenceAfterMs,
      onSilent: (silentMs) => void this.fence.controlSilent(silentMs),
    });
    // Created unbound, so bot code can register IPC listeners and handlers before start().
    this.ipcValue = new ClusterIpc({
      clusterIds: () => this.#assignmentValue?.clusterIds ?? [],
      maxPayloadBytes: this.settings.ipcMaxPayloadBytes,
      onError: (error) => this.emitError(error),
    });
    // Created with the cluster, so a @discordjs/core Client can listen before start(). It listens to
    // `dispatch` itself: what the handover gate lets through is exactly what it delivers.
    this.#gateway = new ClusterGateway({
      shardCount: () => this.shardCount,
      send: (shardId, payload) => this.send(shardId, payload),
      subscribe: (listener) => this.on('dispatch', listener),
      unsubscribe: (listener) => this.off('dispatch', listener),
      onError: (error) => this.emitError(error),
    });
    if (options.standalone) this.#assignmentValue = validateAssignment(options.standalone.assignment);
    registerClusterInternals(this, {
      token: () => this.#assignmentValue?.token ?? null,
      intents: this.settings.intents,
      reportError: (error) => this.emitError(error),
      restBound: new Promise<void>((resolve) => (this.#restBound = resolve)),
    });
  }

  /** This cluster's id (in a fleet, known from the environment as soon as `start()` was called). */
  public get id(): number {
    return this.#assignmentValue?.clusterId ?? this.#fleet?.clusterId ?? this.assignment.clusterId;
  }

  /**
   * @discordjs/rest's client, authorised with the bot's token once `start()` has the assignment;
   * every call stays inside the fleet's shared rate limits (see the README's REST section).
   */
  public get rest(): REST {
    return this.#restLink.rest;
  }

  /**
   * `@discordjs/core`'s `Gateway` on this cluster's shards:
   * `new Client({ rest: cluster.rest, gateway: cluster.gateway })`. Listeners can be added before
   * `start()`; they receive what `dispatch` delivers.
   */
  public get gateway(): ClusterGateway {
    return this.#gateway;
  }

  /** Shards this cluster serves. */
  public get shardIds(): readonly number[] {
    return this.assignment.shardIds;
  }

  /** Total shard count of the fleet. */
  public get shardCount(): number {
    return this.assignment.shardCount;
  }

  /**
   * Events and requests to other clusters. Listeners and handlers can be registered at any time
   * (before `start()` included); emitting and requesting work once `start()` has resolved.
   */
  public get ipc(): ClusterIpc {
    return this.ipcValue;
  }

  /** The shard that serves a guild: `(guild_id >> 22) % shardCount`. */
  public shardForGuild(guildId: string | bigint): number {
    return shardForGuild(String(parseSnowflake(guildId)), this.shardCount);
  }

  /**
   * What `JSON.stringify(cluster)` shows: the same report as pm2's `status` action (ids, mode, fence
   * state, shards), never the token or NATS credentials.
   */
  public toJSON(): unknown {
    return this.report();
  }

  /** Per-shard state, latency, guilds and events. */
  public status(): ShardStatus[] {
    return this.tracker?.snapshot() ?? [];
  }

  /** Sends a gateway command (presence, voice state, …) on one of this cluster's shards. */
  public async send(shardId: number, payload: GatewaySendPayload): Promise<void> {
    if (!this.#manager || !this.shardIds.includes(shardId)) {
      throw new DisclusterError(
        ErrorCode.InvalidShard,
        `shard ${shardId} is not served by cluster ${this.#assignmentValue?.clusterId ?? '?'}`,
      );
    }
    await this.#manager.send(shardId, payload);
  }

  /**
   * Gets the assignment (from the options, or from CONTROL in a fleet), connects to NATS, starts
   * IPC and every shard. Resolves once every shard has been READY (or RESUMED) once; a shard held
   * back (the session-start floor) keeps it pending, so listen for `ready`, `waiting` and `fatal`.
   */
  public async start(): Promise<void> {
    if (this.startCalled)
      throw new DisclusterError(ErrorCode.InvalidOption, 'cluster.start() was already called');
    this.startCalled = true;
    const standalone = this.#options.standalone;
    // Opening the fleet link checks its preconditions (pm2 IPC, cluster id) before anything is installed.
    if (!standalone) this.#fleet = openFleetLink(this.fleetHandlers());
    if (this.settings.handleProcessErrors) {
      this.unguard = guardProcess({
        isServing: () => this.serving,
        isStopping: () => this.stopping,
        stop: () => this.stop(),
      });
    }
    if (this.settings.handleSignals) this.installSignalHandlers();
    const { assignment, nats, fenceAfterMs, keepalives } = standalone
      ? { assignment: this.assignment, nats: standalone.nats, fenceAfterMs: undefined, keepalives: false }
      : await joinFleet(this.#fleet!);
    this.#assignmentValue = assignment;
    this.applyControlFenceAfterMs(fenceAfterMs);
    // Armed from the assignment: a CONTROL that dies before its first keepalive renews nothing.
    if (keepalives) this.controlKeepalive.arm();
    if (this.stopping) return;
    await this.startShards(assignment, nats);
  }

  /**
   * Closes every shard with a resumable close code, saves sessions to NATS so a restarted or moved
   * cluster RESUMEs, and closes IPC and NATS. Every call returns the same promise.
   */
  public stop(): Promise<void> {
    this.stopped ??= this.stopOnce();
    return this.stopped;
  }

  private get assignment(): ClusterAssignment {
    if (!this.#assignmentValue)
      throw new DisclusterError(
        ErrorCode.Closed,
        'the assignment is known once cluster.start() has received it from CONTROL',
      );
    return this.#assignmentValue;
  }

  private fleetHandlers(): Parameters<typeof openFleetLink>[0] {
    return {
      resendMs: this.settings.statusIntervalMs,
      onError: (error) => this.emitError(error),
      onDebug: (message) => this.emitDebug(message),
      onUpdated: ({ fenceAfterMs, ...update }) => {
        if (!this.#assignmentValue) return;
        this.#assignmentValue = { ...this.#assignmentValue, ...update };
        this.applyControlFenceAfterMs(fenceAfterMs);
        // The reshard finished (or this process came back after its handover): serve.
        if (!update.standby) this.gate?.serve();
        this.throttler
          ?.updateBudget?.(update.gateway.session_start_limit, update.gateway.fetchedAt ?? Date.now())
          .catch((error: unknown) => this.emitError(asError(error)));
        this.reporter?.changed();
      },
      onShutdown: (reason) =>
        void this.exitAfterStop(`CONTROL asked: ${reason}`, 0, CONTROL_SHUTDOWN_DEADLINE_MS),
      // CONTROL could not renew the leases: close as on a NATS loss, then ask CONTROL at once.
      onFence: (reason) => void this.fence.ordered(reason),
      // CONTROL renewed the leases. Once one came, silence for the fence time means CONTROL is down
      // or hung and nobody renews them: fence as on CONTROL's `fence` (ControlKeepalive).
      onKeepalive: () => this.controlKeepalive.received(),
      // Without pm2 nobody supervises this process and CONTROL cannot renew its leases: another
      // owner may soon start these shards, so they must close (Promise 2).
      onDisconnected: () =>
        void this.exitAfterStop('lost the IPC channel to pm2', 1, CONTROL_SHUTDOWN_DEADLINE_MS),
    };
  }

  /** Fleet: the fence time follows CONTROL's `fenceAfterMs` (never above the own setting). */
  private applyControlFenceAfterMs(fromControl: number | undefined): void {
    const fenceAfterMs = effectiveFenceAfterMs(
      this.settings.fenceAfterMs,
      fromControl,
      this.settings.fenceAfterMsSet,
    );
    if (fenceAfterMs === this.fenceAfterMs) return;
    this.emitDebug(
      `fence time now ${fenceAfterMs} ms (own setting ${this.settings.fenceAfterMs} ms, ` +
        `CONTROL's ${fromControl ?? 'none'})`,
    );
    this.fenceAfterMs = fenceAfterMs;
    this.liveness?.setLostAfterMs(fenceAfterMs);
    this.controlKeepalive.fenceTimeChanged();
  }

  /** The start path shared by both modes, once the assignment and NATS access are known. */
  private async startShards(
    assignment: ClusterAssignment,
    nats: ConnectionOptions | NatsConnection,
  ): Promise<void> {
    const { nc, owned } = await connectClusterNats(nats, assignment.clusterId);
    this.#nc = nc;
    this.ownsConnection = owned;
    void nc.closed().then((error) => this.onNatsClosed(error));
    const tracker = new ShardStatusTracker(assignment.shardIds, (shardId, state, previous) =>
      this.onShardState(shardId, state, previous),
    );
    this.tracker = tracker;
    const { token: _token, ...withoutToken } = assignment;
    const context: ClusterBuildContext = {
      nc,
      assignment: withoutToken,
      settings: this.settings,
      sessionStartLimitSource: gatewayBotSource(assignment),
    };
    this.sessions = await (this.#options.buildSessionStore ?? defaultSessionStore)(context);
    this.sessions.on?.('debug', (message: string) => this.emitDebug(message));
    this.throttler = await buildThrottler(this.#options.buildIdentifyThrottler, context, {
      waiting: (shardId, message) => {
        this.tracker?.setState(shardId, 'waiting', message);
        this.emit('waiting', shardId, message);
      },
      debug: (message) => this.emitDebug(message),
    });

    this.ipcValue.bind({ nc: this.#nc, bot: assignment.bot, clusterId: assignment.clusterId });
    await this.ipcValue.start();
    await this.#restLink.bind(nc, assignment, this.settings, {
      onTokenRejected: (first) => this.onRestTokenRejected(first),
      onWarn: (message) => this.emitError(new Error(message)),
      onDebug: (message) => this.emitDebug(message),
    });
    this.#restBound();
    const gate = new HandoverGate((packet, shardId) => this.emit('dispatch', packet, shardId), {
      standby: assignment.standby === true,
      onOverflow: (list, limit) => this.emitError(handoverOverflowError(list, limit)),
    });
    this.gate = gate;
    this.snapshots = await this.openSnapshots(nc, withoutToken, gate, tracker);
    const entry = this.snapshots?.restorer ?? gate;
    if (this.#fleet) {
      // Only a fleet reshards: MASTER drives the handover of every cluster it planned.
      this.handover = new HandoverResponder(
        this.#nc,
        assignment.bot,
        assignment.clusterId,
        gate,
        (message) => this.emitDebug(message),
        assignment.kvReplicas ?? 1,
      );
      this.handover.start();
    }

    this.#manager = createShardManager({
      assignment,
      settings: this.settings,
      sessions: this.sessions,
      throttler: this.throttler,
      tracker,
      keepSessions: () => this.keepSessionsOnDestroy,
      closingOnPurpose: () => this.fence.fenced || this.stopping,
      onDispatch: (packet, shardId, sessionSetup) => {
        entry.offer(packet, shardId, sessionSetup);
        // The shard's last guild arrived: say so now (a reshard switches over once every new
        // shard has its guilds), not at the next periodic report.
        if (sessionSetup && packet.t === 'GUILD_CREATE' && tracker.loadingGuilds(shardId) === 0)
          this.reporter?.changed();
      },
      onHeartbeat: (shardId, latency) => this.emit('heartbeat', shardId, latency),
      onShardError: (shardId, error) => this.onShardError(shardId, error),
      onIdentifyHeld: (shardId, error) => this.onIdentifyHeld(shardId, error),
      onDebug: (message) => this.emitDebug(message),
      deferResumed: (shardId) => this.snapshots?.restorer.holding(shardId) ?? false,
    });
    this.liveness = new NatsLiveness(this.#nc, {
      lostAfterMs: this.fenceAfterMs,
      onLost: () => void this.fence.lost(),
      onRestored: () => void this.fence.restored(),
    });
    this.liveness.start();
    this.reporter = startClusterReporting({
      assignment,
      fleet: this.#fleet,
      intervalMs: this.settings.statusIntervalMs,
      status: () => this.status(),
      report: () => this.report(),
      gate: () => this.gate,
      onError: (error) => this.emitError(error),
    });
    // Serving from here: everything is wired and the shards are on their way, so a stray rejection
    // in bot code no longer means "the cluster never started" (see guardProcess).
    this.serving = !this.stopping;
    if (this.fence.fenced) {
      // CONTROL ordered a fence while this cluster was starting: the shards connect (and start()
      // resolves) without waiting for them once CONTROL confirms the assignment.
      this.markShardsFenced();
      this.emitDebug('fenced before the shards connected: they connect once CONTROL confirms');
      return;
    }
    await this.#manager.connect();
  }

  /**
   * Guild snapshots, unless turned off. A bucket that cannot be opened is reported and the cluster
   * runs without them (resumed shards then restore nothing, as before snapshots existed).
   */
  private async openSnapshots(
    nc: NatsConnection,
    assignment: Omit<ClusterAssignment, 'token'>,
    gate: HandoverGate,
    tracker: ShardStatusTracker,
  ): Promise<GuildSnapshots | null> {
    const settings = this.settings.guildSnapshots;
    if (!settings) return null;
    try {
      return await openGuildSnapshots({
        nc,
        assignment,
        settings,
        session: (shardId) => this.sessions?.cachedSessionInfo?.(shardId),
        deliver: (packet, shardId, sessionSetup) => gate.offer(packet, shardId, sessionSetup),
        restored: (shardId, snapshot) => {
          tracker.restoreGuilds(shardId, [
            ...snapshot.guilds.map((guild) => guild.id),
            ...snapshot.unavailable,
          ]);
          this.reporter?.changed();
        },
        // A RESUMED whose `ready` waited for the restored guilds (see deferResumed); after a
        // READY the shard is ready already.
        released: (shardId) => {
          if (tracker.state(shardId) === 'resuming') tracker.setState(shardId, 'ready');
        },
        onDebug: (message) => this.emitDebug(message),
        onError: (error) => this.emitError(error),
      });
    } catch (error) {
      this.emitError(new Error(`guild snapshots off: ${asError(error).message}`, { cause: error }));
      return null;
    }
  }

  /** The `status` pm2 action's answer (and `toJSON`). */
  private report(): unknown {
    return clusterReport({
      clusterId: this.#assignmentValue?.clusterId ?? null,
      fleet: this.#fleet,
      fenceAfterMs: this.fenceAfterMs,
      fenced: this.fence.fenced,
      revoked: this.fence.revoked,
      controlKeepalive: this.controlKeepalive.armed,
      gate: this.gate,
      shards: this.status(),
    });
  }

  private onShardError(shardId: number, error: Error): void {
    const code = this.tracker?.snapshot().find((shard) => shard.id === shardId)?.lastCloseCode ?? null;
    if (isFatalCloseCode(code)) {
      this.fatalShards.add(shardId);
      this.tracker?.setState(shardId, 'idle');
      const reason = redact(`${FATAL_CLOSE_CODES[code]} (${error.message})`);
      this.emit('fatal', { shardId, code, reason });
      void this.#fleet?.sendFatal(shardId, code, reason);
      return;
    }
    this.emitError(new Error(`shard ${shardId}: ${error.message}`, { cause: error }));
  }

  /** Discord answered a REST call 401: one process of the fleet reports it, as a gateway 4004 would be. */
  private onRestTokenRejected(first: boolean): void {
    if (!first) return;
    const shardId = this.assignment.shardIds[0] ?? 0;
    const reason = 'Authentication failed: Discord answered 401 to a REST call with the bot token';
    this.emit('fatal', { shardId, code: 4004, reason });
    void this.#fleet?.sendFatal(shardId, 4004, reason);
  }

  /** See holdOnFailure: the shard waits for the cluster to be stopped or restarted, never identifies. */
  private onIdentifyHeld(shardId: number, cause: unknown): void {
    this.emitError(identifyHeldError(shardId, cause));
  }

  /**
   * The connection closed for good while serving (nats.js gives up after repeated auth errors:
   * rotated credentials, an expired JWT). Without NATS the cluster can neither coordinate identifies
   * nor notice that it lost its shards, and the liveness probe stops probing a closed connection:
   * stop every shard. In a fleet, exit as CONTROL does, so the supervisor restarts it connected.
   */
  private onNatsClosed(error: Error | void): void {
    if (this.stopping) return;
    const fleet = this.#fleet !== null;
    this.emitError(natsClosedError(error, fleet));
    if (fleet) void this.exitAfterStop('NATS connection closed', 1, CONTROL_SHUTDOWN_DEADLINE_MS);
    else void this.stop();
  }

  private onShardState(shardId: number, state: ShardState, previous: ShardState): void {
    // Set before the RESUME is sent: the shard's first event already finds it held.
    if (state === 'resuming') this.snapshots?.restorer.resuming(shardId);
    this.emit('shardState', shardId, state, previous);
    this.reporter?.changed();
    if (state === 'ready' && this.tracker?.allInState('ready')) {
      this.emit('ready');
    }
  }

  private fenceHost(): ShardFenceHost {
    return {
      fenceAfterMs: () => this.fenceAfterMs,
      retryMs: this.settings.statusIntervalMs,
      isStopping: () => this.stopping,
      natsLost: () => this.liveness?.isLost ?? false,
      hasFatalShard: () => this.fatalShards.size > 0,
      markFenced: () => this.markShardsFenced(),
      closeShards: (reason) => this.closeShardsForResume(reason),
      reconnectShards: async () => this.#manager?.connect(),
      // A fleet asks CONTROL (another machine may own the shards by now); standalone asks the option.
      confirm: () => this.#fleet?.confirm() ?? this.#options.confirmAssignment?.() ?? Promise.resolve(true),
      onFenced: () => {
        this.emit('fenced');
        void this.#fleet?.sendFenced();
      },
      onUnfenced: () => {
        // CONTROL just confirmed the leases: that counts as a keepalive (if they are watched).
        this.controlKeepalive.vouched();
        this.emit('unfenced');
      },
      onRevoked: () => this.emit('revoked'),
      debug: (message) => this.emitDebug(message),
      error: (error) => this.emitError(error),
    };
  }

  private markShardsFenced(): void {
    for (const id of this.#assignmentValue?.shardIds ?? []) {
      if (!this.fatalShards.has(id)) this.tracker?.setState(id, 'fenced');
    }
  }

  private async closeShardsForResume(reason: string): Promise<void> {
    if (!this.#manager) return;
    this.keepSessionsOnDestroy = true;
    try {
      // 4200 is @discordjs/ws's "resuming" close: any code but 1000/1001 keeps the session resumable.
      await this.#manager.destroy({ code: 4200, reason });
    } catch (error) {
      this.emitError(asError(error));
    } finally {
      this.keepSessionsOnDestroy = false;
    }
  }

  /**
   * After a reshard's cutover the old generation's sessions end for good: close 1000 (Discord
   * drops the session) and the session records go with them (@discordjs/ws clears them).
   */
  private async closeShardsForGood(reason: string): Promise<void> {
    if (!this.#manager) return;
    try {
      await this.#manager.destroy({ code: 1000, reason });
    } catch (error) {
      this.emitError(asError(error));
    }
  }

  private async stopOnce(): Promise<void> {
    this.stopping = true;
    this.serving = false;
    this.liveness?.stop();
    this.controlKeepalive.stop();
    if (this.signalHandler) {
      process.off('SIGINT', this.signalHandler);
      process.off('SIGTERM', this.signalHandler);
    }
    await this.fence.settled();
    this.handover?.close();
    if (this.gate?.mode === 'cut') await this.closeShardsForGood('resharded: the new generation serves');
    else await this.closeShardsForResume('cluster stopping');
    this.gate?.close();
    this.snapshots?.restorer.close();
    await this.snapshots?.recorder.close().catch((error: unknown) => this.emitError(asError(error)));
    for (const id of this.#assignmentValue?.shardIds ?? []) this.tracker?.setState(id, 'idle');
    await this.sessions?.close().catch((error: unknown) => this.emitError(asError(error)));
    await this.throttler?.close().catch((error: unknown) => this.emitError(asError(error)));
    this.ipcValue.close();
    this.#restLink.close();
    if (this.ownsConnection) await this.#nc?.drain().catch(() => this.#nc?.close());
    this.reporter?.stop();
    // The last word to CONTROL: every shard idle, sessions saved.
    if (this.#fleet && this.tracker) await this.#fleet.sendStatus(this.status());
    this.#fleet?.close();
    this.unguard?.();
  }

  /** Stops within `deadlineMs` (sessions as of the last flush if NATS hangs), then exits. */
  private async exitAfterStop(why: string, code: number, deadlineMs: number): Promise<void> {
    this.emitDebug(`stopping: ${why}`);
    if (!(await settleWithin(this.stop(), deadlineMs))) {
      process.stderr.write(`discluster-sdk: stop did not finish within ${deadlineMs} ms; exiting anyway\n`);
    }
    process.exit(code);
  }

  private installSignalHandlers(): void {
    this.signalHandler = () => void this.exitAfterStop('signal', 0, signalStopDeadlineMs());
    process.once('SIGINT', this.signalHandler);
    process.once('SIGTERM', this.signalHandler);
  }

  private emitDebug(message: string): void {
    if (this.listenerCount('debug') > 0) this.emit('debug', redact(message));
  }

  private emitError(error: Error): void {
    redactError(error);
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else process.stderr.write(`discluster-sdk: ${error.message}\n`);
  }
}
