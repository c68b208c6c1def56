// discord-sim's REST for bots, driven by @discordjs/rest as an independent client: if the simulator's
// headers, buckets, global limit, errors or ban differed from Discord's, this client would misbehave
// (429 on a bucket it tracks, never see the global flag, parse the wrong error). Assertions count
// events and answers, never durations: the machine is shared and noisy.
import { DiscordAPIError, RateLimitError, REST, type RateLimitData, type RESTOptions } from '@discordjs/rest';
import { Routes } from 'discord-api-types/v10';
import { afterEach, describe, expect, it } from 'vitest';
import type { DiscordSim } from '../src/index.js';
import { adminPost, closeAllSims, getState, request, startSim, TOKEN } from './support/gateway.js';

interface Seen {
  status: number;
  headers: Headers;
  body: unknown;
}

afterEach(closeAllSims);

/** A REST client on the simulator that records every answer it receives (status, headers, body). */
function client(
  sim: DiscordSim,
  options: Partial<RESTOptions> = {},
  token = TOKEN,
): { rest: REST; seen: Seen[] } {
  const seen: Seen[] = [];
  const rest = new REST({
    api: sim.urls.rest.replace(/\/v10$/, ''),
    hashSweepInterval: 0,
    handlerSweepInterval: 0,
    // Global fetch returns real Responses: each answer is cloned and recorded before the client reads it.
    makeRequest: async (url, init) => {
      const response = await fetch(url, init as unknown as RequestInit);
      const copy = response.clone();
      const text = await copy.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
      seen.push({ status: response.status, headers: response.headers, body });
      return response;
    },
    ...options,
  }).setToken(token);
  return { rest, seen };
}

/** The writable `general` channel of the first `count` guilds. */
function channels(sim: DiscordSim, count: number): string[] {
  return Array.from({ length: count }, (_, index) => sim.simulator.guilds.channelId(index));
}

async function posted(sim: DiscordSim, channelId?: string): Promise<Array<Record<string, unknown>>> {
  const query = channelId === undefined ? '' : `?channel_id=${channelId}`;
  return (await request(`${sim.urls.admin}/messages${query}`)).body as Array<Record<string, unknown>>;
}

describe('@discordjs/rest against discord-sim', () => {
  it('parses the message-create bucket from Discord-shaped headers (limit 5, per channel, one hash)', async () => {
    const sim = await startSim({ guilds: 3 });
    const { rest, seen } = client(sim);
    const [a, b] = channels(sim, 2);
    await rest.post(Routes.channelMessages(a!), { body: { content: 'one' } });
    await rest.post(Routes.channelMessages(a!), { body: { content: 'two' } });
    await rest.post(Routes.channelMessages(b!), { body: { content: 'three' } });
    const hash = rest.hashes.get('POST:/channels/:id/messages');
    expect(hash?.value).toMatch(/^[0-9a-f]{32}$/);
    // One handler per (hash, major parameter): the client keys buckets exactly as the simulator does.
    const handlerA = rest.handlers.get(`${hash!.value}:${a}`) as unknown as {
      limit: number;
      remaining: number;
    };
    const handlerB = rest.handlers.get(`${hash!.value}:${b}`) as unknown as {
      limit: number;
      remaining: number;
    };
    expect(handlerA).toMatchObject({ limit: 5, remaining: 3 });
    expect(handlerB).toMatchObject({ limit: 5, remaining: 4 });
    for (const answer of seen) {
      expect(answer.status).toBe(200);
      expect(answer.headers.get('x-ratelimit-bucket')).toBe(hash!.value);
      expect(Number(answer.headers.get('x-ratelimit-reset-after'))).toBeGreaterThan(0);
      expect(Number(answer.headers.get('x-ratelimit-reset-after'))).toBeLessThanOrEqual(5);
      expect(Number(answer.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000 - 60);
    }
    expect((await getState(sim)).rest).toMatchObject({ requests: 3, ok: 3, rateLimited: 0 });
  });

  it('a sequential client never gets a 429 on a bucket it knows: it waits for the reset instead', async () => {
    const sim = await startSim({ guilds: 1 });
    const { rest, seen } = client(sim);
    const waits: RateLimitData[] = [];
    rest.on('rateLimited', (data) => waits.push(data));
    const [channel] = channels(sim, 1);
    // 11 messages on a 5-per-5-s bucket: the client must wait twice, and knows it must.
    for (let n = 0; n < 11; n++)
      await rest.post(Routes.channelMessages(channel!), { body: { content: `m${n}`, nonce: `n${n}` } });
    expect(seen.map((answer) => answer.status)).toEqual(Array(11).fill(200));
    // At least one wait (two unless five requests took longer than the 5 s window).
    expect(waits.length).toBeGreaterThanOrEqual(1);
    for (const wait of waits)
      expect(wait).toMatchObject({ global: false, limit: 5, route: '/channels/:id/messages' });
    const state = await getState(sim);
    expect(state.rest).toMatchObject({ rateLimited: 0, globalRateLimited: 0, invalid: 0 });
    expect((await posted(sim, channel)).map((m) => m['nonce'])).toEqual(
      Array.from({ length: 11 }, (_, n) => `n${n}`),
    );
  });

  it('uncoordinated concurrent clients run into the global limit: 429s with global true', async () => {
    // Four clients each believe they own the whole 20/s: together they send four times that.
    const sim = await startSim({ guilds: 30, restGlobalPerSecond: 20 });
    const targets = channels(sim, 25);
    const fleet = Array.from({ length: 4 }, () => client(sim, { globalRequestsPerSecond: 20 }));
    await Promise.all(
      fleet.flatMap(({ rest }, c) =>
        targets.map((channel) =>
          rest.post(Routes.channelMessages(channel), {
            body: { content: `c${c}`, nonce: `${c}:${channel}` },
          }),
        ),
      ),
    );
    const globals = fleet.flatMap(({ seen }) => seen).filter((answer) => answer.status === 429);
    expect(globals.length).toBeGreaterThan(0);
    for (const answer of globals) {
      expect(answer.headers.get('x-ratelimit-global')).toBe('true');
      expect(answer.headers.get('x-ratelimit-scope')).toBe('global');
      expect(Number(answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(answer.body).toEqual({
        message: 'You are being rate limited.',
        retry_after: expect.any(Number),
        global: true,
      });
    }
    // The clients retried every global 429: every message arrived exactly once.
    expect(await posted(sim)).toHaveLength(100);
    const state = await getState(sim);
    expect(state.rest.globalRateLimited).toBe(globals.length);
    expect(state.rest.rateLimited).toBe(globals.length);
    expect(state.rest.invalid).toBe(globals.length);
  });

  it('a bad token is a 401 DiscordAPIError and counts as an invalid request on both sides', async () => {
    const sim = await startSim();
    const { rest } = client(sim, { invalidRequestWarningInterval: 1 }, 'not-the-token');
    const warnings: number[] = [];
    rest.on('invalidRequestWarning', (data) => warnings.push(data.count));
    const error = await rest.get(Routes.user('@me')).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DiscordAPIError);
    expect(error).toMatchObject({
      status: 401,
      code: 0,
      rawError: { message: '401: Unauthorized', code: 0 },
    });
    expect(warnings.length).toBe(1);
    expect((await getState(sim)).rest).toMatchObject({ unauthorized: 1, invalid: 1, ok: 0 });
  });

  it('the ban engages at the configured invalid-request limit and refuses the good token too', async () => {
    const sim = await startSim({ invalidRequestLimit: 3, banMs: 600_000 });
    // @discordjs/rest drops its token after a 401, so each bad request comes from a fresh client.
    const bad = (): Promise<unknown> => client(sim, {}, 'not-the-token').rest.get(Routes.user('@me'));
    // Rejecting on every 429 keeps the client from sleeping out the ban's Retry-After.
    const good = client(sim, { rejectOnRateLimit: () => true });
    expect(await good.rest.get(Routes.user('@me'))).toMatchObject({ bot: true });
    for (let n = 0; n < 2; n++) await expect(bad()).rejects.toMatchObject({ status: 401 });
    // Two invalid requests: still below the limit of 3.
    expect(await good.rest.get(Routes.user('@me'))).toMatchObject({ bot: true });
    await expect(bad()).rejects.toMatchObject({ status: 401 });
    const refused = await good.rest.get(Routes.user('@me')).catch((caught: unknown) => caught);
    expect(refused).toBeInstanceOf(RateLimitError);
    expect((refused as RateLimitError).retryAfter).toBeGreaterThan(60_000);
    const answer = good.seen.at(-1)!;
    expect(answer.status).toBe(429);
    expect(answer.headers.get('x-ratelimit-bucket')).toBeNull();
    expect(answer.body).toMatchObject({
      code: 0,
      global: false,
      message: expect.stringContaining('blocked'),
    });
    expect((await getState(sim)).rest).toMatchObject({ invalid: 3, bans: 1, banned: 1, ok: 2 });
  });

  it('interaction callback once, then 40060; follow-up and @original through the webhook routes', async () => {
    const sim = await startSim({ guilds: 2, interactionResponseMs: 600_000 });
    const channel = sim.simulator.guilds.channelId(0);
    const guild = sim.simulator.guilds.id(0);
    const dispatched = await adminPost(sim, '/dispatch', {
      t: 'INTERACTION_CREATE',
      d: { type: 2, guild_id: guild, channel_id: channel, data: { name: 'ping', type: 1 } },
    });
    const {
      id,
      token,
      application_id: appId,
    } = (dispatched.body as { interaction: Record<string, string> }).interaction as {
      id: string;
      token: string;
      application_id: string;
    };
    const { rest } = client(sim);
    await rest.post(Routes.interactionCallback(id, token), {
      body: { type: 5 },
      auth: false,
    });
    const again = await rest
      .post(Routes.interactionCallback(id, token), { body: { type: 4, data: { content: 'x' } }, auth: false })
      .catch((caught: unknown) => caught);
    expect(again).toBeInstanceOf(DiscordAPIError);
    expect(again).toMatchObject({ status: 400, code: 40060 });
    const edited = await rest.patch(Routes.webhookMessage(appId, token, '@original'), {
      body: { content: 'pong' },
      auth: false,
    });
    expect(edited).toMatchObject({ content: 'pong', channel_id: channel, flags: 0 });
    const followUp = await rest.post(Routes.webhook(appId, token), {
      body: { content: 'more' },
      auth: false,
    });
    expect(followUp).toMatchObject({ content: 'more', channel_id: channel, webhook_id: appId });
    expect((await posted(sim, channel)).map((m) => [m['content'], m['interaction_id']])).toEqual([
      ['pong', id],
      ['more', id],
    ]);
  });

  it('replies carry message_reference and nonce into GET /messages; unknown ids are Discord errors', async () => {
    const sim = await startSim({ guilds: 2 });
    const { rest } = client(sim);
    const channel = sim.simulator.guilds.channelId(1);
    const userMessage = '1100000000000000000';
    const reply = (await rest.post(Routes.channelMessages(channel), {
      body: { content: 'pong', nonce: 'r1', message_reference: { message_id: userMessage } },
    })) as { id: string; type: number };
    expect(reply.type).toBe(19);
    expect(await posted(sim, channel)).toEqual([
      expect.objectContaining({
        id: reply.id,
        channel_id: channel,
        content: 'pong',
        nonce: 'r1',
        message_reference: { message_id: userMessage },
      }),
    ]);
    await rest.put(Routes.channelMessageOwnReaction(channel, reply.id, encodeURIComponent('👍')));
    await rest.delete(Routes.channelMessage(channel, reply.id));
    await expect(rest.delete(Routes.channelMessage(channel, reply.id))).rejects.toMatchObject({
      status: 404,
      code: 10008,
    });
    await expect(rest.get(Routes.channel('1100000000000000001'))).rejects.toMatchObject({
      status: 404,
      code: 10003,
    });
    await expect(rest.get(Routes.guild('1100000000000000001'))).rejects.toMatchObject({
      status: 404,
      code: 10004,
    });
    const hidden = sim.simulator.guilds.channelId(1, 'hidden');
    await expect(rest.get(Routes.channel(hidden))).rejects.toMatchObject({ status: 403, code: 50001 });
  });
});
