import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { NoRespondersError, TimeoutError } from '@nats-io/transport-node';
import {
  DisclusterError,
  ErrorCode,
  IpcEnvelopeSchema,
  IpcReplySchema,
  MAX_IPC_NAME_LENGTH,
  ipcSubjects,
  type IpcEnvelope,
  type IpcReply,
} from 'discluster-protocol';

/** Receives an event: its data and the id of the cluster that sent it. */
export type IpcListener = (data: unknown, from: number) => void;
/** Answers a request; the returned (or resolved) value goes back to the requester. */
export type IpcHandler = (data: unknown, from: number) => unknown;

/** One cluster's answer in {@link ClusterIpc.requestAll}. */
export type IpcRequestAllResult =
  | { readonly clusterId: number; readonly ok: true; readonly value: unknown }
  | { readonly clusterId: number; readonly ok: false; readonly error: DisclusterError };

export interface IpcRequestOptions {
  /** How long to wait for the answer; the request fails with `DISCLUSTER_ERR_IPC_TIMEOUT` after it. */
  readonly timeoutMs?: number;
}

/** Where a {@link ClusterIpc} talks: known once the cluster has its assignment and its NATS connection. */
export interface ClusterIpcBinding {
  readonly nc: NatsConnection;
  readonly bot: string;
  /** This cluster's id. */
  readonly clusterId: number;
}

/**
 * Options of {@link ClusterIpc}. With `nc`, `bot` and `clusterId` it is bound at once; without
 * them, listeners and handlers can be registered first and {@link ClusterIpc.bind} comes later
 * (a `Cluster` binds its IPC in `start()`, after bot code registered its handlers).
 */
export interface ClusterIpcOptions extends Partial<ClusterIpcBinding> {
  /** Cluster ids of the current plan: whom `requestAll` asks. */
  readonly clusterIds: () => readonly number[];
  /** Largest serialised event, request or reply. Default 512 KiB (NATS' default max is 1 MiB). */
  readonly maxPayloadBytes?: number;
  /** Timeout of requests that do not set one. Default 5000 ms. */
  readonly defaultTimeoutMs?: number;
  /** Called with listener errors and malformed messages; they never crash the cluster. */
  readonly onError?: (error: Error) => void;
}

const DEFAULT_MAX_PAYLOAD_BYTES = 512 * 1024;
const DEFAULT_TIMEOUT_MS = 5000;

/**
 * Events and requests between the clusters of one bot, over NATS. Names travel in the payload, so
 * any string is a valid name; every message read is validated and a bad one is dropped with an error
 * event, never a crash. Requests to a cluster that is down fail fast (NATS reports no responders) or
 * at their timeout, and `requestAll` never waits past its deadline.
 */
export class ClusterIpc {
  private readonly listeners = new Map<string, Set<IpcListener>>();
  private readonly handlers = new Map<string, IpcHandler>();
  private readonly subscriptions: Subscription[] = [];
  private binding: (ClusterIpcBinding & { subjects: ReturnType<typeof ipcSubjects> }) | null = null;
  private readonly maxPayloadBytes: number;
  private readonly defaultTimeoutMs: number;
  private readonly encoder = new TextEncoder();

  public constructor(private readonly options: ClusterIpcOptions) {
    const { nc, bot, clusterId } = options;
    if (nc !== undefined && bot !== undefined && clusterId !== undefined) this.bind({ nc, bot, clusterId });
    this.maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Sets the connection, bot and cluster id of an IPC created without them. Once only. */
  public bind(binding: ClusterIpcBinding): void {
    if (this.binding) throw new DisclusterError(ErrorCode.InvalidOption, 'ClusterIpc is already bound');
    this.binding = { ...binding, subjects: ipcSubjects(binding.bot) };
  }

  /** Subscribes to this cluster's subjects. Resolves once the server has them, so no early event is missed. */
  public async start(): Promise<void> {
    const { nc, clusterId, subjects } = this.bound();
    const onEvent = (error: Error | null, msg: Msg): void => {
      if (!error) this.deliverEvent(msg);
    };
    this.subscriptions.push(
      nc.subscribe(subjects.broadcast, { callback: onEvent }),
      nc.subscribe(subjects.events(clusterId), { callback: onEvent }),
      nc.subscribe(subjects.requests(clusterId), {
        callback: (error, msg) => {
          if (!error) void this.answer(msg);
        },
      }),
    );
    await nc.flush();
  }

  /** Listens for events named `name` (from `emit` and `emitTo`). */
  public on(name: string, listener: IpcListener): this {
    checkName(name);
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener);
    return this;
  }

  public off(name: string, listener: IpcListener): this {
    this.listeners.get(name)?.delete(listener);
    return this;
  }

  /** Sends an event to every cluster of the bot, this one included. */
  public emit(name: string, data?: unknown): void {
    const { nc, subjects } = this.bound();
    nc.publish(subjects.broadcast, this.encodeEnvelope(name, data));
  }

  /** Sends an event to one cluster. Nothing happens if that cluster is not listening. */
  public emitTo(clusterId: number, name: string, data?: unknown): void {
    const { nc, subjects } = this.bound();
    nc.publish(subjects.events(clusterId), this.encodeEnvelope(name, data));
  }

  /** Answers requests named `name`. One handler per name; a later call replaces it. */
  public handle(name: string, handler: IpcHandler): this {
    checkName(name);
    this.handlers.set(name, handler);
    return this;
  }

  /**
   * Asks one cluster and resolves with its handler's value. Rejects with a {@link DisclusterError}:
   * `IPC_CLUSTER_UNREACHABLE` (no such cluster listening), `IPC_TIMEOUT`, `IPC_NO_HANDLER`,
   * `IPC_HANDLER_FAILED`, or a payload error.
   */
  public async request(
    clusterId: number,
    name: string,
    data?: unknown,
    options: IpcRequestOptions = {},
  ): Promise<unknown> {
    const payload = this.encodeEnvelope(name, data);
    const timeout = checkTimeout(options.timeoutMs ?? this.defaultTimeoutMs);
    let msg: Msg;
    try {
      const { nc, subjects } = this.bound();
      msg = await nc.request(subjects.requests(clusterId), payload, { timeout });
    } catch (error) {
      throw requestFailure(error, clusterId, name, timeout);
    }
    const reply = this.decode(msg, IpcReplySchema, `reply from cluster ${clusterId}`);
    if (!reply)
      throw new DisclusterError(
        ErrorCode.InvalidMessage,
        `cluster ${clusterId} sent a malformed reply to "${name}"`,
      );
    if (reply.ok) return reply.value;
    throw DisclusterError.fromWire(reply.error);
  }

  /**
   * Asks every cluster of the current plan at once. Resolves with one entry per cluster, errors
   * included, no later than the timeout.
   */
  public async requestAll(
    name: string,
    data?: unknown,
    options: IpcRequestOptions = {},
  ): Promise<IpcRequestAllResult[]> {
    const timeoutMs = checkTimeout(options.timeoutMs ?? this.defaultTimeoutMs);
    // Validate once up front, so a bad name or payload rejects instead of failing per cluster.
    this.encodeEnvelope(name, data);
    const clusterIds = [...new Set(this.options.clusterIds())];
    return Promise.all(
      clusterIds.map((clusterId) =>
        this.request(clusterId, name, data, { timeoutMs }).then(
          (value): IpcRequestAllResult => ({ clusterId, ok: true, value }),
          (error: unknown): IpcRequestAllResult => ({
            clusterId,
            ok: false,
            error: asDisclusterError(error),
          }),
        ),
      ),
    );
  }

  /** Stops listening. Pending requests this cluster made still settle (by reply or timeout). */
  public close(): void {
    for (const subscription of this.subscriptions.splice(0)) subscription.unsubscribe();
  }

  private deliverEvent(msg: Msg): void {
    const envelope = this.decode(msg, IpcEnvelopeSchema, 'event');
    if (!envelope) return;
    const listeners = this.listeners.get(envelope.name);
    if (!listeners) return;
    for (const listener of listeners) {
      try {
        listener(envelope.data, envelope.from);
      } catch (error) {
        this.reportError(new Error(`IPC listener for "${envelope.name}" threw`, { cause: error }));
      }
    }
  }

  private async answer(msg: Msg): Promise<void> {
    const envelope = this.decode(msg, IpcEnvelopeSchema, 'request');
    if (!envelope) {
      this.reply(msg, {
        v: 1,
        ok: false,
        error: { code: ErrorCode.InvalidMessage, message: 'malformed IPC request' },
      });
      return;
    }
    const handler = this.handlers.get(envelope.name);
    if (!handler) {
      this.reply(msg, {
        v: 1,
        ok: false,
        error: {
          code: ErrorCode.IpcNoHandler,
          message: `cluster ${this.bound().clusterId} has no handler for "${envelope.name}"`,
        },
      });
      return;
    }
    try {
      const value: unknown = await handler(envelope.data, envelope.from);
      this.reply(msg, { v: 1, ok: true, value: value ?? null });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.reply(msg, {
        v: 1,
        ok: false,
        error: {
          code: ErrorCode.IpcHandlerFailed,
          message:
            `handler for "${envelope.name}" on cluster ${this.bound().clusterId} failed: ${message}`.slice(
              0,
              4096,
            ),
        },
      });
    }
  }

  private reply(msg: Msg, reply: IpcReply): void {
    if (!msg.reply) return;
    let body: string;
    try {
      body = JSON.stringify(reply);
    } catch {
      body = JSON.stringify({
        v: 1,
        ok: false,
        error: {
          code: ErrorCode.IpcDataNotJson,
          message: 'the handler returned a value that is not JSON-serialisable',
        },
      });
    }
    if (this.encoder.encode(body).byteLength > this.maxPayloadBytes) {
      body = JSON.stringify({
        v: 1,
        ok: false,
        error: {
          code: ErrorCode.IpcPayloadTooLarge,
          message: `the reply is larger than ${this.maxPayloadBytes} bytes`,
        },
      });
    }
    msg.respond(body);
  }

  private decode<T>(
    msg: Msg,
    schema: { safeParse(value: unknown): { success: true; data: T } | { success: false } },
    what: string,
  ): T | null {
    let raw: unknown;
    try {
      raw = msg.json();
    } catch {
      this.reportError(
        new DisclusterError(
          ErrorCode.InvalidMessage,
          `dropped an IPC ${what} that is not JSON (subject ${msg.subject})`,
        ),
      );
      return null;
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      this.reportError(
        new DisclusterError(
          ErrorCode.InvalidMessage,
          `dropped a malformed IPC ${what} (subject ${msg.subject})`,
        ),
      );
      return null;
    }
    return parsed.data;
  }

  private encodeEnvelope(name: string, data: unknown): Uint8Array {
    checkName(name);
    const envelope: IpcEnvelope = { v: 1, name, from: this.bound().clusterId, data: data ?? null };
    let text: string;
    try {
      text = JSON.stringify(envelope);
    } catch (error) {
      throw new DisclusterError(ErrorCode.IpcDataNotJson, `IPC data for "${name}" is not JSON-serialisable`, {
        cause: error,
      });
    }
    const bytes = this.encoder.encode(text);
    if (bytes.byteLength > this.maxPayloadBytes) {
      throw new DisclusterError(
        ErrorCode.IpcPayloadTooLarge,
        `IPC data for "${name}" is ${bytes.byteLength} bytes once serialised; the limit is ${this.maxPayloadBytes} (send less, or a reference to where the data is)`,
      );
    }
    return bytes;
  }

  private bound(): ClusterIpcBinding & { subjects: ReturnType<typeof ipcSubjects> } {
    if (!this.binding) {
      throw new DisclusterError(
        ErrorCode.Closed,
        'IPC can send once cluster.start() has resolved (listeners and handlers can be registered before)',
      );
    }
    return this.binding;
  }

  private reportError(error: Error): void {
    this.options.onError?.(error);
  }
}

function checkName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_IPC_NAME_LENGTH) {
    throw new DisclusterError(
      ErrorCode.InvalidIpcName,
      `IPC names must be 1-${MAX_IPC_NAME_LENGTH} characters, got ${JSON.stringify(name)}`,
    );
  }
}

function checkTimeout(timeoutMs: number): number {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new DisclusterError(
      ErrorCode.InvalidOption,
      `timeoutMs must be a positive number of milliseconds, got ${String(timeoutMs)}`,
    );
  }
  return timeoutMs;
}

function requestFailure(error: unknown, clusterId: number, name: string, timeoutMs: number): DisclusterError {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  if (cause instanceof NoRespondersError) {
    return new DisclusterError(
      ErrorCode.IpcClusterUnreachable,
      `cluster ${clusterId} is not listening (request "${name}")`,
      { cause: error },
    );
  }
  if (cause instanceof TimeoutError) {
    return new DisclusterError(
      ErrorCode.IpcTimeout,
      `cluster ${clusterId} did not answer "${name}" within ${timeoutMs} ms`,
      { cause: error },
    );
  }
  return asDisclusterError(error);
}

function asDisclusterError(error: unknown): DisclusterError {
  if (error instanceof DisclusterError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new DisclusterError(ErrorCode.NatsClosed, `IPC failed: ${message}`, { cause: error });
}
