// discord-sim's REST for bots over raw HTTP: every route's answer, Discord's JSON errors, buckets and
// the global limit, invalid-request counting and the ban, the admin views, and every kind of malformed
// request (the simulator answers each with Discord's error and keeps running: closeAllSims checks).
// Rate-limit checks count answers of bursts; no assertion depends on how long anything took.
import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { DiscordSim } from '../src/index.js';
import {
  adminPost,
  closeAllSims,
  getState,
  RawClient,
  request,
  startSim,
  TOKEN,
  waitForState,
  type JsonResponse,
} from './support/gateway.js';

afterEach(closeAllSims);

const auth = { authorization: `Bot ${TOKEN}` };
const json = { ...auth, 'content-type': 'application/json' };
const FOREIGN = '1100000000000000001';

function api(sim: DiscordSim, path: string, init: RequestInit = {}): Promise<JsonResponse> {
  return request(`${sim.urls.rest}${path}`, { ...init, headers: { ...json, ...(init.headers as object) } });
}

function post(sim: DiscordSim, path: string, body: unknown, method = 'POST'): Promise<JsonResponse> {
  return api(sim, path, { method, body: JSON.stringify(body) });
}

const general = (sim: DiscordSim, index = 0): string => sim.simulator.guilds.channelId(index);

/** Callbacks in these tests are not about the 3 s window: a busy machine must not turn them into 10062. */
const SLOW_OK = { interactionResponseMs: 600_000 };

async function interaction(
  sim: DiscordSim,
  index = 0,
): Promise<{ id: string; token: string; application_id: string }> {
  const answer = await adminPost(sim, '/dispatch', {
    t: 'INTERACTION_CREATE',
    d: {
      type: 2,
      guild_id: sim.simulator.guilds.id(index),
      channel_id: general(sim, index),
      data: { name: 'x' },
    },
  });
  expect(answer.status).toBe(200);
  return (answer.body as { interaction: { id: string; token: string; application_id: string } }).interaction;
}

describe('REST for bots: routes', () => {
  it('POST /channels/{id}/messages returns a Discord message and GET /_sim/messages lists it', async () => {
    const sim = await startSim();
    const channel = general(sim);
    const answer = await post(sim, `/channels/${channel}/messages`, {
      content: 'hello',
      nonce: 'abc',
      message_reference: { message_id: FOREIGN },
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      id: expect.stringMatching(/^\d+$/),
      type: 19,
      channel_id: channel,
      guild_id: sim.simulator.guilds.id(0),
      author: { id: sim.simulator.botUserId, bot: true },
      content: 'hello',
      nonce: 'abc',
      message_reference: { message_id: FOREIGN },
      edited_timestamp: null,
      embeds: [],
    });
    const id = (answer.body as { id: string }).id;
    const listed = {
      id,
      channel_id: channel,
      content: 'hello',
      nonce: 'abc',
      message_reference: { message_id: FOREIGN },
    };
    expect((await request(`${sim.urls.admin}/messages?channel_id=${channel}`)).body).toEqual([
      expect.objectContaining(listed),
    ]);
    expect((await request(`${sim.urls.admin}/messages?channel_id=${general(sim, 1)}`)).body).toEqual([]);
    expect((await request(`${sim.urls.admin}/messages`)).body).toEqual([expect.objectContaining(listed)]);
  });

  it('enforce_nonce answers a repeated nonce with the first message', async () => {
    const sim = await startSim();
    const channel = general(sim);
    const first = await post(sim, `/channels/${channel}/messages`, {
      content: 'a',
      nonce: 'n',
      enforce_nonce: true,
    });
    const second = await post(sim, `/channels/${channel}/messages`, {
      content: 'b',
      nonce: 'n',
      enforce_nonce: true,
    });
    expect((second.body as { id: string }).id).toBe((first.body as { id: string }).id);
    expect((await request(`${sim.urls.admin}/messages`)).body).toHaveLength(1);
  });

  it('PATCH and DELETE a bot message, PUT a reaction; listed messages show the edit and the delete', async () => {
    const sim = await startSim();
    const channel = general(sim);
    const id = ((await post(sim, `/channels/${channel}/messages`, { content: 'v1' })).body as { id: string })
      .id;
    const edited = await post(sim, `/channels/${channel}/messages/${id}`, { content: 'v2' }, 'PATCH');
    expect(edited.status).toBe(200);
    expect(edited.body).toMatchObject({ id, content: 'v2', edited_timestamp: expect.any(String) });
    for (const emoji of ['%F0%9F%91%8D', 'party:1100000000000000002']) {
      const reacted = await api(sim, `/channels/${channel}/messages/${id}/reactions/${emoji}/@me`, {
        method: 'PUT',
      });
      expect(reacted.status).toBe(204);
      expect(reacted.text).toBe('');
      // The reaction bucket is 1 per 250 ms: wait it out rather than count on timing.
      await new Promise((resolve) =>
        setTimeout(resolve, Number(reacted.headers.get('x-ratelimit-reset-after')) * 1000 + 20),
      );
    }
    // Reacting to a user's message (not stored) is accepted.
    expect(
      (await api(sim, `/channels/${channel}/messages/${FOREIGN}/reactions/%E2%9C%85/@me`, { method: 'PUT' }))
        .status,
    ).toBe(204);
    expect((await api(sim, `/channels/${channel}/messages/${id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await request(`${sim.urls.admin}/messages`)).body).toEqual([
      expect.objectContaining({ id, content: 'v2', edited: true, deleted: true }),
    ]);
  });

  it('GET and PATCH /channels/{id}, GET /guilds/{id}, GET /guilds/{id}/members/{uid}, GET /users/@me', async () => {
    const sim = await startSim();
    const channel = general(sim);
    const guild = sim.simulator.guilds.id(0);
    expect((await api(sim, `/channels/${channel}`)).body).toMatchObject({
      id: channel,
      guild_id: guild,
      name: 'general',
      type: 0,
    });
    const patched = await post(sim, `/channels/${channel}`, { name: 'renamed', topic: 't' }, 'PATCH');
    expect(patched.body).toMatchObject({ id: channel, name: 'renamed', topic: 't' });
    expect((await api(sim, `/channels/${channel}`)).body).toMatchObject({ name: 'renamed' });
    const guildAnswer = await api(sim, `/guilds/${guild}`);
    expect(guildAnswer.body).toMatchObject({
      id: guild,
      name: 'Simulated Guild 0',
      roles: expect.any(Array),
    });
    expect(guildAnswer.body).not.toHaveProperty('channels');
    expect((await api(sim, `/guilds/${guild}/members/${sim.simulator.botUserId}`)).body).toMatchObject({
      user: { id: sim.simulator.botUserId },
      roles: [],
    });
    expect((await api(sim, '/users/@me')).body).toMatchObject({ id: sim.simulator.botUserId, bot: true });
  });

  it('members: users seen in dispatched events belong to that guild; others are 10007 or 10013', async () => {
    const sim = await startSim();
    const guild = sim.simulator.guilds.id(0);
    const user = '1100000000000000077';
    await adminPost(sim, '/dispatch', {
      t: 'MESSAGE_CREATE',
      d: { guild_id: guild, channel_id: general(sim), author: { id: user } },
    });
    expect((await api(sim, `/guilds/${guild}/members/${user}`)).status).toBe(200);
    expect((await api(sim, `/guilds/${sim.simulator.guilds.id(1)}/members/${user}`)).body).toEqual({
      message: 'Unknown Member',
      code: 10007,
    });
    expect((await api(sim, `/guilds/${guild}/members/${FOREIGN}`)).body).toEqual({
      message: 'Unknown User',
      code: 10013,
    });
  });

  it('a channel from a dispatched event can be replied to', async () => {
    const sim = await startSim();
    const channel = '1100000000000000055';
    await adminPost(sim, '/dispatch', {
      t: 'MESSAGE_CREATE',
      d: { guild_id: FOREIGN, channel_id: channel, content: 'hi' },
    });
    expect((await post(sim, `/channels/${channel}/messages`, { content: 'pong' })).status).toBe(200);
    expect((await api(sim, `/guilds/${FOREIGN}`)).status).toBe(200);
  });

  it('PUT /applications/{app}/commands overwrites commands, ids stable per name', async () => {
    const sim = await startSim();
    const app = sim.simulator.botUserId;
    const first = await post(
      sim,
      `/applications/${app}/commands`,
      [{ name: 'ping', description: 'Ping' }],
      'PUT',
    );
    expect(first.status).toBe(200);
    expect(first.body).toEqual([
      expect.objectContaining({ name: 'ping', type: 1, application_id: app, id: expect.any(String) }),
    ]);
    const second = await post(
      sim,
      `/applications/${app}/commands`,
      [
        { name: 'ping', description: 'Pong' },
        { name: 'Info', type: 2 },
      ],
      'PUT',
    );
    const ids = (second.body as Array<{ id: string }>).map((c) => c.id);
    expect(ids[0]).toBe((first.body as Array<{ id: string }>)[0]!.id);
    expect(ids[1]).not.toBe(ids[0]);
    expect((await post(sim, `/applications/${FOREIGN}/commands`, [], 'PUT')).body).toEqual({
      message: 'Missing Access',
      code: 50001,
    });
    const bad = await post(
      sim,
      `/applications/${app}/commands`,
      [{ name: 'Has Space', description: 'x' }],
      'PUT',
    );
    expect(bad.body).toMatchObject({
      code: 50035,
      errors: { '0': { name: { _errors: [expect.any(Object)] } } },
    });
  });
});

describe('REST for bots: interactions', () => {
  it('a dispatched INTERACTION_CREATE reaches the gateway with the id, token and application id the admin answer names', async () => {
    const sim = await startSim({ guilds: 1 });
    const client = await RawClient.hello(sim.urls.gateway);
    await client.identifyReady([0, 1], { intents: 0 });
    const pair = await interaction(sim);
    expect(pair.application_id).toBe(sim.simulator.botUserId);
    const event = await client.waitFor((m) => m.t === 'INTERACTION_CREATE', 'INTERACTION_CREATE');
    expect(event.d).toMatchObject({ id: pair.id, token: pair.token, application_id: pair.application_id });
  });

  it('the callback is accepted once (204), then 400 40060; a wrong token or id is 10062', async () => {
    const sim = await startSim(SLOW_OK);
    const { id, token } = await interaction(sim);
    const noAuth = { 'content-type': 'application/json' };
    const call = (path: string, body: unknown): Promise<JsonResponse> =>
      request(`${sim.urls.rest}${path}`, { method: 'POST', headers: noAuth, body: JSON.stringify(body) });
    expect(
      (await call(`/interactions/${id}/wrong/callback`, { type: 4, data: { content: 'x' } })).body,
    ).toEqual({
      message: 'Unknown interaction',
      code: 10062,
    });
    expect(
      (await call(`/interactions/${FOREIGN}/${token}/callback`, { type: 4, data: { content: 'x' } })).body,
    ).toMatchObject({ code: 10062 });
    expect((await call(`/interactions/${id}/${token}/callback`, { type: 99 })).body).toMatchObject({
      code: 50035,
      errors: { type: expect.any(Object) },
    });
    const first = await call(`/interactions/${id}/${token}/callback`, { type: 4, data: { content: 'pong' } });
    expect(first.status).toBe(204);
    const second = await call(`/interactions/${id}/${token}/callback`, {
      type: 4,
      data: { content: 'pong' },
    });
    expect(second.status).toBe(400);
    expect(second.body).toEqual({ message: 'Interaction has already been acknowledged.', code: 40060 });
    expect((await request(`${sim.urls.admin}/messages`)).body).toEqual([
      expect.objectContaining({ content: 'pong', interaction_id: id, channel_id: general(sim) }),
    ]);
    expect((await request(`${sim.urls.admin}/interactions`)).body).toEqual([
      expect.objectContaining({ id, callback_type: 4, follow_ups: 0 }),
    ]);
  });

  it('a callback after the response window is 10062 (Discord forgets unanswered interactions)', async () => {
    const sim = await startSim({ interactionResponseMs: 1 });
    const { id, token } = await interaction(sim);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const late = await post(sim, `/interactions/${id}/${token}/callback`, {
      type: 4,
      data: { content: 'x' },
    });
    expect(late.body).toEqual({ message: 'Unknown interaction', code: 10062 });
  });

  it('with_response=true answers 200 with the callback resource', async () => {
    const sim = await startSim(SLOW_OK);
    const { id, token } = await interaction(sim);
    const answer = await post(sim, `/interactions/${id}/${token}/callback?with_response=true`, {
      type: 4,
      data: { content: 'hi' },
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      interaction: { id },
      resource: { type: 4, message: { content: 'hi' } },
    });
  });

  it('follow-ups: unknown app is 10015, unknown token 401 50027, before the callback 10015', async () => {
    const sim = await startSim(SLOW_OK);
    const { id, token, application_id: app } = await interaction(sim);
    expect((await post(sim, `/webhooks/${app}/${token}`, { content: 'early' })).body).toMatchObject({
      code: 10015,
    });
    expect((await post(sim, `/webhooks/${FOREIGN}/${token}`, { content: 'x' })).body).toEqual({
      message: 'Unknown Webhook',
      code: 10015,
    });
    const badToken = await post(sim, `/webhooks/${app}/nope`, { content: 'x' });
    expect([badToken.status, badToken.body]).toEqual([
      401,
      { message: 'Invalid Webhook Token', code: 50027 },
    ]);
    expect((await post(sim, `/interactions/${id}/${token}/callback`, { type: 6 })).status).toBe(204);
    expect(
      (await post(sim, `/webhooks/${app}/${token}/messages/@original`, { content: 'x' }, 'PATCH')).body,
    ).toMatchObject({ code: 10008 });
    expect((await post(sim, `/webhooks/${app}/${token}`, { content: 'later' })).status).toBe(200);
  });

  it('interaction callbacks are exempt from the global limit', async () => {
    const sim = await startSim({ ...SLOW_OK, restGlobalPerSecond: 1 });
    const pairs = await Promise.all(Array.from({ length: 10 }, () => interaction(sim)));
    const answers = await Promise.all(
      pairs.map(({ id, token }) =>
        post(sim, `/interactions/${id}/${token}/callback`, { type: 4, data: { content: 'x' } }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(204));
    expect((await getState(sim)).rest.globalRateLimited).toBe(0);
  });
});

describe('REST for bots: rate limits', () => {
  it('message create: 5 per channel with Discord headers, then a 429 of scope user; other channels unaffected', async () => {
    const sim = await startSim();
    const channel = general(sim);
    const answers: JsonResponse[] = [];
    for (let n = 0; n < 6; n++)
      answers.push(await post(sim, `/channels/${channel}/messages`, { content: `${n}` }));
    const statuses = answers.map((a) => a.status);
    // Five fit the window; a sixth is refused unless the window passed (then every later one fits too).
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    const hash = answers[0]!.headers.get('x-ratelimit-bucket');
    for (const answer of answers) {
      expect(answer.headers.get('x-ratelimit-limit')).toBe('5');
      expect(answer.headers.get('x-ratelimit-bucket')).toBe(hash);
    }
    const other = await post(sim, `/channels/${general(sim, 1)}/messages`, { content: 'x' });
    expect([
      other.status,
      other.headers.get('x-ratelimit-bucket'),
      other.headers.get('x-ratelimit-remaining'),
    ]).toEqual([200, hash, '4']);
    const limited = answers[5]!;
    if (limited.status === 429) {
      // The sixth shared a window with the five before it, so the fifth saw the bucket empty.
      expect(answers.map((a) => a.headers.get('x-ratelimit-remaining'))).toEqual([
        '4',
        '3',
        '2',
        '1',
        '0',
        '0',
      ]);
      expect(limited.headers.get('x-ratelimit-scope')).toBe('user');
      expect(limited.headers.get('x-ratelimit-global')).toBeNull();
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(limited.body).toEqual({
        message: 'You are being rate limited.',
        retry_after: expect.any(Number),
        global: false,
      });
      expect((await getState(sim)).rest).toMatchObject({ rateLimited: 1, invalid: 1 });
    }
  });

  it('the global limit is per token: a burst past it gets global 429s, each counted', async () => {
    const sim = await startSim({ guilds: 40, restGlobalPerSecond: 3 });
    // 30 concurrent requests could only all pass if they spread over ten one-second windows.
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, n) =>
        post(sim, `/channels/${general(sim, n)}/messages`, { content: 'x' }),
      ),
    );
    const limited = answers.filter((a) => a.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(answers.filter((a) => a.status === 200).length + limited.length).toBe(30);
    for (const answer of limited) {
      expect(answer.headers.get('x-ratelimit-global')).toBe('true');
      expect(answer.headers.get('x-ratelimit-scope')).toBe('global');
      expect(answer.body).toMatchObject({ global: true });
    }
    const state = await getState(sim);
    expect(state.rest).toMatchObject({
      globalRateLimited: limited.length,
      rateLimited: limited.length,
      invalid: limited.length,
    });
  });

  it('invalid requests: 401 and 403 count, 404 and 405 do not; the ban refuses everything with a 429 without bucket headers', async () => {
    const sim = await startSim({ invalidRequestLimit: 4, banMs: 600_000 });
    expect((await api(sim, `/channels/${FOREIGN}`)).status).toBe(404);
    expect((await api(sim, '/users/@me', { headers: { authorization: 'Bot wrong' } })).status).toBe(401);
    expect((await api(sim, `/channels/${general(sim, 0)}/messages`)).status).toBe(405);
    expect((await api(sim, `/channels/${sim.simulator.guilds.channelId(0, 'hidden')}`)).body).toEqual({
      message: 'Missing Access',
      code: 50001,
    });
    expect(
      (
        await post(sim, `/channels/${sim.simulator.guilds.channelId(0, 'read-only')}/messages`, {
          content: 'x',
        })
      ).body,
    ).toEqual({
      message: 'Missing Permissions',
      code: 50013,
    });
    expect((await getState(sim)).rest).toMatchObject({ invalid: 3, bans: 0 });
    expect((await api(sim, '/users/@me')).status).toBe(200);
    // The fourth invalid request is answered normally and starts the ban.
    expect((await api(sim, '/gateway/bot', { headers: { authorization: 'Bot wrong' } })).status).toBe(401);
    for (const path of ['/users/@me', '/gateway', '/no/such/route']) {
      const refused = await api(sim, path);
      expect(refused.status).toBe(429);
      expect(refused.headers.get('x-ratelimit-bucket')).toBeNull();
      expect(refused.headers.get('x-ratelimit-scope')).toBeNull();
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(500);
      expect(refused.body).toMatchObject({
        code: 0,
        global: false,
        retry_after: expect.any(Number),
        message: expect.stringContaining('blocked'),
      });
    }
    expect((await getState(sim)).rest).toMatchObject({ invalid: 4, bans: 1, banned: 3 });
    // The admin API is not Discord's: it still answers.
    expect((await request(`${sim.urls.admin}/messages`)).status).toBe(200);
  });

  it('the ban ends after --ban-ms', async () => {
    const sim = await startSim({ invalidRequestLimit: 1, banMs: 300 });
    expect((await api(sim, '/users/@me', { headers: { authorization: 'Bot wrong' } })).status).toBe(401);
    expect((await api(sim, '/users/@me')).status).toBe(429);
    const deadline = Date.now() + 15_000;
    let status = 429;
    while (status === 429 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      status = (await api(sim, '/users/@me')).status;
    }
    expect(status).toBe(200);
  });
});

describe('REST for bots: Discord JSON errors', () => {
  it.each([
    ['GET', `/channels/${FOREIGN}`, 404, { message: 'Unknown Channel', code: 10003 }],
    ['GET', `/guilds/${FOREIGN}`, 404, { message: 'Unknown Guild', code: 10004 }],
    ['POST', `/channels/${FOREIGN}/messages`, 404, { message: 'Unknown Channel', code: 10003 }],
  ] as const)('%s %s → %i', async (method, path, status, body) => {
    const sim = await startSim();
    const answer = await api(sim, path, {
      method,
      ...(method === 'POST' ? { body: '{"content":"x"}' } : {}),
    });
    expect([answer.status, answer.body]).toEqual([status, body]);
  });

  it('messages: unknown bot message 10008, editing a user message 50005, deleting one 50013', async () => {
    const sim = await startSim();
    const channel = general(sim);
    const id = ((await post(sim, `/channels/${channel}/messages`, { content: 'x' })).body as { id: string })
      .id;
    const missing = (BigInt(id) + 1n).toString();
    expect(
      (await post(sim, `/channels/${channel}/messages/${missing}`, { content: 'y' }, 'PATCH')).body,
    ).toEqual({
      message: 'Unknown Message',
      code: 10008,
    });
    expect(
      (await post(sim, `/channels/${channel}/messages/${FOREIGN}`, { content: 'y' }, 'PATCH')).body,
    ).toMatchObject({ code: 50005 });
    expect(
      (await api(sim, `/channels/${channel}/messages/${FOREIGN}`, { method: 'DELETE' })).body,
    ).toMatchObject({ code: 50013 });
    // A bot message is not found through another channel.
    expect(
      (await post(sim, `/channels/${general(sim, 1)}/messages/${id}`, { content: 'y' }, 'PATCH')).body,
    ).toMatchObject({ code: 10008 });
  });

  it('403s: the hidden channel is 50001 on every route, the read-only channel 50013 for posting and editing', async () => {
    const sim = await startSim();
    const hidden = sim.simulator.guilds.channelId(0, 'hidden');
    const readOnly = sim.simulator.guilds.channelId(0, 'read-only');
    for (const [method, path] of [
      ['GET', `/channels/${hidden}`],
      ['POST', `/channels/${hidden}/messages`],
      ['PUT', `/channels/${hidden}/messages/${FOREIGN}/reactions/%E2%9C%85/@me`],
    ] as const) {
      const answer = await api(sim, path, {
        method,
        ...(method === 'POST' ? { body: '{"content":"x"}' } : {}),
      });
      expect([answer.status, answer.body]).toEqual([403, { message: 'Missing Access', code: 50001 }]);
    }
    expect((await api(sim, `/channels/${readOnly}`)).status).toBe(200);
    expect((await post(sim, `/channels/${readOnly}`, { name: 'x' }, 'PATCH')).body).toMatchObject({
      code: 50013,
    });
    expect((await getState(sim)).rest.invalid).toBe(4);
  });

  it.each([
    ['no Authorization', {}],
    ['a wrong token', { authorization: 'Bot wrong' }],
    ['a Bearer token', { authorization: `Bearer ${TOKEN}` }],
  ])('401 for %s on a bot route', async (_name, headers: Record<string, string>) => {
    const sim = await startSim();
    const answer = await request(`${sim.urls.rest}/channels/${general(sim)}/messages`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: '{"content":"x"}',
    });
    expect([answer.status, answer.text]).toEqual([401, '{"message":"401: Unauthorized","code":0}']);
    expect((await getState(sim)).rest).toMatchObject({ unauthorized: 1, invalid: 1 });
  });
});

describe('REST for bots: malformed requests', () => {
  it('bad JSON is 400 50109', async () => {
    const sim = await startSim();
    const answer = await api(sim, `/channels/${general(sim)}/messages`, {
      method: 'POST',
      body: '{"content": "x"',
    });
    expect([answer.status, answer.body]).toEqual([
      400,
      { message: 'The request body contains invalid JSON.', code: 50109 },
    ]);
  });

  it('an oversized body is 413 40005', async () => {
    const sim = await startSim();
    const answer = await api(sim, `/channels/${general(sim)}/messages`, {
      method: 'POST',
      body: JSON.stringify({ content: 'x'.repeat(2 * 1024 * 1024) }),
    });
    expect([answer.status, answer.body]).toEqual([413, { message: 'Request entity too large', code: 40005 }]);
  });

  it.each([
    ['an array', [1, 2]],
    ['a string', 'hello'],
    ['null', null],
  ])('a body that is %s is 50035', async (_name, body) => {
    const sim = await startSim();
    const answer = await post(sim, `/channels/${general(sim)}/messages`, body);
    expect([answer.status, answer.body]).toEqual([
      400,
      {
        message: 'Invalid Form Body',
        code: 50035,
        errors: { _errors: [{ code: 'DICT_TYPE_CONVERT', message: expect.any(String) }] },
      },
    ]);
  });

  it.each([
    ['empty', {}, 50006, undefined],
    ['content too long', { content: 'x'.repeat(2001) }, 50035, 'content'],
    ['content not a string', { content: 5 }, 50035, 'content'],
    ['nonce too long', { content: 'x', nonce: 'n'.repeat(26) }, 50035, 'nonce'],
    ['embeds not an array', { content: 'x', embeds: {} }, 50035, 'embeds'],
    ['11 embeds', { embeds: Array(11).fill({}) }, 50035, 'embeds'],
    [
      'a bad message_reference',
      { content: 'x', message_reference: { message_id: 'abc' } },
      50035,
      'message_reference',
    ],
  ])('message body %s → %i', async (_name, body, code, field) => {
    const sim = await startSim();
    const answer = await post(sim, `/channels/${general(sim)}/messages`, body);
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ code });
    if (field) expect((answer.body as { errors: Record<string, unknown> }).errors).toHaveProperty(field);
  });

  it('a content type other than JSON (files, form) is 50035 CONTENT_TYPE_INVALID', async () => {
    const sim = await startSim();
    const answer = await api(sim, `/channels/${general(sim)}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=x' },
      body: '--x--',
    });
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({
      code: 50035,
      errors: { _errors: [{ code: 'CONTENT_TYPE_INVALID' }] },
    });
  });

  it.each([
    ['GET', '/no/such/route'],
    ['GET', '/channels'],
    ['POST', '/channels/1/messages/2/3'],
    ['GET', '/users/someone/else'],
  ])('unknown route %s %s is 404 "404: Not Found"', async (method, path) => {
    const sim = await startSim();
    const answer = await api(sim, path, { method });
    expect([answer.status, answer.body]).toEqual([404, { message: '404: Not Found', code: 0 }]);
  });

  it.each([
    ['PUT', `/channels/CHANNEL/messages`],
    ['DELETE', `/channels/CHANNEL`],
    ['GET', `/interactions/1/t/callback`],
    ['POST', '/users/@me'],
    ['DELETE', '/applications/1/commands'],
  ])('wrong method %s %s is 405 with Allow', async (method, template) => {
    const sim = await startSim();
    const answer = await api(sim, template.replace('CHANNEL', general(sim)), { method });
    expect([answer.status, answer.body]).toEqual([405, { message: '405: Method Not Allowed', code: 0 }]);
    expect(answer.headers.get('allow')).toMatch(/[A-Z]/);
  });

  it.each([
    ['GET', '/channels/abc', 'channel_id'],
    ['GET', '/channels/123456789012345678901234', 'channel_id'],
    ['GET', '/guilds/-5', 'guild_id'],
    ['GET', '/guilds/GUILD/members/me', 'user_id'],
    ['PATCH', '/channels/CHANNEL/messages/x1', 'message_id'],
    ['POST', '/interactions/nope/token/callback', 'interaction_id'],
    ['POST', '/webhooks/app/token', 'webhook_id'],
    ['PUT', '/applications/app/commands', 'application_id'],
  ])('a bad id: %s %s is 400 50035 naming %s', async (method, template, field) => {
    const sim = await startSim();
    const path = template.replace('CHANNEL', general(sim)).replace('GUILD', sim.simulator.guilds.id(0));
    const answer = await api(sim, path, {
      method,
      ...(method === 'GET' ? {} : { body: method === 'PUT' ? '[]' : '{"content":"x","type":4}' }),
    });
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({
      message: 'Invalid Form Body',
      code: 50035,
      errors: { [field]: { _errors: [{ code: 'NUMBER_TYPE_COERCE' }] } },
    });
  });

  it('a bad percent-escape in the path is 400; an unknown emoji is 10014', async () => {
    const sim = await startSim();
    const channel = general(sim);
    expect(
      (await api(sim, `/channels/${channel}/messages/${FOREIGN}/reactions/%E0%A4%A/@me`, { method: 'PUT' }))
        .body,
    ).toEqual({
      message: '400: Bad Request',
      code: 0,
    });
    expect(
      (await api(sim, `/channels/${channel}/messages/${FOREIGN}/reactions/abc/@me`, { method: 'PUT' })).body,
    ).toEqual({
      message: 'Unknown Emoji',
      code: 10014,
    });
  });

  it('a body cut off mid-request, and garbage on the socket, leave the simulator serving', async () => {
    const sim = await startSim();
    const { port } = new URL(sim.urls.rest);
    await new Promise<void>((resolve) => {
      const req = httpRequest({
        port: Number(port),
        host: '127.0.0.1',
        method: 'POST',
        path: `/api/v10/channels/${general(sim)}/messages`,
        headers: { ...json, 'content-length': '1000' },
      });
      req.on('error', () => resolve());
      req.write('{"content":');
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 50);
    });
    const net = await import('node:net');
    await new Promise<void>((resolve) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => socket.end('NOT HTTP\r\n\r\n'));
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
    });
    expect((await api(sim, '/users/@me')).status).toBe(200);
  });

  it('admin GET /messages with a bad channel_id is a 400 naming it', async () => {
    const sim = await startSim();
    const answer = await request(`${sim.urls.admin}/messages?channel_id=abc`);
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ error: expect.stringContaining('channel_id') });
  });
});

describe('GET /_sim/state rest counters', () => {
  it('has requests, ok, rateLimited, globalRateLimited, invalid and banned', async () => {
    const sim = await startSim();
    await api(sim, '/users/@me');
    await api(sim, '/no/such/route');
    const state = await waitForState(sim, (s) => s.rest.requests === 2, 'two requests');
    expect(state.rest).toEqual({
      requests: 2,
      ok: 1,
      rateLimited: 0,
      globalRateLimited: 0,
      invalid: 0,
      banned: 0,
      bans: 0,
      unauthorized: 0,
      // Requests per client address (source_addresses): both from this test's loopback address.
      byClient: { '127.0.0.1': 2 },
    });
  });
});
