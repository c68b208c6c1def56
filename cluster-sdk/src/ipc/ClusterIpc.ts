import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { DisclusterError, ErrorCode } from 'discluster-protocol/errors';
import {
  MAX_IPC_NAME_LENGTH,
  parseIpcEnvelope,
  parseIpcReply,
  type IpcEnvelope,
  type IpcReply,
} from 'discluster-protocol/ipc';
import { ipcSubjects } from 'discluster-protocol/subjects';
import { ReplyInbox, type ReplyOutcome } from './ReplyInbox.js';

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

type Bound = ClusterIpcBinding & {
  readonly subjects: ReturnType<typeof ipcSubjects>;
  /** Replies to this cluster's requests: one subscription and one timer for all of them. */
  readonly inbox: ReplyInbox;
  /** `subjects.requests(clusterId)`, built once per cluster. */
  readonly requestSubject: (clusterId: number) => string;
};
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
  private binding: Bound | null = null;
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
    const subjects = ipcSubjects(binding.bot);
    const requestSubjects = new Map<number, string>();
    this.binding = {
      ...binding,
      subjects,
      inbox: new ReplyInbox(binding.nc),
      requestSubject: (clusterId) => {
        let subject = requestSubjects.get(clusterId);
        if (subject === undefined) {
          subject = subjects.requests(clusterId);
          if (requestSubjects.size < 4096) requestSubjects.set(clusterId, subject);
        }
        return subject;
      },
    };
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
          if (!error) this.answer(msg);
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
  public request(
    clusterId: number,
    name: string,
    data?: unknown,
    options: IpcRequestOptions = {},
  ): Promise<unknown> {
    let payload: Uint8Array;
    let timeoutMs: number;
    let bound: Bound;
    try {
      payload = this.encodeEnvelope(name, data);
      timeoutMs = checkTimeout(options.timeoutMs ?? this.defaultTimeoutMs);
      bound = this.bound();
    } catch (error) {
      return Promise.reject(asDisclusterError(error));
    }
    return new Promise((resolve, reject) => {
      bound.inbox.request(bound.requestSubject(clusterId), payload, timeoutMs, (outcome) => {
        const result = this.outcome(outcome, clusterId, name, timeoutMs);
        if (result.ok) resolve(result.value);
        else reject(result.error);
      });
    });
  }

  /**
   * Asks every cluster of the current plan at once. Resolves with one entry per cluster, errors
   * included, no later than the timeout.
   */
  public requestAll(
    name: string,
    data?: unknown,
    options: IpcRequestOptions = {},
  ): Promise<IpcRequestAllResult[]> {
    let payload: Uint8Array;
    let timeoutMs: number;
    let bound: Bound;
    try {
      timeoutMs = checkTimeout(options.timeoutMs ?? this.defaultTimeoutMs);
      // Validated and serialised once: a bad name or payload rejects instead of failing per cluster,
      // and every cluster gets the same bytes.
      payload = this.encodeEnvelope(name, data);
      bound = this.bound();
    } catch (error) {
      return Promise.reject(asDisclusterError(error));
    }
    const clusterIds = [...new Set(this.options.clusterIds())];
    const results = new Array<IpcRequestAllResult>(clusterIds.length);
    if (clusterIds.length === 0) return Promise.resolve(results);
    return new Promise((resolve) => {
      let waiting = clusterIds.length;
      clusterIds.forEach((clusterId, index) => {
        bound.inbox.request(bound.requestSubject(clusterId), payload, timeoutMs, (outcome) => {
          const result = this.outcome(outcome, clusterId, name, timeoutMs);
          results[index] = result.ok
            ? { clusterId, ok: true, value: result.value }
            : { clusterId, ok: false, error: result.error };
          if (--waiting === 0) resolve(results);
        });
      });
    });
  }

  /** What a request's outcome means: the handler's value, or the documented error. */
  private outcome(
    outcome: ReplyOutcome,
    clusterId: number,
    name: string,
    timeoutMs: number,
  ): { ok: true; value: unknown } | { ok: false; error: DisclusterError } {
    switch (outcome.kind) {
      case 'reply': {
        const reply = this.decode(outcome.msg, parseIpcReply, `reply from cluster ${clusterId}`);
        if (!reply)
          return {
            ok: false,
            error: new DisclusterError(
              ErrorCode.InvalidMessage,
              `cluster ${clusterId} sent a malformed reply to "${name}"`,
            ),
          };
        return reply.ok
          ? { ok: true, value: reply.value }
          : { ok: false, error: DisclusterError.fromWire(reply.error) };
      }
      case 'no-responders':
        return {
          ok: false,
          error: new DisclusterError(
            ErrorCode.IpcClusterUnreachable,
            `cluster ${clusterId} is not listening (request "${name}")`,
          ),
        };
      case 'timeout':
        return {
          ok: false,
          error: new DisclusterError(
            ErrorCode.IpcTimeout,
            `cluster ${clusterId} did not answer "${name}" within ${timeoutMs} ms`,
          ),
        };
      case 'failed':
        return { ok: false, error: asDisclusterError(outcome.error) };
    }
  }

  /** Stops listening. Pending requests this cluster made still settle (by reply or timeout). */
  public close(): void {
    for (const subscription of this.subscriptions.splice(0)) subscription.unsubscribe();
  }

  private deliverEvent(msg: Msg): void {
    const envelope = this.decode(msg, parseIpcEnvelope, 'event');
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

  private answer(msg: Msg): void {
    const envelope = this.decode(msg, parseIpcEnvelope, 'request');
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
    let value: unknown;
    try {
      value = handler(envelope.data, envelope.from);
    } catch (error) {
      this.replyFailure(msg, envelope.name, error);
      return;
    }
    // A handler that answers at once is replied to at once; a promise (or any thenable) is awaited.
    if (isThenable(value)) {
      Promise.resolve(value).then(
        (resolved: unknown) => this.reply(msg, { v: 1, ok: true, value: resolved ?? null }),
        (error: unknown) => this.replyFailure(msg, envelope.name, error),
      );
    } else this.reply(msg, { v: 1, ok: true, value: value ?? null });
  }

  private replyFailure(msg: Msg, name: string, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.reply(msg, {
      v: 1,
      ok: false,
      error: {
        code: ErrorCode.IpcHandlerFailed,
        message: `handler for "${name}" on cluster ${this.bound().clusterId} failed: ${message}`.slice(
          0,
          4096,
        ),
      },
    });
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
    // Encoded once: the bytes measured are the bytes sent.
    let bytes = this.encoder.encode(body);
    if (bytes.byteLength > this.maxPayloadBytes) {
      bytes = this.encoder.encode(
        JSON.stringify({
          v: 1,
          ok: false,
          error: {
            code: ErrorCode.IpcPayloadTooLarge,
            message: `the reply is larger than ${this.maxPayloadBytes} bytes`,
          },
        }),
      );
    }
    try {
      msg.respond(bytes);
    } catch (error) {
      // The connection is closing: the requester times out or fails on its side.
      this.reportError(new Error('could not send an IPC reply', { cause: error }));
    }
  }

  private decode<T>(msg: Msg, parse: (value: unknown) => T | null, what: string): T | null {
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
    const parsed = parse(raw);
    if (parsed === null) {
      this.reportError(
        new DisclusterError(
          ErrorCode.InvalidMessage,
          `dropped a malformed IPC ${what} (subject ${msg.subject})`,
        ),
      );
      return null;
    }
    return parsed;
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

  private bound(): Bound {
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

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

function asDisclusterError(error: unknown): DisclusterError {
  if (error instanceof DisclusterError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new DisclusterError(ErrorCode.NatsClosed, `IPC failed: ${message}`, { cause: error });
}
