import { PRIVILEGED_INTENTS } from './intents';

/** Everything the simulator can be told; every field has a Discord-like default. */
export interface DiscordSimOptions {
  /** Interface to listen on. Loopback by default: the simulator is never a public server. */
  host: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** The only bot token accepted (REST `Authorization: Bot <token>` and IDENTIFY). */
  token: string;
  /** Number of guilds the bot is in. */
  guilds: number;
  /** Shard count `/gateway/bot` recommends. */
  shards: number;
  /** `session_start_limit.max_concurrency`: identify buckets per window. */
  maxConcurrency: number;
  /** Length of one identify rate-limit window (Discord: 5000 ms). */
  identifyWindowMs: number;
  /** `session_start_limit.total`. */
  sessionStartTotal: number;
  /** `session_start_limit.remaining` at start (defaults to the total). */
  sessionStartRemaining: number;
  /** `heartbeat_interval` sent in HELLO (Discord: 41250 ms). */
  heartbeatIntervalMs: number;
  /** How late past the interval a heartbeat may be before the socket is closed. */
  heartbeatToleranceMs: number;
  /** How long a session stays resumable after its socket drops. */
  sessionTimeoutMs: number;
  /** Guilds one session may carry before IDENTIFY is closed with 4011 (Discord: 2500). */
  maxGuildsPerShard: number;
  /** Shard counts must be a multiple of this (Discord's large-bot sharding; 1 = any count). */
  largeBotShardFactor: number;
  /** Privileged intent bits the application is approved for; others get 4014. */
  allowedPrivilegedIntents: number;
  /** Client payloads allowed per connection per `sendWindowMs` before 4008 (Discord: 120 / 60 s). */
  sendLimit: number;
  sendWindowMs: number;
  /** Largest client payload in bytes before 4002 (Discord: 4096). */
  maxPayloadBytes: number;
  /**
   * Dispatches kept per session for replay on RESUME; an older `seq` cannot be resumed. Heartbeats do
   * not shorten it: clients may resume from an older stored `seq` than they last heartbeated.
   */
  replayBufferLimit: number;
  /** After sending op 7, the server closes the socket itself if the client has not after this long. */
  reconnectCloseAfterMs: number;
  /** Split every zlib-stream message across two WebSocket messages (tests client buffering until 00 00 ff ff). */
  splitCompressedFrames: boolean;
  /** REST: requests per second before a global 429 (Discord: 50). */
  restGlobalPerSecond: number;
  /** REST: invalid requests (401, 403, 429) per client IP per 10 minutes before the ban (Discord: 10,000). */
  invalidRequestLimit: number;
  /** REST: how long a banned IP gets 429 on every request (Cloudflare's ban; observed about an hour). */
  banMs: number;
  /** REST: an interaction's callback must arrive this soon after INTERACTION_CREATE (Discord: 3 s). */
  interactionResponseMs: number;
  /** REST: messages (and interactions) kept for `GET /_sim/messages`; the oldest are dropped past it. */
  restMessagesKept: number;
  /** REST: `/gateway/bot` bucket size and reset period. */
  gatewayBotLimit: number;
  gatewayBotResetMs: number;
  /** Seed for generated guilds, so runs are reproducible. */
  seed: number;
}

export const DEFAULT_SIM_OPTIONS = {
  host: '127.0.0.1',
  port: 0,
  token: 'discord-sim-token',
  guilds: 100,
  maxConcurrency: 1,
  identifyWindowMs: 5000,
  sessionStartTotal: 1000,
  heartbeatIntervalMs: 41_250,
  sessionTimeoutMs: 180_000,
  maxGuildsPerShard: 2500,
  largeBotShardFactor: 1,
  allowedPrivilegedIntents: PRIVILEGED_INTENTS,
  sendLimit: 120,
  sendWindowMs: 60_000,
  maxPayloadBytes: 4096,
  replayBufferLimit: 100_000,
  reconnectCloseAfterMs: 5000,
  splitCompressedFrames: false,
  restGlobalPerSecond: 50,
  invalidRequestLimit: 10_000,
  banMs: 3_600_000,
  interactionResponseMs: 3000,
  restMessagesKept: 100_000,
  gatewayBotLimit: 50,
  gatewayBotResetMs: 5000,
  seed: 1,
} as const satisfies Partial<DiscordSimOptions>;

export class SimOptionsError extends Error {
  public override readonly name = 'SimOptionsError';
  public readonly code = 'SIM_ERR_BAD_OPTION';
  public constructor(
    public readonly option: string,
    message: string,
  ) {
    super(`discord-sim: option "${option}" ${message}`);
  }
}

const INTEGER_RANGES: Readonly<Record<string, readonly [min: number, max: number]>> = {
  port: [0, 65_535],
  guilds: [0, 10_000_000],
  shards: [1, 1_000_000],
  maxConcurrency: [1, 1024],
  identifyWindowMs: [0, 86_400_000],
  sessionStartTotal: [0, 100_000_000],
  sessionStartRemaining: [0, 100_000_000],
  heartbeatIntervalMs: [10, 3_600_000],
  heartbeatToleranceMs: [0, 3_600_000],
  sessionTimeoutMs: [0, 86_400_000],
  maxGuildsPerShard: [1, 10_000_000],
  largeBotShardFactor: [1, 1024],
  allowedPrivilegedIntents: [0, PRIVILEGED_INTENTS],
  sendLimit: [1, 1_000_000],
  sendWindowMs: [1, 3_600_000],
  maxPayloadBytes: [64, 16 * 1024 * 1024],
  replayBufferLimit: [0, 10_000_000],
  reconnectCloseAfterMs: [0, 3_600_000],
  restGlobalPerSecond: [1, 1_000_000],
  invalidRequestLimit: [1, 100_000_000],
  banMs: [1, 86_400_000],
  interactionResponseMs: [1, 900_000],
  restMessagesKept: [1, 10_000_000],
  gatewayBotLimit: [1, 1_000_000],
  gatewayBotResetMs: [1, 86_400_000],
  seed: [0, 2 ** 31 - 1],
};

/**
 * Merges user options over the defaults and checks every value, so a typo fails at start with the
 * option's name instead of surfacing as odd protocol behaviour later.
 */
export function resolveSimOptions(input: Partial<DiscordSimOptions> = {}): Readonly<DiscordSimOptions> {
  const known = new Set<string>([...Object.keys(INTEGER_RANGES), 'host', 'token', 'splitCompressedFrames']);
  for (const key of Object.keys(input)) {
    if (!known.has(key)) throw new SimOptionsError(key, 'is not a discord-sim option');
  }
  const guilds = input.guilds ?? DEFAULT_SIM_OPTIONS.guilds;
  const heartbeatIntervalMs = input.heartbeatIntervalMs ?? DEFAULT_SIM_OPTIONS.heartbeatIntervalMs;
  const sessionStartTotal = input.sessionStartTotal ?? DEFAULT_SIM_OPTIONS.sessionStartTotal;
  const merged: DiscordSimOptions = {
    ...DEFAULT_SIM_OPTIONS,
    // Discord recommends roughly one shard per 1000 guilds.
    shards: Math.max(1, Math.ceil(guilds / 1000)),
    sessionStartRemaining: sessionStartTotal,
    heartbeatToleranceMs: Math.max(1000, Math.round(heartbeatIntervalMs / 2)),
    ...stripUndefined(input),
  };
  for (const [key, [min, max]] of Object.entries(INTEGER_RANGES)) {
    const value = merged[key as keyof DiscordSimOptions];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new SimOptionsError(key, `must be a whole number from ${min} to ${max} (got ${String(value)})`);
    }
  }
  if (typeof merged.host !== 'string' || merged.host.length === 0) {
    throw new SimOptionsError('host', 'must be a non-empty interface address');
  }
  if (typeof merged.token !== 'string' || merged.token.length === 0 || /\s/.test(merged.token)) {
    throw new SimOptionsError('token', 'must be a non-empty string without spaces');
  }
  if (typeof merged.splitCompressedFrames !== 'boolean') {
    throw new SimOptionsError('splitCompressedFrames', 'must be true or false');
  }
  if (merged.sessionStartRemaining > merged.sessionStartTotal) {
    throw new SimOptionsError(
      'sessionStartRemaining',
      `cannot exceed sessionStartTotal (${merged.sessionStartTotal})`,
    );
  }
  return Object.freeze(merged);
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
