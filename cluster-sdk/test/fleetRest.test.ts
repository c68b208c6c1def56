/**
 * Issue 15: `cluster.rest`'s fleet-wide limits, with several processes' limiters (each its own NATS
 * connection, as separate processes have) against discord-sim's REST, which counts every 429.
 */
import { REST, DiscordAPIError } from '@discordjs/rest';
import { Routes } from 'discord-api-types/v10';
import {
  startDiscordSimProcess,
  startNatsServer,
  type DiscordSimProcess,
  type NatsServerHandle,
  waitFor,
} from 'discluster-testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FleetRestLimiter, type FleetRestLimiterOptions } from '../src';
import { Cleanup, connectNats, uniqueBot } from './helpers';

const TOKEN = 'fleet-rest-token';

let nats: NatsServerHandle;
const cleanup = new Cleanup();
beforeAll(async () => {
  nats = await startNatsServer();
});
afterEach(async () => {
  await cleanup.run();
});
afterAll(async () => {
  await nats?.stop();
});

interface Process {
  readonly rest: REST;
  readonly limiter: FleetRestLimiter;
  readonly warnings: string[];
}

async function startSim(flags: Record<string, string | number> = {}): Promise<DiscordSimProcess> {
  const sim = await startDiscordSimProcess({ token: TOKEN, guilds: 60, shards: 1, ...flags });
  cleanup.add(() => sim.stop());
  return sim;
}

/** One bot process: its own NATS connection, limiter and @discordjs/rest client. */
async function botProcess(
  sim: DiscordSimProcess,
  options: Omit<FleetRestLimiterOptions, 'token'> & { token?: string },
): Promise<Process> {
  const nc = await connectNats(nats.url, 'rest');
  cleanup.add(() => nc.close());
  const warnings: string[] = [];
  const limiter = await FleetRestLimiter.open(nc, {
    token: TOKEN,
    onWarn: (message) => warnings.push(message),
    ...options,
  });
  cleanup.add(() => limiter.close());
  const rest = new REST({
    version: '10',
    api: sim.rest.replace(/\/v10$/, ''),
    globalRequestsPerSecond: Number.MAX_SAFE_INTEGER,
    makeRequest: limiter.makeRequest,
  }).setToken(options.token ?? TOKEN);
  return { rest, limiter, warnings };
}

async function channels(sim: DiscordSimProcess, kind: string, limit: number): Promise<string[]> {
  const listed = (await (await fetch(`${sim.admin}/channels?kind=${kind}&limit=${limit}`)).json()) as Array<{
    id: string;
  }>;
  return listed.map((channel) => channel.id);
}

async function posted(sim: DiscordSimProcess): Promise<Array<{ nonce: string | null }>> {
  return (await (await fetch(`${sim.admin}/messages`)).json()) as Array<{ nonce: string | null }>;
}

describe('cluster.rest fleet-wide limits', () => {
  it('4 processes posting to 40 channels at once: no 429 at all, every message exactly once', async () => {
    const sim = await startSim({ 'rest-global-per-second': 50 });
    const bot = uniqueBot('rest');
    const processes = await Promise.all(
      // The four share this test's event loop, where a busy CI machine delays a send by more than
      // the default 30 ms margin (separate processes: test/fleet.rest.test.ts, at the default).
      [0, 1, 2, 3].map(() =>
        botProcess(sim, { bot, processes: 4, globalPerSecond: 50, globalMarginMs: 100 }),
      ),
    );
    const targets = await channels(sim, 'general', 40);
    const nonces: string[] = [];
    // Every process posts 3 messages to every channel, all channels at once: 480 messages, 12 per
    // channel (3 windows of the 5-per-5-s bucket), far above the global 50/s.
    await Promise.all(
      processes.map(async ({ rest }, p) =>
        Promise.all(
          targets.map(async (channel, c) => {
            for (let m = 0; m < 3; m++) {
              const nonce = `${p}-${c}-${m}`;
              nonces.push(nonce);
              await rest.post(Routes.channelMessages(channel), { body: { content: nonce, nonce } });
            }
          }),
        ),
      ),
    );
    const state = await sim.state();
    expect(state['rest']).toMatchObject({ rateLimited: 0, globalRateLimited: 0, invalid: 0, banned: 0 });
    const seen = (await posted(sim)).map((message) => message.nonce);
    expect(seen.sort()).toEqual(nonces.sort());
    expect(processes.flatMap((process) => process.warnings)).toEqual([]);
  });

  it('a bug that keeps posting where the bot may not (403) is stopped below the ban threshold', async () => {
    const sim = await startSim({ 'invalid-request-limit': 100 });
    const bot = uniqueBot('rest403');
    const processes = await Promise.all(
      [0, 1, 2].map(() => botProcess(sim, { bot, processes: 3, invalidRequestLimit: 100 })),
    );
    const readOnly = await channels(sim, 'read-only', 10);
    const outcomes = { forbidden: 0, refused: 0 };
    await Promise.all(
      processes.map(async ({ rest }) => {
        for (let attempt = 0; attempt < 60; attempt++) {
          const channel = readOnly[attempt % readOnly.length] as string;
          try {
            await rest.post(Routes.channelMessages(channel), { body: { content: 'x' } });
          } catch (error) {
            if (error instanceof DiscordAPIError && error.status === 403) outcomes.forbidden++;
            else if ((error as { code?: string }).code === 'DISCLUSTER_ERR_REST_INVALID_REQUESTS')
              outcomes.refused++;
            else throw error;
          }
        }
      }),
    );
    const state = await sim.state();
    const rest = state['rest'] as { invalid: number; banned: number };
    expect(rest.banned).toBe(0);
    expect(rest.invalid).toBeLessThan(80);
    expect(outcomes.refused).toBeGreaterThan(0);
    expect(outcomes.forbidden).toBe(rest.invalid);
    // The alert-worthy line names the code and what to do.
    expect(processes.flatMap((process) => process.warnings).join('\n')).toMatch(
      /DISCLUSTER_ERR_REST_INVALID_REQUESTS: .*refused before sending.*Fix the permissions/,
    );
    // Requests that do not fail still go through.
    const [general] = await channels(sim, 'general', 1);
    await processes[0]!.rest.post(Routes.channelMessages(general!), { body: { content: 'still here' } });
  });

  it('a 401 stops REST in every process after one invalid request, with one first reporter', async () => {
    const sim = await startSim();
    const bot = uniqueBot('rest401');
    const firsts: boolean[] = [];
    const processes = await Promise.all(
      [0, 1, 2].map(() =>
        botProcess(sim, {
          bot,
          processes: 3,
          token: 'wrong-token',
          onTokenRejected: (first) => firsts.push(first),
        }),
      ),
    );
    const [channel] = await channels(sim, 'general', 1);
    await expect(
      processes[0]!.rest.post(Routes.channelMessages(channel!), { body: { content: 'a' } }),
    ).rejects.toThrow();
    // Every process learns it from the fleet's record (a watch: at most a moment later).
    await waitFor(() => processes.every((process) => process.limiter.tokenRejected), {
      description: 'every process to see the fleet-wide 401',
      timeoutMs: 30_000,
    });
    for (const process of processes.slice(1)) {
      await expect(
        process.limiter.makeRequest(`${sim.rest}/users/@me`, {
          method: 'GET',
          headers: { authorization: 'Bot wrong-token' },
        }),
      ).rejects.toMatchObject({ code: 'DISCLUSTER_ERR_TOKEN_REJECTED' });
    }
    expect(firsts).toEqual([true]);
    const state = await sim.state();
    expect((state['rest'] as { invalid: number }).invalid).toBe(1);
  });

  it('without NATS a process falls back to its share of the global limit, never to unlimited', async () => {
    const sim = await startSim({ 'rest-global-per-second': 50 });
    const ownNats = await startNatsServer();
    cleanup.add(() => ownNats.stop());
    const nc = await connectNats(ownNats.url, 'rest-fallback');
    cleanup.add(() => nc.close());
    const warnings: string[] = [];
    const limiter = await FleetRestLimiter.open(nc, {
      bot: uniqueBot('restlocal'),
      token: TOKEN,
      processes: 5,
      globalPerSecond: 50,
      requestTimeoutMs: 500,
      onWarn: (message) => warnings.push(message),
    });
    cleanup.add(() => limiter.close());
    await ownNats.stop();
    const rest = new REST({
      version: '10',
      api: sim.rest.replace(/\/v10$/, ''),
      makeRequest: limiter.makeRequest,
    }).setToken(TOKEN);
    const startedAt = performance.now();
    // 25 GETs at a local share of 10/s take at least 1.5 s (a lower bound: holds on any machine).
    await Promise.all(Array.from({ length: 25 }, () => rest.get(Routes.user('@me'))));
    expect(performance.now() - startedAt).toBeGreaterThan(1_500);
    expect(warnings.join('\n')).toMatch(/cannot be reached.*local share of 10 requests\/s/);
  });
});
