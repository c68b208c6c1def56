import type { IncomingMessage, ServerResponse } from 'node:http';
import { clientIp, sendJson } from '../httpUtil';
import type { DiscordSimOptions } from '../options';
import type { GatewaySimulator } from '../simulator';
import { isSnowflake } from '../snowflake';
import { RouteBuckets } from './buckets';
import { channelRoutes } from './channelRoutes';
import { commandRoutes } from './commandRoutes';
import { RestError, unauthorized } from './errors';
import { gatewayRoutes } from './gatewayRoutes';
import { GlobalLimit } from './globalLimit';
import { guildRoutes } from './guildRoutes';
import { interactionRoutes } from './interactionRoutes';
import { InteractionStore } from './interactions';
import { InvalidRequests } from './invalidRequests';
import { MessageStore } from './messages';
import { banned, globalLimited, routeLimited } from './rateLimitErrors';
import { readRestBody } from './requestBody';
import { matchRoute, type RouteDef } from './router';
import { World } from './world';

const API_PREFIX = /^\/api(?:\/v(\d+))?(\/.*)$/;

/** `GET /_sim/state`'s `rest` counters. */
export interface RestCounters {
  /** Every request under `/api`. */
  requests: number;
  /** 2xx answers. */
  ok: number;
  /** 429s from a bucket or the global limit (not the ban). */
  rateLimited: number;
  /** The global subset of `rateLimited`. */
  globalRateLimited: number;
  /** Requests counted toward the invalid request limit (401, 403, 429 other than scope `shared`). */
  invalid: number;
  /** Requests refused because their IP was banned. */
  banned: number;
  /** Bans started. */
  bans: number;
  /** 401 answers. */
  unauthorized: number;
  /** Requests under `/api` per client IP (IPv4-mapped IPv6 written as IPv4). */
  byClient: Record<string, number>;
}

interface Answer {
  status: number;
  body?: unknown;
  headers: Record<string, string>;
}

/**
 * Discord's REST for bots, in the order Discord applies its rules: the IP ban, the route (404/405),
 * the token (401), the global limit, the route's bucket, the body, then the route itself.
 */
export class RestApi {
  public readonly counters: RestCounters = {
    requests: 0,
    ok: 0,
    rateLimited: 0,
    globalRateLimited: 0,
    invalid: 0,
    banned: 0,
    bans: 0,
    unauthorized: 0,
    byClient: {},
  };
  public readonly messages: MessageStore;
  public readonly interactions: InteractionStore;
  private readonly world: World;
  private readonly routes: readonly RouteDef[];
  private readonly buckets = new RouteBuckets();
  private readonly global: GlobalLimit;
  private readonly invalidRequests: InvalidRequests;

  public constructor(
    private readonly options: Readonly<DiscordSimOptions>,
    private readonly simulator: GatewaySimulator,
    gatewayUrl: () => string,
    everywhereUsers: readonly string[],
  ) {
    this.global = new GlobalLimit(options.restGlobalPerSecond);
    this.invalidRequests = new InvalidRequests(options.invalidRequestLimit, options.banMs);
    this.messages = new MessageStore(options.restMessagesKept);
    this.interactions = new InteractionStore(options.restMessagesKept);
    this.world = new World(simulator.guilds, simulator.botUserId, everywhereUsers);
    const joinedAt = new Date().toISOString();
    this.routes = [
      ...gatewayRoutes(
        this.world,
        { url: gatewayUrl, bot: () => this.gatewayBot(gatewayUrl()) },
        { id: 'gateway-bot', limit: options.gatewayBotLimit, periodMs: options.gatewayBotResetMs },
      ),
      ...channelRoutes(this.world, this.messages),
      ...guildRoutes(this.world, joinedAt),
      ...interactionRoutes(this.world, this.messages, this.interactions, options.interactionResponseMs),
      ...commandRoutes(this.world),
    ];
  }

  /** Handles `/api/...`; returns false for paths outside the API. */
  public handle(request: IncomingMessage, response: ServerResponse, url: URL): boolean {
    const match = API_PREFIX.exec(url.pathname);
    if (!match) return false;
    this.counters.requests++;
    // Clients percent-encode '@' (`/users/%40me`, `/messages/%40original`): match both spellings.
    const path = match[2]!.replace(/\/+$/, '').replace(/%40/gi, '@') || '/';
    const ip = clientIp(request);
    this.counters.byClient[ip] = (this.counters.byClient[ip] ?? 0) + 1;
    this.answer(request, ip, match[1] ?? '10', path, url.searchParams)
      .catch((error: unknown) =>
        error instanceof RestError
          ? { status: error.status, body: error.body, headers: error.headers }
          : { status: 500, body: { message: '500: Internal Server Error', code: 0 }, headers: {} },
      )
      .then((answer) => this.send(response, ip, answer))
      .catch(() => response.destroy());
    return true;
  }

  /**
   * Registers what an admin-dispatched event mentions, and gives an INTERACTION_CREATE the id, token
   * and application id its callback and follow-ups use. Returns what the admin answer should carry.
   */
  public prepareDispatch(eventName: string, data: Record<string, unknown>): Record<string, unknown> {
    this.world.learn(data);
    if (eventName !== 'INTERACTION_CREATE') return {};
    if (!isSnowflake(data['id'])) data['id'] = this.interactions.nextId();
    if (typeof data['token'] !== 'string' || data['token'].length === 0)
      data['token'] = this.interactions.nextToken();
    data['application_id'] = this.simulator.botUserId;
    data['version'] ??= 1;
    const channel = data['channel'] as { id?: unknown } | undefined;
    const channelId = isSnowflake(data['channel_id']) ? data['channel_id'] : channel?.id;
    const interaction = this.interactions.register({
      id: data['id'] as string,
      token: data['token'] as string,
      applicationId: this.simulator.botUserId,
      channelId: isSnowflake(channelId) ? channelId : null,
      guildId: isSnowflake(data['guild_id']) ? data['guild_id'] : null,
    });
    return {
      interaction: {
        id: interaction.id,
        token: interaction.token,
        application_id: interaction.applicationId,
      },
    };
  }

  private async answer(
    request: IncomingMessage,
    ip: string,
    version: string,
    path: string,
    query: URLSearchParams,
  ): Promise<Answer> {
    const bannedForMs = this.invalidRequests.bannedFor(ip);
    if (bannedForMs !== null) {
      this.counters.banned++;
      throw banned(bannedForMs);
    }
    if (version !== '10' && version !== '9')
      throw new RestError(400, { message: 'Invalid API version', code: 50041 });
    const { route, params } = matchRoute(this.routes, request.method ?? 'GET', path);
    const authorized = this.isAuthorized(request);
    if (route.auth && !authorized) throw unauthorized();
    if (!route.interaction) {
      const global = this.global.take(authorized ? 'bot' : `ip:${ip}`);
      if (global.retryAfterMs !== null) {
        this.counters.globalRateLimited++;
        throw globalLimited(global.retryAfterMs);
      }
    }
    let headers: Record<string, string> = {};
    if (route.bucket) {
      const bucket = this.buckets.take(route.bucket, route.major(params));
      if (bucket.retryAfterMs !== null) throw routeLimited(bucket.retryAfterMs, bucket.headers);
      headers = bucket.headers;
    }
    try {
      const body = route.body ? await readRestBody(request) : undefined;
      const result = route.handle({ params, body, query });
      return { status: result.status, body: result.body, headers };
    } catch (error) {
      // Errors after the bucket was taken still carry its headers, as Discord's do.
      if (error instanceof RestError)
        throw new RestError(error.status, error.body, { ...headers, ...error.headers });
      throw error;
    }
  }

  private send(response: ServerResponse, ip: string, answer: Answer): void {
    const { status } = answer;
    if (status >= 200 && status < 300) this.counters.ok++;
    if (status === 401) this.counters.unauthorized++;
    const isBan = status === 429 && answer.headers['x-ratelimit-scope'] === undefined;
    if (status === 429 && !isBan) this.counters.rateLimited++;
    // Discord counts 401, 403 and 429 except scope "shared"; a ban's own answers do not extend it.
    const invalid =
      status === 401 ||
      status === 403 ||
      (status === 429 && !isBan && answer.headers['x-ratelimit-scope'] !== 'shared');
    if (invalid) {
      this.counters.invalid++;
      if (this.invalidRequests.record(ip)) this.counters.bans = this.invalidRequests.bans;
    }
    if (answer.body === undefined) {
      response.writeHead(status, answer.headers);
      response.end();
      return;
    }
    sendJson(response, status, answer.body, answer.headers);
  }

  private gatewayBot(url: string): Record<string, unknown> {
    const budget = this.simulator.budget;
    return {
      url,
      shards: this.options.shards,
      session_start_limit: {
        total: budget.total,
        remaining: budget.remaining,
        reset_after: budget.resetAfterMs,
        max_concurrency: this.options.maxConcurrency,
      },
    };
  }

  private isAuthorized(request: IncomingMessage): boolean {
    return request.headers.authorization === `Bot ${this.options.token}` && !this.simulator.budget.tokenReset;
  }
}
