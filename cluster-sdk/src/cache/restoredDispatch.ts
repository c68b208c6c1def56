import type { GatewayDispatchPayload } from 'discord-api-types/v10';
import type { RestoredSnapshot } from './GuildSnapshotStore.js';

/**
 * Restored dispatches: what a resumed shard hands bot code in place of the READY and GUILD_CREATEs
 * Discord sent to an earlier process. They carry `s: 0` (Discord's sequence starts at 1, so no
 * live or replayed event has it; it survives JSON, e.g. over IPC) and are remembered here, so
 * `isRestoredDispatch(packet)` tells them apart without changing the packet's shape.
 */
const restored = new WeakSet<object>();

/** True for a READY or GUILD_CREATE the SDK rebuilt from a guild snapshot after a RESUME. */
export function isRestoredDispatch(packet: { readonly s?: number | null }): boolean {
  return restored.has(packet) || packet.s === 0;
}

/** The session a synthetic READY names (the real one being resumed, when the store has it). */
export interface RestoredSession {
  readonly sessionId: string;
  readonly resumeURL: string;
}

/**
 * A READY as a library expects at a session's start (discord.js builds `client.user` and its guild
 * list from it, every guild unavailable until its GUILD_CREATE), then one GUILD_CREATE per guild.
 */
export function restoredDispatches(
  snapshot: RestoredSnapshot,
  shard: readonly [shardId: number, shardCount: number],
  session: RestoredSession | null,
): GatewayDispatchPayload[] {
  const listed = [...snapshot.guilds.map((guild) => guild.id), ...snapshot.unavailable];
  const ready = {
    op: 0,
    t: 'READY',
    s: 0,
    d: {
      v: 10,
      user: snapshot.user,
      guilds: listed.map((id) => ({ id, unavailable: true })),
      session_id: session?.sessionId ?? '',
      resume_gateway_url: session?.resumeURL ?? '',
      shard: [...shard],
      application: snapshot.application ?? { id: snapshot.user.id, flags: 0 },
    },
  };
  const creates = snapshot.guilds.map((guild) => ({ op: 0, t: 'GUILD_CREATE', s: 0, d: guild }));
  const packets = [ready, ...creates] as unknown as GatewayDispatchPayload[];
  for (const packet of packets) restored.add(packet);
  return packets;
}
