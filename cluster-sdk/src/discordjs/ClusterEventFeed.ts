import type { GatewayDispatchPayload } from 'discord-api-types/v10';
import type { Cluster } from '../cluster/Cluster.js';
import type { ShardState } from '../cluster/ShardStatus.js';
import { asError } from '../util/redact.js';

/** Where the feed delivers: the sharding strategy, once discord.js has connected it. */
export interface ClusterEventSink {
  dispatch(packet: GatewayDispatchPayload, shardId: number): void;
  /** The shard is (re)connecting: discord.js's `hello` (it marks the shard identifying or resuming). */
  hello(shardId: number): void;
  /** The shard's socket closed: discord.js's `closed` (`shardDisconnect` for fatal codes, else `shardReconnecting`). */
  closed(shardId: number, code: number): void;
  heartbeat(shardId: number, latencyMs: number, at: number): void;
}

type Held =
  | readonly ['dispatch', GatewayDispatchPayload, number]
  | readonly ['hello', number]
  | readonly ['closed', number, number]
  | readonly ['heartbeat', number, number, number];

const CONNECTING: ReadonlySet<ShardState> = new Set(['identifying', 'resuming']);
const CONNECTED: ReadonlySet<ShardState> = new Set(['identifying', 'resuming', 'ready']);
/** @discordjs/ws's "resuming" close: what a fence or a stop looks like to discord.js (not fatal). */
const RESUMABLE_CLOSE = 4200;

/**
 * The cluster's shard events, from the moment a discord.js client is created: discord.js logs in
 * (and has its shard objects) only after `start()` bound REST, while READY and the guild loading may
 * already be arriving, so everything is held until a sink attaches, then handed over in order.
 */
export class ClusterEventFeed {
  // Private fields: the cluster (and its token) must not show in util.inspect of the strategy.
  readonly #cluster: Cluster;
  readonly #onError: (error: Error) => void;
  #sink: ClusterEventSink | null = null;
  #held: Held[] | null = [];

  readonly #onDispatch = (packet: GatewayDispatchPayload, shardId: number): void => {
    if (!this.#sink) this.#held?.push(['dispatch', packet, shardId]);
    else this.#guarded(this.#sink, ['dispatch', packet, shardId]);
  };

  readonly #onState = (shardId: number, state: ShardState, previous: ShardState): void => {
    if (CONNECTING.has(state) && !CONNECTING.has(previous)) this.#deliver(['hello', shardId]);
    else if (!CONNECTED.has(state) && CONNECTED.has(previous) && state !== 'waiting')
      this.#deliver(['closed', shardId, this.#closeCode(shardId, state)]);
  };

  readonly #onHeartbeat = (shardId: number, latencyMs: number): void =>
    this.#deliver(['heartbeat', shardId, latencyMs, Date.now()]);

  /** `onError`: a discord.js listener threw (it runs inside the cluster's `dispatch`): the cluster's `error`. */
  public constructor(cluster: Cluster, onError: (error: Error) => void) {
    this.#cluster = cluster;
    this.#onError = onError;
    cluster.on('dispatch', this.#onDispatch);
    cluster.on('shardState', this.#onState);
    cluster.on('heartbeat', this.#onHeartbeat);
  }

  /** Hands over what was held, in order, then delivers live. */
  public attach(sink: ClusterEventSink): void {
    const held = this.#held ?? [];
    this.#held = [];
    for (const event of held) this.#guarded(sink, event);
    this.#sink = sink;
  }

  /** Holds events again (discord.js detaches its strategy while it sets the shard count up). */
  public detach(): void {
    this.#sink = null;
  }

  /** Stops listening to the cluster for good (the discord.js client was destroyed). */
  public close(): void {
    this.#sink = null;
    this.#held = null;
    this.#cluster.off('dispatch', this.#onDispatch);
    this.#cluster.off('shardState', this.#onState);
    this.#cluster.off('heartbeat', this.#onHeartbeat);
  }

  #deliver(event: Held): void {
    if (this.#sink) this.#guarded(this.#sink, event);
    else this.#held?.push(event);
  }

  /** A throwing bot listener must not break the cluster's own handling of the event. */
  #guarded(sink: ClusterEventSink, event: Held): void {
    try {
      deliverTo(sink, event);
    } catch (error) {
      const cause = asError(error);
      this.#onError(
        new Error(`a discord.js listener failed on ${describe(event)}: ${cause.message}`, { cause }),
      );
    }
  }

  /** A disconnection reports its close code (fatal ones make discord.js emit `shardDisconnect`). */
  #closeCode(shardId: number, state: ShardState): number {
    if (state !== 'disconnected') return RESUMABLE_CLOSE;
    const shard = this.#cluster.status().find((s) => s.id === shardId);
    return shard?.lastCloseCode ?? RESUMABLE_CLOSE;
  }

  public toJSON(): Record<string, never> {
    return {};
  }
}

function describe(event: Held): string {
  return event[0] === 'dispatch' ? `${event[1].t} of shard ${event[2]}` : `${event[0]} of shard ${event[1]}`;
}

function deliverTo(sink: ClusterEventSink, event: Held): void {
  switch (event[0]) {
    case 'dispatch':
      return sink.dispatch(event[1], event[2]);
    case 'hello':
      return sink.hello(event[1]);
    case 'closed':
      return sink.closed(event[1], event[2]);
    case 'heartbeat':
      return sink.heartbeat(event[1], event[2], event[3]);
  }
}
