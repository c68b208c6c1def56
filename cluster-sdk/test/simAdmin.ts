/**
 * discord-sim's admin API as the SDK's tests drive it (not a test file): the generated channels,
 * injected events, the messages bots posted and the simulator's counters.
 */
import { expect } from 'vitest';
import type { SimJson } from 'discluster-testing';
import { userMessage } from '../../discord-sim/src';

/** Anything with the simulator's admin URL (a `DiscordSimProcess`, a test's fleet). */
export interface SimAdminUrl {
  readonly admin: string;
}

/** A channel the simulator generated (GET /channels). */
export interface SimChannel {
  readonly id: string;
  readonly guild_id: string;
}

/** A message a bot posted (GET /messages). */
export interface SimMessage {
  readonly content: string;
  readonly nonce: string | null;
  readonly message_reference: { message_id?: string } | null;
  readonly interaction_id: string | null;
}

/** The user the injected events come from. */
export const SIM_USER = {
  id: '80351110224678912',
  username: 'someone',
  discriminator: '0',
  avatar: null,
  global_name: null,
} as const;

/** GET `route` of the admin API, or POST `body` to it; the simulator must answer 200. */
export async function simAdmin<T = SimJson>(sim: SimAdminUrl, route: string, body?: unknown): Promise<T> {
  const response = await fetch(`${sim.admin}${route}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as T;
}

/** The simulator's counters (GET /state). */
export function simState(sim: SimAdminUrl): Promise<SimJson> {
  return simAdmin(sim, '/state');
}

/** Sends a dispatch `t` with `d` to the shard of `d.guild_id` (POST /dispatch). */
export async function simDispatch(sim: SimAdminUrl, t: string, d: unknown): Promise<SimJson> {
  return simAdmin(sim, '/dispatch', { t, d });
}

/** Every channel the simulator generated (its channels name every guild). */
export function simChannels(sim: SimAdminUrl): Promise<SimChannel[]> {
  return simAdmin<SimChannel[]>(sim, '/channels?limit=10000');
}

/** A generated channel whose guild `shardOf` puts on `shardId` (`cluster.shardForGuild`, say). */
export async function channelOnShard(
  sim: SimAdminUrl,
  shardOf: (guildId: string) => number,
  shardId: number,
): Promise<SimChannel> {
  const channel = (await simChannels(sim)).find((c) => shardOf(c.guild_id) === shardId);
  if (!channel) throw new Error(`no generated guild on shard ${shardId}`);
  return channel;
}

/** The messages bots posted in a channel. */
export function postedTo(sim: SimAdminUrl, channelId: string): Promise<SimMessage[]> {
  return simAdmin<SimMessage[]>(sim, `/messages?channel_id=${channelId}`);
}

/** A user's MESSAGE_CREATE in `channel`, with every field discord.js and @discordjs/core read. */
export function messageCreate(channel: SimChannel, id: string, content: string): { t: string; d: unknown } {
  return {
    t: 'MESSAGE_CREATE',
    d: userMessage({ id, channelId: channel.id, guildId: channel.guild_id, author: SIM_USER, content }),
  };
}
