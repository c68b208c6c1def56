import { DisclusterError, ErrorCode } from 'discluster-protocol/errors';
import type { GatewayDispatchPayload, GatewaySendPayload } from 'discord-api-types/v10';
import { asError } from '../util/redact.js';

/** What `@discordjs/core`'s `Client` (and any other listener) hears: one dispatch of one shard. */
export type ClusterGatewayListener = (payload: GatewayDispatchPayload, shardId: number) => unknown;

/** The parts of a `Cluster` its gateway needs; the cluster itself stays out of reach. */
export interface ClusterGatewayHost {
  readonly shardCount: () => number;
  readonly send: (shardId: number, payload: GatewaySendPayload) => Promise<void>;
  /** Adds/removes a listener of the cluster's `dispatch` event: what the handover gate delivers. */
  readonly subscribe: (listener: (payload: GatewayDispatchPayload, shardId: number) => void) => void;
  readonly unsubscribe: (listener: (payload: GatewayDispatchPayload, shardId: number) => void) => void;
  /** A listener that threw or rejected: reported as the cluster's `error`, never a crash. */
  readonly onError: (error: Error) => void;
}

/**
 * `cluster.gateway`: `@discordjs/core`'s `Gateway` interface on the cluster's shards, so
 * `new Client({ rest: cluster.rest, gateway: cluster.gateway })` works. It opens no socket of its
 * own: events are the cluster's `dispatch` events (after the handover gate), commands go through
 * `cluster.send`.
 *
 * The type is structural (no import of `@discordjs/core`), so the SDK's typings load without it; the
 * event name is the string `'dispatch'`, the value of `WebSocketShardEvents.Dispatch`.
 */
export class ClusterGateway {
  // Private fields: the host closes over the cluster (promise 4: nothing here may print it).
  readonly #host: ClusterGatewayHost;
  /** listener → its wrappers on the cluster, newest last (one per `on`, as an EventEmitter counts). */
  readonly #wrapped = new Map<
    ClusterGatewayListener,
    Array<(p: GatewayDispatchPayload, s: number) => void>
  >();

  public constructor(host: ClusterGatewayHost) {
    this.#host = host;
  }

  /** The fleet's total shard count (in a fleet, known once `start()` has the assignment). */
  public getShardCount(): number {
    return this.#host.shardCount();
  }

  /** Sends a gateway command on one of this cluster's shards (`DISCLUSTER_ERR_INVALID_SHARD` otherwise). */
  public send(shardId: number, payload: GatewaySendPayload): Promise<void> {
    return this.#host.send(shardId, payload);
  }

  /** Listens to every dispatch bot code receives, as `cluster.on('dispatch')` does. */
  public on(event: 'dispatch', listener: ClusterGatewayListener): this {
    checkEvent(event);
    const wrapper = (payload: GatewayDispatchPayload, shardId: number): void => {
      try {
        const result = listener(payload, shardId);
        if (isPromiseLike(result)) result.then(undefined, (error: unknown) => this.#failed(error));
      } catch (error) {
        this.#failed(error);
      }
    };
    const wrappers = this.#wrapped.get(listener) ?? [];
    wrappers.push(wrapper);
    this.#wrapped.set(listener, wrappers);
    this.#host.subscribe(wrapper);
    return this;
  }

  /** Removes the most recently added registration of `listener`. */
  public off(event: 'dispatch', listener: ClusterGatewayListener): this {
    checkEvent(event);
    const wrappers = this.#wrapped.get(listener);
    const wrapper = wrappers?.pop();
    if (!wrapper) return this;
    if (wrappers!.length === 0) this.#wrapped.delete(listener);
    this.#host.unsubscribe(wrapper);
    return this;
  }

  /** `JSON.stringify(cluster.gateway)`: nothing to show. */
  public toJSON(): Record<string, never> {
    return {};
  }

  #failed(error: unknown): void {
    const cause = asError(error);
    this.#host.onError(new Error(`a cluster.gateway dispatch listener failed: ${cause.message}`, { cause }));
  }
}

function checkEvent(event: string): void {
  if (event !== 'dispatch')
    throw new DisclusterError(
      ErrorCode.InvalidOption,
      `cluster.gateway emits only 'dispatch' (WebSocketShardEvents.Dispatch), got ${JSON.stringify(event)}`,
    );
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}
