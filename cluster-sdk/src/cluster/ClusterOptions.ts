import type { ConnectionOptions, NatsConnection } from '@nats-io/transport-node';
import type { APIGatewayBotInfo } from 'discord-api-types/v10';
import { AssignmentSchema } from 'discluster-protocol/clusterControl';
import { DisclusterError, ErrorCode } from 'discluster-protocol/errors';
import { DEFAULT_BOT, validateBotNamespace } from 'discluster-protocol/kv';
import { isUnderPm2 } from 'discluster-runtime';
import { defaultSafetyMarginMs } from '../identify/options.js';
import { integerOption, oneOfOption } from '../util/validate.js';
import type { ClusterBuildContext, ClusterIdentifyThrottler, ClusterSessionStore } from './clusterSeams.js';

/** nats-server refuses a stream max_age below 100 ms (the identify slot bucket's TTL). */
const MIN_SLOT_TTL_MS = 100;

/** Which shards a cluster runs, and everything it needs to run them. In a fleet, CONTROL sends it. */
export interface ClusterAssignment {
  /** This cluster's id in the plan. */
  readonly clusterId: number;
  /** Shards this cluster serves. */
  readonly shardIds: readonly number[];
  /** Total shard count of the fleet. */
  readonly shardCount: number;
  /** Bot namespace: NATS subjects and KV buckets are per `bot`. */
  readonly bot: string;
  /** The bot token. Kept in memory only; never logged. */
  readonly token: string;
  /**
   * `GET /gateway/bot` as the fleet last saw it. `fetchedAt` (epoch ms) dates its
   * `session_start_limit` (without it, the data counts as fetched at start); with `api` (the REST
   * base it came from), a shard held at the session-start floor past the reset asks Discord again
   * (once per minute for the whole fleet); `cluster.rest` sends to `api` too. `restGlobalPerSecond`
   * is the global REST limit the whole fleet shares (default 50).
   */
  readonly gateway: APIGatewayBotInfo & {
    readonly fetchedAt?: number | undefined;
    readonly api?: string | undefined;
    readonly restGlobalPerSecond?: number | undefined;
  };
  /** Every cluster id of the current plan (whom `ipc.requestAll` asks). */
  readonly clusterIds: readonly number[];
  /**
   * A reshard's new generation (fleet only): the shards identify and warm up, but no event reaches
   * bot code beyond their own READY and guild loading until MASTER's handover. Default false.
   */
  readonly standby?: boolean;
  /**
   * JetStream replicas of the KV buckets this cluster opens (sessions, identify, handover): the
   * fleet's `kv_replicas`, 3 on a 3-node NATS cluster. Default 1.
   */
  readonly kvReplicas?: number;
  /**
   * A local IPv4/IPv6 address of this machine: the cluster's gateway sockets and `cluster.rest`'s
   * sockets leave from it (in a fleet, CONTROL's `source_addresses`, round-robin by cluster id).
   * Default: the operating system picks.
   */
  readonly sourceAddress?: string;
}

/** Options the bot code gives `new Cluster()`. */
export interface ClusterOptions {
  /** Gateway intents of every shard. */
  readonly intents: number;
  /**
   * Runs without CONTROL: the assignment is given here instead of arriving from the fleet, and
   * `nats` says how to reach NATS. For tests, and for people who run without pm2.
   */
  readonly standalone?: {
    readonly assignment: ClusterAssignment;
    /** NATS connection options, or a connection to use (it is not closed by the cluster). */
    readonly nats: ConnectionOptions | NatsConnection;
  };
  /** Transport compression: `zlib-stream` (needs the optional `zlib-sync` package) or none. Default: `zlib-stream` when available. */
  readonly compression?: 'zlib-stream' | null;
  /** IDENTIFY only while `session_start_limit.remaining - 1` stays at or above this. Default 10. */
  readonly sessionStartFloor?: number;
  /**
   * Close shards (state `fenced`) after this long without reaching NATS (or, in a fleet, without a
   * keepalive from CONTROL). Standalone: default 10000 ms; keep it below the shard lease. In a
   * fleet, CONTROL's `fenceAfterMs` (half the lease time) applies unless you set a shorter one here:
   * a longer `lease_ms` (30 s on a NATS cluster) then really gives the fleet a longer fence time.
   */
  readonly fenceAfterMs?: number;
  /** Write changed session state (sequence numbers) to NATS at most this often. Default 1000 ms. */
  readonly sessionFlushIntervalMs?: number;
  /** Identify window; Discord's is 5000 ms (shorter only against discord-sim). */
  readonly identifyWindowMs?: number;
  /**
   * Spacing added to the identify window between two IDENTIFYs of one rate-limit key, to absorb
   * scheduling and network jitter. Default `max(25 ms, 2% of the window)`; raise it on machines
   * whose event loops stall (tests on a loaded CI box).
   */
  readonly identifySafetyMarginMs?: number;
  /** Largest IPC payload in bytes. Default 512 KiB. */
  readonly ipcMaxPayloadBytes?: number;
  /**
   * Invalid REST requests (401, 403, 429) per 10 minutes at which Discord bans the bot's IP: the
   * fleet slows and refuses failing requests well below it (see the README's REST section). Default
   * 10000, Discord's; lower only to match a test server's.
   */
  readonly restInvalidRequestLimit?: number;
  /** Close shards, save sessions and exit on SIGINT/SIGTERM. Default: true in a fleet, false standalone. */
  readonly handleSignals?: boolean;
  /**
   * Standalone only: asked when NATS is back after a fence; the shards reconnect only if it resolves
   * `true` (e.g. after checking that this process still holds their leases). Without it a standalone
   * cluster reconnects at once. In a fleet CONTROL answers this question.
   */
  readonly confirmAssignment?: () => Promise<boolean>;
  /** Fleet: send CONTROL a status report at least this often (changes are reported within 250 ms). Default 5000 ms. */
  readonly statusIntervalMs?: number;
  /**
   * Install the SDK's `uncaughtException` / `unhandledRejection` handlers: an uncaught exception
   * closes the shards for resume, saves sessions and exits 1; an unhandled rejection is logged, and
   * exits the same way only while the cluster is not serving yet (typically `start()` failing). Default: true when running under pm2, whose
   * injected APM otherwise swallows rejections; false elsewhere, where Node's defaults apply.
   */
  readonly handleProcessErrors?: boolean;
  /**
   * Builds the identify throttler every shard of this cluster waits on (like @discordjs/ws's
   * `buildIdentifyThrottler`). Default: {@link defaultIdentifyThrottler}, fleet-wide on NATS KV.
   * Replace it only with something as strict: promise 1 rests on it.
   */
  readonly buildIdentifyThrottler?: (context: ClusterBuildContext) => Promise<ClusterIdentifyThrottler>;
  /** Builds the session store (RESUME after a restart or move). Default: {@link defaultSessionStore}, NATS KV. */
  readonly buildSessionStore?: (context: ClusterBuildContext) => Promise<ClusterSessionStore>;
  /**
   * Guild snapshots in NATS (README, "Caches across a resume"): each shard's guilds, channels and
   * roles, so a shard that RESUMEs in a restarted or moved process hands bot code a restored READY
   * and GUILD_CREATEs first. Off by default (the process keeps a model of every guild it serves:
   * memory per shard grows with it, see the README); `true` or an object turns them on.
   * `members: true` also keeps members (default false: members dominate size and change often);
   * `flushIntervalMs` (default 2000) coalesces writes.
   */
  readonly guildSnapshots?: boolean | { readonly members?: boolean; readonly flushIntervalMs?: number };
}

/** Guild snapshot settings after defaults; null when they are off. */
export interface ResolvedGuildSnapshotSettings {
  readonly members: boolean;
  readonly flushIntervalMs: number;
  readonly requestTimeoutMs: number;
}

export interface ResolvedClusterSettings {
  readonly intents: number;
  readonly compression: 'zlib-stream' | null;
  readonly sessionStartFloor: number;
  readonly fenceAfterMs: number;
  /** Whether the bot set `fenceAfterMs` (in a fleet, only a set one caps CONTROL's). */
  readonly fenceAfterMsSet: boolean;
  readonly sessionFlushIntervalMs: number;
  readonly identifyWindowMs: number;
  readonly identifySafetyMarginMs: number | null;
  readonly ipcMaxPayloadBytes: number;
  readonly restInvalidRequestLimit: number;
  readonly handleSignals: boolean;
  readonly statusIntervalMs: number;
  readonly handleProcessErrors: boolean;
  readonly guildSnapshots: ResolvedGuildSnapshotSettings | null;
}

/** Whether the optional `zlib-sync` package can be loaded (compression's safe decoder). */
export function zlibSyncAvailable(): boolean {
  try {
    require.resolve('zlib-sync');
    return true;
  } catch {
    return false;
  }
}

/** Applies defaults and validates; throws `DISCLUSTER_ERR_INVALID_OPTION` naming the bad option. */
export function resolveClusterSettings(options: ClusterOptions): ResolvedClusterSettings {
  if (typeof options !== 'object' || options === null) {
    throw new DisclusterError(
      ErrorCode.InvalidOption,
      'new Cluster(options): options must be an object such as { intents }',
    );
  }
  integerOption('intents', options.intents, 0);
  const compression =
    options.compression === undefined ? (zlibSyncAvailable() ? 'zlib-stream' : null) : options.compression;
  if (compression !== null) oneOfOption('compression', compression, ['zlib-stream']);
  checkConfirmAssignment(options);
  if (compression === 'zlib-stream' && !zlibSyncAvailable()) {
    throw new DisclusterError(
      ErrorCode.InvalidOption,
      'Invalid option compression: zlib-stream needs the zlib-sync package (npm install zlib-sync), or set compression: null',
    );
  }
  const identifyWindowMs = integerOption('identifyWindowMs', options.identifyWindowMs ?? 5000, 1);
  const identifySafetyMarginMs =
    options.identifySafetyMarginMs === undefined
      ? null
      : integerOption('identifySafetyMarginMs', options.identifySafetyMarginMs, 10);
  checkIdentifySlotTtl(identifyWindowMs, identifySafetyMarginMs ?? defaultSafetyMarginMs(identifyWindowMs));
  return Object.freeze({
    intents: options.intents,
    compression,
    sessionStartFloor: integerOption('sessionStartFloor', options.sessionStartFloor ?? 10, 0),
    fenceAfterMs: integerOption('fenceAfterMs', options.fenceAfterMs ?? 10_000, 100),
    fenceAfterMsSet: options.fenceAfterMs !== undefined,
    sessionFlushIntervalMs: integerOption(
      'sessionFlushIntervalMs',
      options.sessionFlushIntervalMs ?? 1000,
      1,
    ),
    identifyWindowMs,
    identifySafetyMarginMs,
    ipcMaxPayloadBytes: integerOption('ipcMaxPayloadBytes', options.ipcMaxPayloadBytes ?? 512 * 1024, 64),
    restInvalidRequestLimit: integerOption(
      'restInvalidRequestLimit',
      options.restInvalidRequestLimit ?? 10_000,
      10,
    ),
    handleSignals: options.handleSignals ?? options.standalone === undefined,
    statusIntervalMs: integerOption('statusIntervalMs', options.statusIntervalMs ?? 5000, 100),
    handleProcessErrors: options.handleProcessErrors ?? isUnderPm2(),
    guildSnapshots: resolveGuildSnapshots(options.guildSnapshots),
  });
}

function resolveGuildSnapshots(
  option: ClusterOptions['guildSnapshots'],
): ResolvedGuildSnapshotSettings | null {
  if (option === undefined || option === false) return null;
  if (option !== true && (typeof option !== 'object' || option === null))
    throw new DisclusterError(
      ErrorCode.InvalidOption,
      'Invalid option guildSnapshots: expected true, false or { members?, flushIntervalMs? }',
    );
  const settings = option === true ? {} : option;
  const members = settings.members ?? false;
  if (typeof members !== 'boolean')
    throw new DisclusterError(
      ErrorCode.InvalidOption,
      'Invalid option guildSnapshots.members: expected a boolean',
    );
  return Object.freeze({
    members,
    flushIntervalMs: integerOption('guildSnapshots.flushIntervalMs', settings.flushIntervalMs ?? 2000, 10),
    requestTimeoutMs: 5000,
  });
}

/**
 * The identify slot bucket's TTL is window + margin, and nats-server refuses a stream max_age
 * below 100 ms: refuse such a window here, naming the option the bot author set, rather than in
 * `start()` after NATS was already touched.
 */
function checkIdentifySlotTtl(windowMs: number, marginMs: number): void {
  if (windowMs + marginMs >= MIN_SLOT_TTL_MS) return;
  throw new DisclusterError(
    ErrorCode.InvalidOption,
    `Invalid option identifyWindowMs: identifyWindowMs + identifySafetyMarginMs is ${windowMs + marginMs} ms, ` +
      `but NATS needs at least ${MIN_SLOT_TTL_MS} ms (Discord's window is 5000 ms)`,
  );
}

function checkConfirmAssignment(options: ClusterOptions): void {
  if (options.confirmAssignment === undefined) return;
  if (typeof options.confirmAssignment !== 'function') {
    throw new DisclusterError(
      ErrorCode.InvalidOption,
      'Invalid option confirmAssignment: expected a function returning Promise<boolean>',
    );
  }
  if (options.standalone === undefined) {
    throw new DisclusterError(
      ErrorCode.InvalidOption,
      'Invalid option confirmAssignment: it applies to standalone mode only; in a fleet CONTROL confirms the assignment after a fence',
    );
  }
}

/**
 * Checks a standalone cluster's assignment (bot code passes it) before any shard starts, with the
 * protocol's schema: the one a fleet's assignment already passed in CONTROL's message. Every issue
 * is named (`Invalid option assignment.<path>`); the token never appears in the message.
 */
export function validateAssignment(assignment: ClusterAssignment): ClusterAssignment {
  const bot = (assignment as { bot?: unknown }).bot ?? DEFAULT_BOT;
  // A bad namespace has its own code (DISCLUSTER_ERR_INVALID_BOT_NAMESPACE).
  if (typeof bot === 'string') validateBotNamespace(bot);
  const checked = AssignmentSchema.safeParse({ ...assignment, bot });
  // Left out (plain JavaScript), `bot` is the default namespace from here on, not only in this check.
  if (checked.success) return { ...assignment, bot: checked.data.bot };
  const issues = checked.error.issues.map((issue) => {
    const path = issue.path
      .map((part, i) => (typeof part === 'number' ? '[]' : `${i === 0 ? '' : '.'}${String(part)}`))
      .join('');
    return `Invalid option assignment${path ? `.${path}` : ''}: ${issue.message}`;
  });
  throw new DisclusterError(ErrorCode.InvalidOption, issues.join('; '));
}
