import { EventEmitter } from 'node:events';
import type { REST } from '@discordjs/rest';
import type { ConnectionOptions, NatsConnection } from '@nats-io/transport-node';
import type { GatewaySendPayload } from 'discord-api-types/v10';
import { DisclusterError, ErrorCode } from 'discluster-protocol/errors';
import { shardForGuild } from 'discluster-protocol/shardRanges';
import type { FleetLink } from '../fleet/FleetLink.js';
import { ClusterIpc } from '../ipc/ClusterIpc.js';
import { asError, redact, redactError } from '../util/redact.js';
import {
  resolveClusterSettings,
  validateAssignment,
  type ClusterAssignment,
  type ClusterOptions,
  type ResolvedClusterSettings,
} from './ClusterOptions.js';
import type { ClusterEvents, FatalShardClose } from './ClusterEvents.js';
import { identifyHeldError, invalidShardError, natsClosedError, parseSnowflake } from './clusterErrors.js';
import { ClusterFencing } from './ClusterFencing.js';
import { ClusterGateway } from './ClusterGateway.js';
import { registerClusterInternals } from './clusterInternals.js';
import { openClusterNats, type ClusterNats } from './clusterNats.js';
import { ClusterProcess } from './clusterProcess.js';
import { ClusterReporting } from './clusterReporting.js';
import { ClusterRestLink } from './clusterRest.js';
import { clusterBuildContext } from './clusterSeams.js';
import { ClusterShards } from './ClusterShards.js';
import { DispatchPath } from './DispatchPath.js';
import { joinFleet, openFleetLink } from './fleetMode.js';
import type { ShardState, ShardStatus } from './ShardStatus.js';

export type { ClusterEvents, FatalShardClose } from './ClusterEvents.js';

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
  #nats: ClusterNats | null = null;
  #shards: ClusterShards | null = null;
  private readonly ipcValue: ClusterIpc;
  #dispatch: DispatchPath | null = null;
  private startCalled = false;
  private serving = false;
  private stopping = false;
  private stopped: Promise<void> | null = null;

  readonly #options: ClusterOptions;
  readonly #fencing: ClusterFencing;
  readonly #process: ClusterProcess;
  readonly #reporting: ClusterReporting;
  readonly #restLink = new ClusterRestLink();
  readonly #gateway: ClusterGateway;
  /** Resolved once start() has bound cluster.rest: discluster-sdk/discord.js logs in from then on. */
  #restBound: () => void = () => undefined;

  public constructor(options: ClusterOptions) {
    super();
    this.#options = options;
    this.settings = resolveClusterSettings(options);
    this.#fencing = new ClusterFencing({
      settings: this.settings,
      shards: () => this.#shards,
      isStopping: () => this.stopping,
      // A fleet asks CONTROL (another machine may own the shards by now); standalone asks the option.
      confirm: () => this.#fleet?.confirm() ?? this.#options.confirmAssignment?.() ?? Promise.resolve(true),
      onFenced: () => {
        this.emit('fenced');
        void this.#fleet?.sendFenced();
      },
      onUnfenced: () => this.emit('unfenced'),
      onRevoked: () => this.emit('revoked'),
      debug: (message) => this.emitDebug(message),
      error: (error) => this.emitError(error),
    });
    this.#process = new ClusterProcess({
      isServing: () => this.serving,
      isStopping: () => this.stopping,
      stop: () => this.stop(),
      debug: (message) => this.emitDebug(message),
    });
    this.#reporting = new ClusterReporting({
      clusterId: () => this.#assignmentValue?.clusterId ?? null,
      fleet: () => this.#fleet,
      fencing: this.#fencing,
      gate: () => this.#dispatch?.gate ?? null,
      status: () => this.status(),
      intervalMs: this.settings.statusIntervalMs,
      onError: (error) => this.emitError(error),
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
    return this.#reporting.report();
  }

  /** Per-shard state, latency, guilds and events. */
  public status(): ShardStatus[] {
    return this.#shards?.status() ?? [];
  }

  /** Sends a gateway command (presence, voice state, …) on one of this cluster's shards. */
  public async send(shardId: number, payload: GatewaySendPayload): Promise<void> {
    if (!this.#shards) throw invalidShardError(shardId, this.#assignmentValue?.clusterId);
    await this.#shards.send(shardId, payload);
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
    if (this.settings.handleProcessErrors) this.#process.guardErrors();
    if (this.settings.handleSignals) this.#process.handleSignals();
    const { assignment, nats, fenceAfterMs, keepalives } = standalone
      ? { assignment: this.assignment, nats: standalone.nats, fenceAfterMs: undefined, keepalives: false }
      : await joinFleet(this.#fleet!);
    this.#assignmentValue = assignment;
    this.#fencing.followControl(fenceAfterMs);
    if (keepalives) this.#fencing.armKeepalives();
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
        this.#fencing.followControl(fenceAfterMs);
        // The reshard finished (or this process came back after its handover): serve.
        if (!update.standby) this.#dispatch?.gate.serve();
        this.#shards?.updateBudget(update.gateway);
        this.#reporting.changed();
      },
      onShutdown: (reason) => void this.#process.exitAfterStop(`CONTROL asked: ${reason}`, 0),
      // CONTROL could not renew the leases: close as on a NATS loss, then ask CONTROL at once.
      onFence: (reason) => this.#fencing.ordered(reason),
      // CONTROL renewed the leases. Once one came, silence for the fence time means CONTROL is down
      // or hung and nobody renews them: fence as on CONTROL's `fence` (ControlKeepalive).
      onKeepalive: (_epoch, renewedAt) => this.#fencing.keepaliveReceived(renewedAt),
      // Without pm2 nobody supervises this process and CONTROL cannot renew its leases: another
      // owner may soon start these shards, so they must close (Promise 2).
      onDisconnected: () => void this.#process.exitAfterStop('lost the IPC channel to pm2', 1),
    };
  }

  /** The start path shared by both modes, once the assignment and NATS access are known. */
  private async startShards(
    assignment: ClusterAssignment,
    natsAccess: ConnectionOptions | NatsConnection,
  ): Promise<void> {
    this.#nats = await openClusterNats(natsAccess, assignment.clusterId, (error) => this.onNatsClosed(error));
    const { nc } = this.#nats;
    const shards = new ClusterShards(assignment, {
      settings: this.settings,
      closingOnPurpose: () => this.#fencing.fenced || this.stopping,
      onState: (shardId, state, previous) => this.onShardState(shardId, state, previous),
      onWaiting: (shardId, reason) => this.emit('waiting', shardId, reason),
      onGuildsLoaded: () => this.#reporting.changed(),
      onHeartbeat: (shardId, latency) => this.emit('heartbeat', shardId, latency),
      // See holdOnFailure: the shard waits for the cluster to be stopped or restarted, never identifies.
      onIdentifyHeld: (shardId, error) => this.emitError(identifyHeldError(shardId, error)),
      onFatal: (close) => this.onFatal(close),
      onError: (error) => this.emitError(error),
      onDebug: (message) => this.emitDebug(message),
    });
    this.#shards = shards;
    const context = clusterBuildContext(nc, assignment, this.settings);
    await shards.buildSeams(this.#options, context);

    this.ipcValue.bind({ nc, bot: assignment.bot, clusterId: assignment.clusterId });
    await this.ipcValue.start();
    await this.#restLink.bind(nc, assignment, this.settings, {
      onFatal: (close) => this.onFatal(close),
      onWarn: (message) => this.emitError(new Error(message)),
      onDebug: (message) => this.emitDebug(message),
    });
    this.#restBound();
    const dispatch = new DispatchPath(assignment, {
      deliver: (packet, shardId) => this.emit('dispatch', packet, shardId),
      onDebug: (message) => this.emitDebug(message),
      onError: (error) => this.emitError(error),
    });
    this.#dispatch = dispatch;
    await dispatch.openSnapshots(context, shards, () => this.#reporting.changed());
    // Only a fleet reshards: MASTER drives the handover of every cluster it planned.
    if (this.#fleet) dispatch.answerHandover(nc, context.assignment);
    shards.open(dispatch);
    this.#fencing.watchNats(nc);
    this.#reporting.start(assignment);
    // Serving from here: everything is wired and the shards are on their way, so a stray rejection
    // in bot code no longer means "the cluster never started" (see guardProcess).
    this.serving = !this.stopping;
    if (this.#fencing.fenced) {
      // CONTROL ordered a fence while this cluster was starting: the shards connect (and start()
      // resolves) without waiting for them once CONTROL confirms the assignment.
      shards.markFenced();
      this.emitDebug('fenced before the shards connected: they connect once CONTROL confirms');
      return;
    }
    await shards.connect();
  }

  private onShardState(shardId: number, state: ShardState, previous: ShardState): void {
    // Set before the RESUME is sent: the shard's first event already finds it held.
    if (state === 'resuming') this.#dispatch?.resuming(shardId);
    this.emit('shardState', shardId, state, previous);
    this.#reporting.changed();
    if (state === 'ready' && this.#shards?.tracker.allInState('ready')) {
      this.emit('ready');
    }
  }

  /** A shard closed fatally (or REST's token was refused): bot code and, in a fleet, CONTROL hear it. */
  private onFatal(close: FatalShardClose): void {
    this.emit('fatal', close);
    void this.#fleet?.sendFatal(close.shardId, close.code, close.reason);
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
    if (fleet) void this.#process.exitAfterStop('NATS connection closed', 1);
    else void this.stop();
  }

  private async stopOnce(): Promise<void> {
    this.stopping = true;
    this.serving = false;
    this.#fencing.stop();
    this.#process.releaseSignals();
    await this.#fencing.settled();
    this.#dispatch?.closeResponder();
    if (this.#dispatch?.cutOver) await this.#shards?.closeForGood('resharded: the new generation serves');
    else await this.#shards?.closeForResume('cluster stopping');
    await this.#dispatch?.close().catch((error: unknown) => this.emitError(asError(error)));
    await this.#shards?.close();
    this.ipcValue.close();
    this.#restLink.close();
    await this.#nats?.close();
    this.#reporting.stop();
    // The last word to CONTROL: every shard idle, sessions saved.
    if (this.#fleet && this.#shards) await this.#fleet.sendStatus(this.status());
    this.#fleet?.close();
    this.#process.releaseGuard();
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
