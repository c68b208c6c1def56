import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from './httpUtil';
import type { DiscordSimOptions } from './options';
import type { GatewaySimulator } from './simulator';

const API_PREFIX = /^\/api(?:\/v(\d+))?(\/.*)$/;

/** A fixed-window bucket with Discord's rate-limit headers. */
class RateLimitBucket {
  private windowStart = 0;
  private used = 0;

  public constructor(
    public readonly name: string,
    private readonly limit: number,
    private readonly periodMs: number,
  ) {}

  /** Takes one request; returns headers, and `retryAfterMs` when the bucket is empty. */
  public take(now = Date.now()): { headers: Record<string, string>; retryAfterMs: number | null } {
    if (now - this.windowStart >= this.periodMs) {
      this.windowStart = now;
      this.used = 0;
    }
    const resetAfterMs = this.windowStart + this.periodMs - now;
    const limited = this.used >= this.limit;
    if (!limited) this.used++;
    return {
      headers: {
        'x-ratelimit-limit': String(this.limit),
        'x-ratelimit-remaining': String(this.limit - this.used),
        'x-ratelimit-reset': ((this.windowStart + this.periodMs) / 1000).toFixed(3),
        'x-ratelimit-reset-after': (resetAfterMs / 1000).toFixed(3),
        'x-ratelimit-bucket': this.name,
      },
      retryAfterMs: limited ? resetAfterMs : null,
    };
  }
}

/**
 * The REST routes a shard manager needs (`/gateway`, `/gateway/bot`, `/users/@me`), with Bot auth,
 * Discord's rate-limit headers, a global limit and JSON errors in Discord's shape.
 */
export class RestApi {
  private readonly global: RateLimitBucket;
  private readonly gatewayBot: RateLimitBucket;
  public requests = 0;
  public rateLimited = 0;
  public unauthorized = 0;

  public constructor(
    private readonly options: Readonly<DiscordSimOptions>,
    private readonly simulator: GatewaySimulator,
    private readonly gatewayUrl: () => string,
  ) {
    this.global = new RateLimitBucket('global', options.restGlobalPerSecond, 1000);
    this.gatewayBot = new RateLimitBucket('gateway-bot', options.gatewayBotLimit, options.gatewayBotResetMs);
  }

  /** Handles `/api/...`; returns false for paths outside the API. */
  public handle(request: IncomingMessage, response: ServerResponse, pathname: string): boolean {
    const match = API_PREFIX.exec(pathname);
    if (!match) return false;
    this.requests++;
    const version = match[1] ?? '10';
    const route = match[2]!.replace(/\/+$/, '') || '/';
    if (version !== '10' && version !== '9') {
      sendJson(response, 400, { message: 'Invalid API version', code: 50041 });
      return true;
    }
    const authorized = this.isAuthorized(request);
    const global = this.global.take();
    if (global.retryAfterMs !== null) {
      this.rateLimited++;
      const retryAfter = global.retryAfterMs / 1000;
      sendJson(
        response,
        429,
        { message: 'You are being rate limited.', retry_after: retryAfter, global: true },
        {
          'retry-after': String(Math.ceil(retryAfter)),
          'x-ratelimit-global': 'true',
          'x-ratelimit-scope': 'global',
        },
      );
      return true;
    }
    if (request.method !== 'GET') {
      sendJson(response, 405, { message: '405: Method Not Allowed', code: 0 });
      return true;
    }
    switch (route) {
      case '/gateway':
        sendJson(response, 200, { url: this.gatewayUrl() });
        return true;
      case '/gateway/bot':
        if (!authorized) return this.unauthorizedResponse(response);
        return this.gatewayBotResponse(response);
      case '/users/@me':
        if (!authorized) return this.unauthorizedResponse(response);
        sendJson(response, 200, {
          id: this.simulator.botUserId,
          username: 'discord-sim',
          discriminator: '0',
          global_name: null,
          avatar: null,
          bot: true,
          flags: 0,
        });
        return true;
      default:
        sendJson(response, 404, { message: '404: Not Found', code: 0 });
        return true;
    }
  }

  private gatewayBotResponse(response: ServerResponse): true {
    const bucket = this.gatewayBot.take();
    if (bucket.retryAfterMs !== null) {
      this.rateLimited++;
      const retryAfter = bucket.retryAfterMs / 1000;
      sendJson(
        response,
        429,
        { message: 'You are being rate limited.', retry_after: retryAfter, global: false },
        {
          ...bucket.headers,
          'retry-after': String(Math.ceil(retryAfter)),
          'x-ratelimit-scope': 'user',
        },
      );
      return true;
    }
    const budget = this.simulator.budget;
    sendJson(
      response,
      200,
      {
        url: this.gatewayUrl(),
        shards: this.options.shards,
        session_start_limit: {
          total: budget.total,
          remaining: budget.remaining,
          reset_after: budget.resetAfterMs,
          max_concurrency: this.options.maxConcurrency,
        },
      },
      bucket.headers,
    );
    return true;
  }

  private isAuthorized(request: IncomingMessage): boolean {
    return request.headers.authorization === `Bot ${this.options.token}` && !this.simulator.budget.tokenReset;
  }

  private unauthorizedResponse(response: ServerResponse): true {
    this.unauthorized++;
    sendJson(response, 401, { message: '401: Unauthorized', code: 0 });
    return true;
  }
}
