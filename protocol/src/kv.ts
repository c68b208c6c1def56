import { DisclusterError, ErrorCode } from './errors.js';

/**
 * JetStream KV bucket and key names. Every name is built here from the bot namespace (the `bot`
 * setting) so that two bots sharing one NATS never see each other's state, and so that no other
 * file spells a bucket or key by hand.
 */

/** The namespace used when the `bot` setting is not given. */
export const DEFAULT_BOT = 'default';

// NATS-token-safe and valid in bucket names (`[-\w]`); 64 keeps bucket names well below limits.
const BOT_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
// Ids we generate for waiters and instances: one subject token.
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Bucket purposes. None is an `_`-suffix of another, so `discluster_<bot>_<purpose>` can never
 * name the same bucket for two different (bot, purpose) pairs.
 */
export const BucketPurpose = {
  Identify: 'identify',
  IdentifyWaiters: 'identify-waiters',
  Budget: 'budget',
  Sessions: 'sessions',
  Leases: 'leases',
  Master: 'master',
  Leader: 'leader',
  Handover: 'handover',
  Rest: 'rest',
  Guilds: 'guilds',
} as const;

/** One of the {@link BucketPurpose} strings. */
export type BucketPurpose = (typeof BucketPurpose)[keyof typeof BucketPurpose];

/**
 * Returns `bot` if it is a valid namespace, else throws a {@link DisclusterError} with code
 * `DISCLUSTER_ERR_INVALID_BOT_NAMESPACE` that names the `bot` setting.
 */
export function validateBotNamespace(bot: string): string {
  if (typeof bot !== 'string' || !BOT_PATTERN.test(bot)) {
    throw new DisclusterError(
      ErrorCode.InvalidBotNamespace,
      `Invalid bot namespace ${JSON.stringify(bot)}: the \`bot\` setting must be 1-64 characters of A-Z, a-z, 0-9, _ or - ` +
        '(it becomes part of NATS subjects and KV bucket names).',
    );
  }
  return bot;
}

function bucket(bot: string, purpose: BucketPurpose): string {
  return `discluster_${validateBotNamespace(bot)}_${purpose}`;
}

/** Bucket of identify slots: one key per rate-limit key, bucket TTL = identify window + margin. */
export function identifyBucket(bot: string): string {
  return bucket(bot, BucketPurpose.Identify);
}

/** Bucket where shards waiting to identify announce themselves (short TTL, refreshed while waiting). */
export function identifyWaitersBucket(bot: string): string {
  return bucket(bot, BucketPurpose.IdentifyWaiters);
}

/** Bucket holding the daily session-start budget (no TTL). */
export function budgetBucket(bot: string): string {
  return bucket(bot, BucketPurpose.Budget);
}

/** Bucket of gateway sessions (session id, sequence, resume URL) per shard count and shard. */
export function sessionBucket(bot: string): string {
  return bucket(bot, BucketPurpose.Sessions);
}

function nonNegativeInteger(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new DisclusterError(
      ErrorCode.InvalidKey,
      `${what} must be a non-negative integer, got ${String(value)}`,
    );
  }
  return value;
}

function shardPair(shardCount: number, shardId: number): [number, number] {
  if (!Number.isSafeInteger(shardCount) || shardCount < 1) {
    throw new DisclusterError(
      ErrorCode.InvalidShard,
      `shard count must be a positive integer, got ${String(shardCount)}`,
    );
  }
  if (!Number.isSafeInteger(shardId) || shardId < 0 || shardId >= shardCount) {
    throw new DisclusterError(
      ErrorCode.InvalidShard,
      `shard id must be an integer in [0, ${shardCount - 1}], got ${String(shardId)}`,
    );
  }
  return [shardCount, shardId];
}

/** Validates an id we put into a key (instance or waiter id). */
export function validateToken(token: string, what: string): string {
  if (typeof token !== 'string' || !TOKEN_PATTERN.test(token)) {
    throw new DisclusterError(
      ErrorCode.InvalidKey,
      `${what} must be 1-64 characters of A-Z, a-z, 0-9, _ or -, got ${JSON.stringify(token)}`,
    );
  }
  return token;
}

/** Key of the identify slot of one rate-limit key (`shard_id % max_concurrency`), in {@link identifyBucket}. */
export function identifySlotKey(rateLimitKey: number): string {
  return `slot.${nonNegativeInteger(rateLimitKey, 'rate-limit key')}`;
}

/** What identifies one waiter in {@link identifyWaitersBucket}. */
export interface IdentifyWaiterKeyParts {
  readonly shardCount: number;
  readonly rateLimitKey: number;
  readonly shardId: number;
  readonly waiterId: string;
}

/** Key of one waiting shard: `<shardCount>.<rateLimitKey>.<shardId>.<waiterId>`. */
export function identifyWaiterKey(parts: IdentifyWaiterKeyParts): string {
  const [shardCount, shardId] = shardPair(parts.shardCount, parts.shardId);
  const key = nonNegativeInteger(parts.rateLimitKey, 'rate-limit key');
  return `${shardCount}.${key}.${shardId}.${validateToken(parts.waiterId, 'waiter id')}`;
}

/** Key of the daily session-start budget record, in {@link budgetBucket}. */
export function budgetKey(): string {
  return 'session_start_limit';
}

/**
 * Key of the fleet's claim to refresh the budget from `GET /gateway/bot`, in {@link budgetBucket}:
 * whoever writes it (compare-and-set) asks Discord; everyone else waits for the stored result.
 */
export function budgetRefreshKey(): string {
  return 'session_start_limit_refresh';
}

/**
 * Key of one shard's session, in {@link sessionBucket}. The shard count is part of the key, so a
 * fleet that resharded never resumes a session that belongs to another shard count.
 */
export function sessionKey(shardCount: number, shardId: number): string {
  const [count, id] = shardPair(shardCount, shardId);
  return `${count}.${id}`;
}

/**
 * Bucket of shard ownership leases (promise 2): one key per shard ({@link leaseKey}), bucket TTL =
 * the lease time, renewed by compare-and-set. A key that is gone has expired or was released.
 */
export function leaseBucket(bot: string): string {
  return bucket(bot, BucketPurpose.Leases);
}

/** Key of one shard's lease, in {@link leaseBucket}: `<shardCount>.<shardId>`, like sessions. */
export function leaseKey(shardCount: number, shardId: number): string {
  return sessionKey(shardCount, shardId);
}

/** Bucket of MASTER's durable state (the plan); no TTL. */
export function masterBucket(bot: string): string {
  return bucket(bot, BucketPurpose.Master);
}

/** Key of the running plan, in {@link masterBucket}. */
export function planKey(): string {
  return 'plan';
}

/** Bucket of the MASTER leadership lease (bucket TTL = the leader lease time). */
export function leaderBucket(bot: string): string {
  return bucket(bot, BucketPurpose.Leader);
}

/** Key of the leadership lease, in {@link leaderBucket}. */
export function leaderKey(): string {
  return 'leader';
}

/**
 * Bucket of reshard handovers: each old-generation cluster writes there the keys of the events it
 * delivered while the new generation warmed up, so the new one delivers each event once (TTL 1 h).
 */
export function handoverBucket(bot: string): string {
  return bucket(bot, BucketPurpose.Handover);
}

/** Key of one chunk of an old cluster's delivered event keys (`chunk`), or of their count (`count`). */
export function handoverKey(reshardId: string, clusterId: number, part: number | 'count'): string {
  validateToken(reshardId, 'reshard id');
  if (!Number.isSafeInteger(clusterId) || clusterId < 0)
    throw new DisclusterError(ErrorCode.InvalidClusterId, `cluster id must be >= 0, got ${clusterId}`);
  return `${reshardId}.${clusterId}.${part}`;
}

/**
 * Bucket of the fleet's shared REST rate limits (`cluster.rest`): global slots, per-route buckets,
 * the invalid-request count and the token's state. TTL 30 min: a window of the invalid-request count
 * (10 min) and the one before it stay readable; an idle route's record simply expires.
 */
export function restBucket(bot: string): string {
  return bucket(bot, BucketPurpose.Rest);
}

/** Key of one of the `rest_global_per_second` slots of the global limit, in {@link restBucket}. */
export function restGlobalSlotKey(slot: number): string {
  return `g.${nonNegativeInteger(slot, 'global slot')}`;
}

/**
 * Key of one route's rate-limit record, in {@link restBucket}: `r.<route>.<major>`, where `route`
 * is a hash of the method and route template and `major` the channel, guild or webhook id.
 */
export function restRouteKey(routeHash: string, major: string): string {
  return `r.${validateToken(routeHash, 'route hash')}.${validateToken(major, 'major parameter')}`;
}

/** Key of the fleet's invalid-request count in one 10-minute window (`window` = epoch ms / 600000). */
export function restInvalidKey(window: number): string {
  return `invalid.${nonNegativeInteger(window, 'invalid-request window')}`;
}

/** Key written once when Discord answers 401 to the token: every process stops sending. */
export function restTokenRejectedKey(): string {
  return 'token_rejected';
}

/**
 * Bucket of guild snapshots (what a library caches: guilds, channels, roles) per shard count and
 * shard, so a cluster that RESUMEs a session whose READY it never saw can hand bot code the guilds
 * Discord will not send again. No TTL: a quiet guild's record is never rewritten.
 */
export function guildSnapshotBucket(bot: string): string {
  return bucket(bot, BucketPurpose.Guilds);
}

/** Key of a shard's snapshot manifest (guild ids, bot user), in {@link guildSnapshotBucket}: `<shardCount>.<shardId>.m`. */
export function guildSnapshotManifestKey(shardCount: number, shardId: number): string {
  return `${sessionKey(shardCount, shardId)}.m`;
}

/** Key of one guild of a shard's snapshot: `<shardCount>.<shardId>.g.<guildId>` (one record per guild keeps each far below NATS's payload limit). */
export function guildSnapshotGuildKey(shardCount: number, shardId: number, guildId: string): string {
  if (!/^\d{1,20}$/.test(guildId))
    throw new DisclusterError(
      ErrorCode.InvalidKey,
      `guild id must be a snowflake, got ${JSON.stringify(guildId)}`,
    );
  return `${sessionKey(shardCount, shardId)}.g.${guildId}`;
}

/** Filter matching every guild record of one shard's snapshot. */
export function guildSnapshotGuildFilter(shardCount: number, shardId: number): string {
  return `${sessionKey(shardCount, shardId)}.g.*`;
}
