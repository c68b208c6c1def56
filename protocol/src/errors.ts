/**
 * Stable error codes. Code strings never change meaning once released: tools, docs and other
 * processes match on them, not on messages.
 */
export const ErrorCode = {
  /** The `bot` namespace is not a NATS-token-safe name. */
  InvalidBotNamespace: 'DISCLUSTER_ERR_INVALID_BOT_NAMESPACE',
  /** An option is missing, of the wrong type or out of range. */
  InvalidOption: 'DISCLUSTER_ERR_INVALID_OPTION',
  /** A shard id or shard count is not a valid integer pair (`0 <= id < count`). */
  InvalidShard: 'DISCLUSTER_ERR_INVALID_SHARD',
  /** A KV key part is not a valid token. */
  InvalidKey: 'DISCLUSTER_ERR_INVALID_KEY',
  /** A value read from NATS did not match its schema. */
  InvalidRecord: 'DISCLUSTER_ERR_INVALID_RECORD',
  /** A wait for IDENTIFY permission was aborted by its signal. */
  IdentifyAborted: 'DISCLUSTER_ERR_IDENTIFY_ABORTED',
  /** The object was closed; it accepts no more work. */
  Closed: 'DISCLUSTER_ERR_CLOSED',
  /** The NATS connection was closed for good (it will not reconnect). */
  NatsClosed: 'DISCLUSTER_ERR_NATS_CLOSED',
  /**
   * During a reshard's handover a list reached its bound: held events were dropped (lost to bot
   * code) or recorded keys were (those events may reach bot code twice).
   */
  HandoverOverflow: 'DISCLUSTER_ERR_HANDOVER_OVERFLOW',
  /** Some session writes to NATS KV failed during a flush (they stay queued for the next one). */
  SessionFlushFailed: 'DISCLUSTER_ERR_SESSION_FLUSH_FAILED',
  /** An existing KV bucket is configured in a way that would break a promise (e.g. a shorter TTL). */
  BucketConfigMismatch: 'DISCLUSTER_ERR_BUCKET_CONFIG_MISMATCH',
  /** A KV bucket could not be created with, or raised to, the `kv_replicas` replica count. */
  BucketReplicas: 'DISCLUSTER_ERR_BUCKET_REPLICAS',
  /** A cluster id is not a non-negative integer. */
  InvalidClusterId: 'DISCLUSTER_ERR_INVALID_CLUSTER_ID',
  /** A message read from NATS did not match its schema; it was dropped. */
  InvalidMessage: 'DISCLUSTER_ERR_INVALID_MESSAGE',
  /** An IPC event or request name is empty, too long or not a string. */
  InvalidIpcName: 'DISCLUSTER_ERR_INVALID_IPC_NAME',
  /** IPC data is not JSON-serialisable. */
  IpcDataNotJson: 'DISCLUSTER_ERR_IPC_DATA_NOT_JSON',
  /** IPC data is larger than the configured limit once serialised. */
  IpcPayloadTooLarge: 'DISCLUSTER_ERR_IPC_PAYLOAD_TOO_LARGE',
  /** A request got no answer within its timeout. */
  IpcTimeout: 'DISCLUSTER_ERR_IPC_TIMEOUT',
  /** No cluster with that id is listening (it is down, or not in the plan). */
  IpcClusterUnreachable: 'DISCLUSTER_ERR_IPC_CLUSTER_UNREACHABLE',
  /** The receiving cluster has no handler for the request's name. */
  IpcNoHandler: 'DISCLUSTER_ERR_IPC_NO_HANDLER',
  /** The receiving cluster's handler threw or rejected. */
  IpcHandlerFailed: 'DISCLUSTER_ERR_IPC_HANDLER_FAILED',
  /** A sealed bot token could not be opened: wrong host key, wrong context or tampered with. */
  SealedTokenInvalid: 'DISCLUSTER_ERR_SEALED_TOKEN_INVALID',
  /** A command carried an epoch older than the one the receiver already runs; it was refused. */
  StaleEpoch: 'DISCLUSTER_ERR_STALE_EPOCH',
  /** Discord answered 401 to the bot token (`GET /gateway/bot`): the fleet stays stopped. */
  TokenRejected: 'DISCLUSTER_ERR_TOKEN_REJECTED',
  /** The fleet is stopped (fatal gateway error or `discluster stop`); the operation needs it running. */
  FleetStopped: 'DISCLUSTER_ERR_FLEET_STOPPED',
  /** MASTER has no plan yet (still waiting for hosts or for `GET /gateway/bot`). */
  NoPlan: 'DISCLUSTER_ERR_NO_PLAN',
  /** No MASTER answered (none running, or none is the leader yet). */
  MasterUnreachable: 'DISCLUSTER_ERR_MASTER_UNREACHABLE',
  /**
   * A host did not carry out a command (it answered an error, or not at all within the timeout); also
   * the code of any unforeseen failure a process answers a command or request with ({@link toWireError}).
   */
  HostCommandFailed: 'DISCLUSTER_ERR_HOST_COMMAND_FAILED',
  /**
   * A second running CONTROL announced a `host_id` that a live CONTROL already uses (cloned
   * machines share a hostname, the default); MASTER refused it and assigns it nothing.
   */
  DuplicateHostId: 'DISCLUSTER_ERR_DUPLICATE_HOST_ID',
  /** A reshard was refused before anything changed (budget, shard count, or one already running). */
  ReshardRefused: 'DISCLUSTER_ERR_RESHARD_REFUSED',
  /**
   * A `discluster resplit` was refused before anything changed (a size that is no multiple of
   * `max_concurrency`, a reshard or another re-split running, a stopped fleet).
   */
  ResplitRefused: 'DISCLUSTER_ERR_RESPLIT_REFUSED',
  /**
   * MASTER refused a placement and changed nothing: hosts' `pin_shards` overlap or name shards
   * outside the shard count, or a `discluster drain`/`undrain` has nowhere to put the shards.
   */
  PlacementRefused: 'DISCLUSTER_ERR_PLACEMENT_REFUSED',
  /**
   * `cluster.rest` refused a request before sending it: the fleet's invalid requests (401, 403, 429)
   * of the last 10 minutes neared the count at which Discord bans the IP, and this route keeps failing.
   */
  RestInvalidRequests: 'DISCLUSTER_ERR_REST_INVALID_REQUESTS',
  /** The operation is not available in this version (the message says which is). */
  Unsupported: 'DISCLUSTER_ERR_UNSUPPORTED',
} as const;

/** One of the {@link ErrorCode} strings. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** The shape an error takes on the wire (payloads, headers). */
export interface WireError {
  readonly code: string;
  readonly message: string;
}

/** Base class of every error Discluster throws or rejects with; match on {@link DisclusterError.code}. */
export class DisclusterError extends Error {
  /** Stable, documented code; see {@link ErrorCode}. */
  public readonly code: ErrorCode;

  public constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DisclusterError';
    this.code = code;
  }

  /** `{ code, message }`, for sending across NATS. */
  public toJSON(): WireError {
    return { code: this.code, message: this.message };
  }

  /** Rebuilds an error received over NATS; an unknown code keeps its message under `InvalidRecord`. */
  public static fromWire(wire: WireError): DisclusterError {
    if (KNOWN_CODES.has(wire.code)) return new DisclusterError(wire.code as ErrorCode, wire.message);
    return new DisclusterError(ErrorCode.InvalidRecord, `${wire.code}: ${wire.message}`);
  }
}

/**
 * The code an error that is not a {@link DisclusterError} takes on the wire: the receiver of a
 * command or request could not carry it out, for a reason it did not foresee.
 */
export const WIRE_ERROR_FALLBACK = ErrorCode.HostCommandFailed;

/**
 * The one conversion of a thrown value to `{ code, message }` for a reply: a
 * {@link DisclusterError} keeps its code, anything else takes {@link WIRE_ERROR_FALLBACK}.
 */
export function toWireError(error: unknown): WireError {
  if (error instanceof DisclusterError) return error.toJSON();
  return { code: WIRE_ERROR_FALLBACK, message: error instanceof Error ? error.message : String(error) };
}

/** True if `error` is a {@link DisclusterError} (optionally with the given code). */
export function isDisclusterError(error: unknown, code?: ErrorCode): error is DisclusterError {
  return error instanceof DisclusterError && (code === undefined || error.code === code);
}
