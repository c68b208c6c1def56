import type { SessionInfo } from '@discordjs/ws';
import type { NatsConnection } from '@nats-io/transport-node';
import type { APIGatewaySessionStartLimit } from 'discord-api-types/v10';
import type { IdentifyThrottler, IdentifyWaitReason } from '../identify/IdentifyThrottler.js';
import { gatewayBotSource } from '../identify/gatewayBotSource.js';
import { NatsIdentifyThrottler } from '../identify/NatsIdentifyThrottler.js';
import { NatsSessionStore } from '../session/NatsSessionStore.js';
import type { ClusterAssignment, ResolvedClusterSettings } from './ClusterOptions.js';

/**
 * What a cluster hands `buildIdentifyThrottler` and `buildSessionStore` (like @discordjs/ws's
 * `build*` options): its NATS connection, its assignment without the token, and its settings.
 */
export interface ClusterBuildContext {
  readonly nc: NatsConnection;
  readonly assignment: Readonly<Omit<ClusterAssignment, 'token'>>;
  readonly settings: ResolvedClusterSettings;
  /** Fresh `session_start_limit` data (`GET /gateway/bot`), or null when the assignment has no `api`. */
  readonly sessionStartLimitSource: (() => Promise<APIGatewaySessionStartLimit>) | null;
}

/** A started cluster's build context: what the seams may know, the token left behind. */
export function clusterBuildContext(
  nc: NatsConnection,
  assignment: ClusterAssignment,
  settings: ResolvedClusterSettings,
): ClusterBuildContext {
  const { token: _token, ...withoutToken } = assignment;
  return { nc, assignment: withoutToken, settings, sessionStartLimitSource: gatewayBotSource(assignment) };
}

/** Anything with these events: the cluster listens when the built object is an event emitter. */
interface Emits {
  on?(event: string, listener: (...args: never[]) => void): unknown;
}

/**
 * The identify throttler a cluster runs its shards through. `updateBudget`, when present, receives
 * each `session_start_limit` the assignment carries; `waiting`/`debug`/`granted` events, when
 * emitted, show in the shard states and the cluster's `debug` events.
 */
export interface ClusterIdentifyThrottler extends IdentifyThrottler, Emits {
  updateBudget?(limit: APIGatewaySessionStartLimit, observedAt: number): Promise<unknown>;
}

/** Where a cluster keeps its shards' sessions so that a restarted or moved cluster RESUMEs. */
export interface ClusterSessionStore extends Emits {
  retrieveSessionInfo(shardId: number): Promise<SessionInfo | null>;
  updateSessionInfo(shardId: number, info: SessionInfo | null): void;
  /** The session if it is in memory (`undefined`: ask `retrieveSessionInfo`); read on every dispatch. */
  cachedSessionInfo?(shardId: number): SessionInfo | null | undefined;
  /** Saves what is pending; later updates are ignored. */
  close(): Promise<void>;
}

/** The default: fleet-wide identify coordination on NATS KV ({@link NatsIdentifyThrottler}). */
export function defaultIdentifyThrottler(context: ClusterBuildContext): Promise<ClusterIdentifyThrottler> {
  const { nc, assignment, settings } = context;
  return NatsIdentifyThrottler.create(nc, {
    bot: assignment.bot,
    shardCount: assignment.shardCount,
    maxConcurrency: assignment.gateway.session_start_limit.max_concurrency,
    windowMs: settings.identifyWindowMs,
    safetyMarginMs: settings.identifySafetyMarginMs,
    budgetFloor: settings.sessionStartFloor,
    sessionStartLimitSource: context.sessionStartLimitSource,
    replicas: assignment.kvReplicas ?? 1,
  });
}

/** The default: sessions in NATS KV ({@link NatsSessionStore}). */
export function defaultSessionStore(context: ClusterBuildContext): Promise<ClusterSessionStore> {
  const { nc, assignment, settings } = context;
  return NatsSessionStore.create(nc, {
    bot: assignment.bot,
    shardCount: assignment.shardCount,
    flushIntervalMs: settings.sessionFlushIntervalMs,
    replicas: assignment.kvReplicas ?? 1,
  });
}

/** Builds the cluster's session store (its own, or the default) and shows its debug lines. */
export async function buildSessionStore(
  build: ((context: ClusterBuildContext) => Promise<ClusterSessionStore>) | undefined,
  context: ClusterBuildContext,
  debug: (message: string) => void,
): Promise<ClusterSessionStore> {
  const sessions = await (build ?? defaultSessionStore)(context);
  sessions.on?.('debug', (message: string) => debug(message));
  return sessions;
}

/**
 * Builds the cluster's throttler (its own, or the default), shows its `waiting` reasons and debug
 * lines, and hands it the assignment's budget dated by its fetch (a plan hours old must not read as
 * today's budget: mergeBudget).
 */
export async function buildThrottler(
  build: ((context: ClusterBuildContext) => Promise<ClusterIdentifyThrottler>) | undefined,
  context: ClusterBuildContext,
  hooks: { waiting(shardId: number, message: string): void; debug(message: string): void },
): Promise<ClusterIdentifyThrottler> {
  const throttler = await (build ?? defaultIdentifyThrottler)(context);
  throttler.on?.('waiting', (shardId: number, reason: IdentifyWaitReason) =>
    hooks.waiting(shardId, reason.message),
  );
  throttler.on?.('debug', (message: string) => hooks.debug(message));
  throttler.on?.('granted', (shardId: number) =>
    hooks.debug(`identify granted to shard ${shardId} at ${Date.now()}`),
  );
  const { gateway } = context.assignment;
  await throttler.updateBudget?.(gateway.session_start_limit, gateway.fetchedAt ?? Date.now());
  return throttler;
}
