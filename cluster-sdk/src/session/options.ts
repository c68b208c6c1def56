import { DEFAULT_BOT, validateBotNamespace } from 'discluster-protocol/kv';
import { integerOption, oneOfOption } from '../util/validate.js';

/** Options {@link NatsSessionStore} cannot do without. */
export interface RequiredNatsSessionStoreOptions {
  /** Shard count of the sessions this store reads (keys include it, so another count never resumes). */
  shardCount: number;
}

/** Options of {@link NatsSessionStore} that have defaults ({@link DefaultNatsSessionStoreOptions}). */
export interface OptionalNatsSessionStoreOptions {
  /** Bot namespace (the `bot` setting). */
  bot: string;
  /** Changed sessions are written to KV at most once per this many ms (plus on `flush()`). */
  flushIntervalMs: number;
  /** JetStream storage for the bucket. */
  storage: 'file' | 'memory';
  /** JetStream replicas for the bucket (use 3 on a NATS cluster). */
  replicas: number;
  /** Timeout of one JetStream request. */
  requestTimeoutMs: number;
}

/** Defaults of {@link OptionalNatsSessionStoreOptions}. */
export const DefaultNatsSessionStoreOptions = {
  bot: DEFAULT_BOT,
  flushIntervalMs: 1000,
  storage: 'file',
  replicas: 1,
  requestTimeoutMs: 5000,
} as const satisfies OptionalNatsSessionStoreOptions;

/** What {@link NatsSessionStore.create} accepts. */
export type NatsSessionStoreOptions = RequiredNatsSessionStoreOptions &
  Partial<OptionalNatsSessionStoreOptions>;

/** Options after defaults and validation. */
export type ResolvedNatsSessionStoreOptions = RequiredNatsSessionStoreOptions &
  OptionalNatsSessionStoreOptions;

/** Applies defaults and validates; throws `DISCLUSTER_ERR_INVALID_OPTION` naming the bad option. */
export function resolveNatsSessionStoreOptions(
  options: NatsSessionStoreOptions,
): Readonly<ResolvedNatsSessionStoreOptions> {
  const merged = { ...DefaultNatsSessionStoreOptions, ...options };
  integerOption('shardCount', merged.shardCount, 1);
  validateBotNamespace(merged.bot);
  integerOption('flushIntervalMs', merged.flushIntervalMs, 1);
  oneOfOption('storage', merged.storage, ['file', 'memory']);
  integerOption('replicas', merged.replicas, 1, 5);
  integerOption('requestTimeoutMs', merged.requestTimeoutMs, 1);
  return Object.freeze(merged);
}
