import type { WebSocketManager } from '@discordjs/ws';
import type { GatewayDispatchPayload, GatewaySendPayload } from 'discord-api-types/v10';
import { GatewaySourceRelay } from '../net/GatewaySourceRelay.js';
import { asError, redact } from '../util/redact.js';
import type { FatalShardClose } from './ClusterEvents.js';
import type { ClusterAssignment, ClusterOptions, ResolvedClusterSettings } from './ClusterOptions.js';
import { invalidShardError } from './clusterErrors.js';
import {
  buildSessionStore,
  buildThrottler,
  type ClusterBuildContext,
  type ClusterIdentifyThrottler,
  type ClusterSessionStore,
} from './clusterSeams.js';
import { createShardManager, type ShardManagerWiring } from './createShardManager.js';
import { FATAL_CLOSE_CODES, isFatalCloseCode } from './fatalCloseCodes.js';
import { ShardManagerLife } from './ShardManagerLife.js';
import { ShardStatusTracker, type ShardState, type ShardStatus } from './ShardStatus.js';

/** What a cluster's shards tell the cluster. */
export interface ClusterShardsHost extends Pick<
  ShardManagerWiring,
  'closingOnPurpose' | 'onHeartbeat' | 'onIdentifyHeld' | 'onDebug'
> {
  readonly settings: ResolvedClusterSettings;
  readonly onState: (shardId: number, state: ShardState, previous: ShardState) => void;
  /** A shard keeps waiting to identify for a reason other than the rate limit. */
  readonly onWaiting: (shardId: number, reason: string) => void;
  /** A shard's last guild arrived: report now (a reshard switches over once every new shard has its guilds). */
  readonly onGuildsLoaded: (shardId: number) => void;
  /** A shard closed with a fatal code: it is idle and stays down. */
  readonly onFatal: (close: FatalShardClose) => void;
  readonly onError: (error: Error) => void;
}

/** Where the shards' dispatches go (the cluster's DispatchPath). */
export interface ShardDispatchTarget {
  offer(packet: GatewayDispatchPayload, shardId: number, sessionSetup: boolean): void;
  /** True while a resumed shard's events are held for its restored guilds (see deferResumed). */
  holding(shardId: number): boolean;
}

/**
 * The shards of one started cluster: their states ({@link tracker}, there from the start so
 * identify waits show), the session store and identify throttler they RESUME and identify
 * through, the @discordjs/ws manager (built once the rest of the cluster is wired), and the ways
 * they close: to resume later (fence, stop), for good (after a reshard), or fatally.
 */
export class ClusterShards {
  public readonly tracker: ShardStatusTracker;
  // Private fields: the assignment and the manager's options carry the token (promise 4).
  readonly #assignment: ClusterAssignment;
  readonly #host: ClusterShardsHost;
  #sessions: ClusterSessionStore | null = null;
  #throttler: ClusterIdentifyThrottler | null = null;
  #manager: WebSocketManager | null = null;
  /** The life of {@link #manager}: a closed one is replaced at the next connect. */
  #life = new ShardManagerLife();
  /** Builds a new manager wired like the first ({@link open} sets it). */
  #rebuild: (() => WebSocketManager) | null = null;
  /** With `assignment.sourceAddress`: the relay every gateway socket leaves through. */
  #relay: GatewaySourceRelay | null = null;
  readonly #fatal = new Set<number>();
  /** While set, @discordjs/ws's "forget this session" on destroy is ignored: we close to resume later. */
  #keepSessions = false;

  public constructor(assignment: ClusterAssignment, host: ClusterShardsHost) {
    this.#assignment = assignment;
    this.#host = host;
    this.tracker = new ShardStatusTracker(assignment.shardIds, host.onState);
  }

  /** True once a shard closed with a fatal code: nothing reconnects after that. */
  public get hasFatal(): boolean {
    return this.#fatal.size > 0;
  }

  /** The session store, once built (guild snapshots read its cached sessions). */
  public get sessions(): ClusterSessionStore | null {
    return this.#sessions;
  }

  /** Builds the session store, then the identify throttler: bot code's own, or the NATS defaults. */
  public async buildSeams(
    build: Pick<ClusterOptions, 'buildSessionStore' | 'buildIdentifyThrottler'>,
    context: ClusterBuildContext,
  ): Promise<void> {
    const { sourceAddress } = this.#assignment;
    if (sourceAddress !== undefined) {
      this.#relay = await GatewaySourceRelay.open(sourceAddress, this.#host.onDebug);
      this.#host.onDebug(`gateway and REST sockets bind to ${sourceAddress}`);
    }
    this.#sessions = await buildSessionStore(build.buildSessionStore, context, this.#host.onDebug);
    this.#throttler = await buildThrottler(build.buildIdentifyThrottler, context, {
      waiting: (shardId, message) => {
        this.tracker.setState(shardId, 'waiting', message);
        this.#host.onWaiting(shardId, message);
      },
      debug: this.#host.onDebug,
    });
  }

  /** A later assignment's `session_start_limit`, dated by its fetch. */
  public updateBudget(gateway: ClusterAssignment['gateway']): void {
    this.#throttler
      ?.updateBudget?.(gateway.session_start_limit, gateway.fetchedAt ?? Date.now())
      .catch((error: unknown) => this.#host.onError(asError(error)));
  }

  /** Builds the manager (after {@link buildSeams}), delivering to `target`; the shards connect at {@link connect}. */
  public open(target: ShardDispatchTarget): void {
    const sessions = this.#sessions;
    const throttler = this.#throttler;
    if (!sessions || !throttler) throw new Error('ClusterShards.open before buildSeams');
    this.#rebuild = () => this.#buildManager(target, sessions, throttler);
    this.#manager = this.#rebuild();
  }

  #buildManager(
    target: ShardDispatchTarget,
    sessions: ClusterSessionStore,
    throttler: ClusterIdentifyThrottler,
  ): WebSocketManager {
    const host = this.#host;
    const life = new ShardManagerLife();
    this.#life = life;
    return createShardManager({
      assignment: this.#assignment,
      settings: host.settings,
      sessions,
      throttler,
      tracker: this.tracker,
      life,
      keepSessions: () => this.#keepSessions,
      closingOnPurpose: host.closingOnPurpose,
      onDispatch: (packet, shardId, sessionSetup) => {
        target.offer(packet, shardId, sessionSetup);
        if (sessionSetup && packet.t === 'GUILD_CREATE' && this.tracker.loadingGuilds(shardId) === 0)
          host.onGuildsLoaded(shardId);
      },
      onHeartbeat: host.onHeartbeat,
      onShardError: (shardId, error) => this.#onShardError(shardId, error),
      onIdentifyHeld: host.onIdentifyHeld,
      onDebug: host.onDebug,
      deferResumed: (shardId) => target.holding(shardId),
      relay: this.#relay,
    });
  }

  /**
   * Connects every shard, on a new manager if the last one was closed (a fence, see
   * ShardManagerLife). Resolves when they are ready, or when this manager is closed before that
   * (a fence during the connect: the next connect takes over).
   */
  public async connect(): Promise<void> {
    if (!this.#manager || !this.#rebuild) return;
    if (!this.#life.acceptsSessions) this.#manager = this.#rebuild();
    await Promise.race([this.#manager.connect(), this.#life.closed]);
  }

  public async send(shardId: number, payload: GatewaySendPayload): Promise<void> {
    if (!this.#manager || !this.#assignment.shardIds.includes(shardId))
      throw invalidShardError(shardId, this.#assignment.clusterId);
    await this.#manager.send(shardId, payload);
  }

  public status(): ShardStatus[] {
    return this.tracker.snapshot();
  }

  /** Marks every shard that did not close fatally `fenced`. */
  public markFenced(): void {
    for (const id of this.#assignment.shardIds) {
      if (!this.#fatal.has(id)) this.tracker.setState(id, 'fenced');
    }
  }

  /** After the shards closed: every shard idle, then the session store saves and the throttler lets go. */
  public async close(): Promise<void> {
    for (const id of this.#assignment.shardIds) this.tracker.setState(id, 'idle');
    const report = (error: unknown): void => this.#host.onError(asError(error));
    await this.#sessions?.close().catch(report);
    await this.#throttler?.close().catch(report);
    await this.#relay?.close().catch(report);
  }

  /** Closes every shard so its session stays resumable (a fence, a stop). */
  public async closeForResume(reason: string): Promise<void> {
    if (!this.#manager) return;
    const life = this.#life;
    life.beginClose();
    this.#keepSessions = true;
    try {
      // 4200 is @discordjs/ws's "resuming" close: any code but 1000/1001 keeps the session resumable.
      await this.#manager.destroy({ code: 4200, reason });
    } catch (error) {
      this.#host.onError(asError(error));
    } finally {
      this.#keepSessions = false;
      life.finishClose();
    }
  }

  /**
   * After a reshard's cutover the old generation's sessions end for good: close 1000 (Discord
   * drops the session) and the session records go with them (@discordjs/ws clears them).
   */
  public async closeForGood(reason: string): Promise<void> {
    if (!this.#manager) return;
    const life = this.#life;
    life.beginClose();
    try {
      await this.#manager.destroy({ code: 1000, reason });
    } catch (error) {
      this.#host.onError(asError(error));
    } finally {
      life.finishClose();
    }
  }

  #onShardError(shardId: number, error: Error): void {
    const code = this.tracker.snapshot().find((shard) => shard.id === shardId)?.lastCloseCode ?? null;
    if (isFatalCloseCode(code)) {
      this.#fatal.add(shardId);
      this.tracker.setState(shardId, 'idle');
      this.#host.onFatal({ shardId, code, reason: redact(`${FATAL_CLOSE_CODES[code]} (${error.message})`) });
      return;
    }
    this.#host.onError(new Error(`shard ${shardId}: ${error.message}`, { cause: error }));
  }
}
