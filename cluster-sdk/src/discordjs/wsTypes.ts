import type { ManagerShardEventsMap, SessionInfo, WebSocketOptions } from 'discord.js';

/**
 * discord.js 14 builds its gateway on @discordjs/ws **1.x** (its own nested copy), while the SDK's
 * shards run on 2.x: these types come from discord.js's typings, so they are the 1.x ones it calls.
 */
type BuildStrategy = NonNullable<WebSocketOptions['buildStrategy']>;

/** The @discordjs/ws 1.x `WebSocketManager` that discord.js's `client.ws` wraps (`client.ws._ws`). */
export type DjsWsManager = Parameters<BuildStrategy>[0];

/** The @discordjs/ws 1.x `IShardingStrategy` that `ws.buildStrategy` returns. */
export type DjsShardingStrategy = ReturnType<BuildStrategy>;

export type { SessionInfo };

/**
 * The manager events discord.js listens to (WebSocketManager.js `attachEvents`), by their 1.x
 * `WebSocketShardEvents` values. That enum is shadowed by discord.js's own `WebSocketShardEvents`
 * in its exports, so the values are spelled here and checked against the 1.x event map.
 */
export const WsEvent = {
  Closed: 'closed',
  Dispatch: 'dispatch',
  Error: 'error',
  HeartbeatComplete: 'heartbeat',
  Hello: 'hello',
  Ready: 'ready',
  Resumed: 'resumed',
} as const;

type WsEventName = (typeof WsEvent)[keyof typeof WsEvent];
type EventMap = { [K in keyof ManagerShardEventsMap as `${K}`]: ManagerShardEventsMap[K] };

/** Emits one of the 1.x manager events, typed by the 1.x event map. */
export function emitWs<E extends WsEventName>(manager: DjsWsManager, event: E, ...args: EventMap[E]): void {
  // The one cast: from the spelled-out value to the shadowed 1.x enum member it equals.
  (manager.emit as (event: string, ...payload: unknown[]) => boolean)(event, ...args);
}
