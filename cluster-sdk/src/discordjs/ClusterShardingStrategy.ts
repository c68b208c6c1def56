import { Collection, WebSocketShardStatus } from 'discord.js';
import type { GatewayDispatchPayload, GatewaySendPayload } from 'discord-api-types/v10';
import { DisclusterError, ErrorCode } from 'discluster-protocol/errors';
import type { Cluster } from '../cluster/Cluster.js';
import type { ShardState } from '../cluster/ShardStatus.js';
import { asError } from '../util/redact.js';
import type { ClusterEventFeed, ClusterEventSink } from './ClusterEventFeed.js';
import { emitWs, WsEvent, type DjsShardingStrategy, type DjsWsManager, type SessionInfo } from './wsTypes.js';

const STATUS: Readonly<Record<ShardState, WebSocketShardStatus>> = {
  idle: WebSocketShardStatus.Idle,
  waiting: WebSocketShardStatus.Connecting,
  identifying: WebSocketShardStatus.Connecting,
  resuming: WebSocketShardStatus.Resuming,
  ready: WebSocketShardStatus.Ready,
  disconnected: WebSocketShardStatus.Idle,
  fenced: WebSocketShardStatus.Idle,
};

type ShardStatuses = Awaited<ReturnType<DjsShardingStrategy['fetchStatus']>>;

/** discord.js ends its client with close code 1000; anything else is a pause (see `destroy`). */
const NORMAL_CLOSE = 1000;

/**
 * The `ws.buildStrategy` discord.js's client runs on: an @discordjs/ws 1.x `IShardingStrategy` that
 * opens no socket. The cluster's shards (identify coordination, resume, fencing) stay in charge;
 * this feeds discord.js's manager their events as its own shards would emit them, and sends its
 * gateway commands through `cluster.send`.
 */
export class ClusterShardingStrategy implements DjsShardingStrategy, ClusterEventSink {
  // Private fields: the manager's options hold the token, the cluster its assignment (promise 4).
  readonly #manager: DjsWsManager;
  readonly #cluster: Cluster;
  readonly #feed: ClusterEventFeed;
  /** Sessions as discord.js sees them: the sequence is tracked here and handed over when it reads it. */
  readonly #sessions = new Map<number, SessionInfo>();

  public constructor(manager: DjsWsManager, cluster: Cluster, feed: ClusterEventFeed) {
    this.#manager = manager;
    this.#cluster = cluster;
    this.#feed = feed;
  }

  /** discord.js creates its shard objects for `shardIds` first: only then may events reach them. */
  public spawn(shardIds: number[]): void {
    const served = [...this.#cluster.shardIds].sort((a, b) => a - b);
    const asked = [...shardIds].sort((a, b) => a - b);
    if (served.join() !== asked.join())
      throw new DisclusterError(
        ErrorCode.InvalidShard,
        `discord.js asked for shards [${asked.join(', ')}], the cluster serves [${served.join(', ')}]`,
      );
  }

  /** Connects nothing: delivers what the cluster's shards sent so far, then live events. */
  public connect(): void {
    this.#feed.attach(this);
  }

  /**
   * discord.js calls `destroy` twice in its life: at login, while it sets the shard count up (no
   * code: events are held until `connect`), and from `client.destroy()` (code 1000: this client is
   * done and stops listening). The cluster's shards never close for it: `cluster.stop()` does that.
   */
  public destroy(options?: { code?: number }): void {
    if (options?.code === NORMAL_CLOSE) this.#feed.close();
    else this.#feed.detach();
  }

  /**
   * discord.js ignores the promise of `send` (presence broadcast, member requests): a failure is
   * reported as the manager's `error` event (discord.js's `shardError`) instead of an unhandled rejection.
   */
  public async send(shardId: number, payload: GatewaySendPayload): Promise<void> {
    try {
      await this.#cluster.send(shardId, payload);
    } catch (error) {
      emitWs(this.#manager, WsEvent.Error, { error: asError(error), shardId });
    }
  }

  public fetchStatus(): ShardStatuses {
    const statuses = new Collection(this.#cluster.status().map((shard) => [shard.id, STATUS[shard.state]]));
    // discord.js's typings export a newer @discordjs/collection than the one @discordjs/ws 1.x names;
    // at run time both are the same Map subclass.
    return statuses as unknown as ShardStatuses;
  }

  public dispatch(packet: GatewayDispatchPayload, shardId: number): void {
    // @discordjs/ws 1.x order: READY/RESUMED's own event first, then the dispatch.
    if (packet.t === 'READY') {
      this.#storeSession(shardId, {
        sessionId: packet.d.session_id,
        resumeURL: packet.d.resume_gateway_url,
        sequence: packet.s,
        shardId,
        shardCount: this.#cluster.shardCount,
      });
      emitWs(this.#manager, WsEvent.Ready, { data: packet.d, shardId });
    } else if (packet.t === 'RESUMED') {
      this.#handOverSequence(shardId, packet.s);
      emitWs(this.#manager, WsEvent.Resumed, { shardId });
    } else {
      const session = this.#sessions.get(shardId);
      if (session && packet.s > session.sequence) session.sequence = packet.s;
    }
    emitWs(this.#manager, WsEvent.Dispatch, { data: packet, shardId });
  }

  public hello(shardId: number): void {
    emitWs(this.#manager, WsEvent.Hello, { shardId });
  }

  public closed(shardId: number, code: number): void {
    // discord.js reads the sequence at `hello` to count what a RESUME replays.
    const session = this.#sessions.get(shardId);
    if (session) this.#storeSession(shardId, session);
    emitWs(this.#manager, WsEvent.Closed, { code, shardId });
  }

  public heartbeat(shardId: number, latencyMs: number, at: number): void {
    emitWs(this.#manager, WsEvent.HeartbeatComplete, {
      ackAt: at,
      heartbeatAt: at - latencyMs,
      latency: latencyMs,
      shardId,
    });
  }

  /** `JSON.stringify` of the strategy: nothing to show. */
  public toJSON(): Record<string, never> {
    return {};
  }

  /**
   * discord.js's RESUMED handler reads the session's sequence. A shard this client never saw READY
   * on (it resumed a session of an earlier process) gets one, so the handler finds a session; its
   * id is not the SDK's to hand out here.
   */
  #handOverSequence(shardId: number, sequence: number): void {
    const session = this.#sessions.get(shardId) ?? {
      sessionId: '',
      resumeURL: '',
      sequence,
      shardId,
      shardCount: this.#cluster.shardCount,
    };
    session.sequence = Math.max(session.sequence, sequence);
    this.#storeSession(shardId, session);
  }

  /** discord.js keeps its copy through the manager's `updateSessionInfo` (a copy: we mutate ours). */
  #storeSession(shardId: number, session: SessionInfo): void {
    this.#sessions.set(shardId, session);
    void this.#manager.options.updateSessionInfo(shardId, { ...session });
  }
}
