import type { IncomingMessage, ServerResponse } from 'node:http';
import { isSendableCloseCode } from './closeCodes';
import { BodyError, readJsonBody, sendJson } from './httpUtil';
import type { GatewaySimulator, ShardSelector } from './simulator';
import { isSnowflake } from './snowflake';
import { CHANNEL_KINDS, type ChannelKind } from './guilds';
import type { TrafficGenerator } from './traffic';

/** What the admin API reads from and tells the REST side. */
export interface RestAdmin {
  prepareDispatch(eventName: string, data: Record<string, unknown>): Record<string, unknown>;
  readonly messages: {
    list(channelId?: string): ReadonlyArray<{
      id: string;
      channel_id: string;
      guild_id: string | null;
      content: string;
      nonce: string | number | null;
      message_reference: Record<string, unknown> | null;
      interaction_id: string | null;
      edited_timestamp: string | null;
      deleted: boolean;
    }>;
  };
  readonly interactions: {
    list(): ReadonlyArray<{
      id: string;
      channelId: string | null;
      guildId: string | null;
      createdAt: number;
      callbackType: number | null;
      originalMessageId: string | null;
      followUps: number;
    }>;
  };
}

export const ADMIN_PREFIX = '/_sim';
const EVENT_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;
const MAX_EVENTS_PER_SECOND = 1_000_000;
const MAX_TRAFFIC_SECONDS = 86_400;

class AdminError extends Error {
  public constructor(
    public readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The test-facing control surface under `/_sim`: state and counters, injected dispatches, traffic,
 * and the faults Discord can produce (closes, op 7, op 9, dropped sockets, missing ACKs).
 */
export class AdminApi {
  public constructor(
    private readonly simulator: GatewaySimulator,
    private readonly traffic: TrafficGenerator,
    private readonly rest: RestAdmin,
    private readonly extraState: () => Record<string, unknown>,
  ) {}

  public handle(request: IncomingMessage, response: ServerResponse, url: URL): boolean {
    if (url.pathname !== ADMIN_PREFIX && !url.pathname.startsWith(`${ADMIN_PREFIX}/`)) return false;
    const route = url.pathname.slice(ADMIN_PREFIX.length).replace(/\/+$/, '') || '/';
    this.route(request, route, url.searchParams)
      .then((result) => sendJson(response, result.status ?? 200, result.body))
      .catch((error: unknown) => {
        const status = error instanceof AdminError || error instanceof BodyError ? error.status : 500;
        sendJson(response, status, { error: error instanceof Error ? error.message : String(error) });
      });
    return true;
  }

  private async route(
    request: IncomingMessage,
    route: string,
    query: URLSearchParams,
  ): Promise<{ status?: number; body: unknown }> {
    const method = request.method ?? 'GET';
    if (method === 'GET') {
      if (route === '/state' || route === '/')
        return { body: { ...this.simulator.snapshot(), ...this.extraState() } };
      if (route === '/identifies') return { body: this.simulator.identifyLimiter.records() };
      if (route === '/duplicates') return { body: this.simulator.duplicateLog };
      if (route === '/traffic') return { body: this.traffic.list() };
      if (route === '/messages') return { body: this.messages(query.get('channel_id')) };
      if (route === '/interactions') return { body: this.interactions() };
      if (route === '/channels') return { body: this.channels(query) };
      const trafficMatch = /^\/traffic\/(\d+)$/.exec(route);
      if (trafficMatch) {
        const run = this.traffic.get(Number(trafficMatch[1]));
        if (!run) throw new AdminError(404, `no traffic run ${trafficMatch[1]}`);
        return { body: run };
      }
      throw new AdminError(404, `unknown admin route GET ${route}`);
    }
    if (method !== 'POST') throw new AdminError(405, `use GET or POST (got ${method})`);

    if (route === '/dispatch') return { body: this.dispatch(await readJsonBody(request)) };
    if (route === '/traffic') return { status: 202, body: this.startTraffic(await readJsonBody(request)) };
    if (route === '/heartbeat-ack') {
      const enabled = parseBoolean(query.get('enabled'), 'enabled');
      const shard = query.get('shard');
      const affected = this.simulator.setHeartbeatAcks(
        enabled,
        shard === null ? undefined : this.selector(shard, query),
      );
      return { body: { enabled, affected } };
    }
    if (route === '/session-start-limit') {
      const { remaining } = ((await readJsonBody(request)) ?? {}) as { remaining?: unknown };
      if (typeof remaining !== 'number' || !Number.isInteger(remaining) || remaining < 0) {
        throw new AdminError(400, '"remaining" must be a whole number ≥ 0');
      }
      this.simulator.budget.set(remaining);
      return { body: { remaining: this.simulator.budget.remaining } };
    }
    if (route === '/guilds') {
      const { add } = ((await readJsonBody(request)) ?? {}) as { add?: unknown };
      if (typeof add !== 'number' || !Number.isInteger(add) || add < 1 || add > 1_000_000) {
        throw new AdminError(400, '"add" must be a whole number from 1 to 1000000');
      }
      return { body: { added: this.simulator.addGuilds(add), guilds: this.simulator.guilds.size } };
    }
    const shardAction = /^\/shards\/([^/]+)\/(close|reconnect|invalidate|terminate|heartbeat)$/.exec(route);
    if (shardAction) {
      const selector = this.selector(shardAction[1]!, query);
      switch (shardAction[2]) {
        case 'close': {
          const code = Number(query.get('code') ?? '4000');
          if (!isSendableCloseCode(code))
            throw new AdminError(
              400,
              `"code" must be a WebSocket close code a server may send (got ${query.get('code')})`,
            );
          return { body: { closed: this.simulator.closeShards(selector, code), code } };
        }
        case 'reconnect':
          return { body: { reconnecting: this.simulator.reconnectShards(selector) } };
        case 'invalidate': {
          const resumable = parseBoolean(query.get('resumable') ?? 'false', 'resumable');
          return { body: { invalidated: this.simulator.invalidateShards(selector, resumable), resumable } };
        }
        case 'terminate':
          return { body: { terminated: this.simulator.terminateShards(selector) } };
        default:
          return { body: { requested: this.simulator.requestHeartbeats(selector) } };
      }
    }
    throw new AdminError(404, `unknown admin route POST ${route}`);
  }

  private selector(shard: string, query: URLSearchParams): ShardSelector {
    const shardCountText = query.get('shardCount');
    const shardCount = shardCountText === null ? undefined : Number(shardCountText);
    if (shardCount !== undefined && (!Number.isInteger(shardCount) || shardCount < 1)) {
      throw new AdminError(400, `"shardCount" must be a whole number ≥ 1 (got ${shardCountText})`);
    }
    if (shard === 'all') return { shardId: 'all', shardCount };
    const shardId = Number(shard);
    if (!/^\d+$/.test(shard) || !Number.isSafeInteger(shardId))
      throw new AdminError(400, `shard must be a shard id or "all" (got ${shard})`);
    return { shardId, shardCount };
  }

  /** What bots posted, oldest first; `channel_id` narrows it to one channel. */
  /** Generated text channels of one kind (`general` by default), for tests that post to many. */
  private channels(query: URLSearchParams): unknown[] {
    const kind = query.get('kind') ?? 'general';
    if (!(CHANNEL_KINDS as readonly string[]).includes(kind))
      throw new AdminError(
        400,
        `"kind" must be one of ${CHANNEL_KINDS.join(', ')} (got ${kind.slice(0, 40)})`,
      );
    const limitText = query.get('limit') ?? '100';
    const limit = Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
      throw new AdminError(
        400,
        `"limit" must be a whole number from 1 to 10000 (got ${limitText.slice(0, 40)})`,
      );
    const guilds = this.simulator.guilds;
    return Array.from({ length: Math.min(limit, guilds.size) }, (_, index) => ({
      id: guilds.channelId(index, kind as ChannelKind),
      guild_id: guilds.id(index),
      kind,
    }));
  }

  private messages(channelId: string | null): unknown[] {
    if (channelId !== null && !isSnowflake(channelId))
      throw new AdminError(400, `"channel_id" must be a snowflake (got ${String(channelId).slice(0, 40)})`);
    return this.rest.messages.list(channelId ?? undefined).map((m) => ({
      id: m.id,
      channel_id: m.channel_id,
      guild_id: m.guild_id,
      content: m.content,
      nonce: m.nonce,
      message_reference: m.message_reference,
      interaction_id: m.interaction_id,
      edited: m.edited_timestamp !== null,
      deleted: m.deleted,
    }));
  }

  private interactions(): unknown[] {
    return this.rest.interactions.list().map((i) => ({
      id: i.id,
      channel_id: i.channelId,
      guild_id: i.guildId,
      created_at: i.createdAt,
      callback_type: i.callbackType,
      original_message_id: i.originalMessageId,
      follow_ups: i.followUps,
    }));
  }

  private dispatch(body: unknown): { dispatched: true; sessions: number } & Record<string, unknown> {
    const { t, d } = (body ?? {}) as { t?: unknown; d?: unknown };
    if (typeof t !== 'string' || !EVENT_NAME.test(t))
      throw new AdminError(400, '"t" must be an event name such as MESSAGE_CREATE');
    if (['READY', 'RESUMED'].includes(t))
      throw new AdminError(400, `"${t}" is sent by the gateway itself and cannot be injected`);
    if (typeof d !== 'object' || d === null || Array.isArray(d))
      throw new AdminError(400, '"d" must be a JSON object');
    const guildId = (d as Record<string, unknown>)['guild_id'];
    if (guildId !== undefined && guildId !== null && !isSnowflake(guildId)) {
      throw new AdminError(400, '"d.guild_id" must be a snowflake string');
    }
    const data = d as Record<string, unknown>;
    // Before routing: an INTERACTION_CREATE gets its id/token here, so sessions see them.
    const extra = this.rest.prepareDispatch(t, data);
    return { dispatched: true, sessions: this.simulator.dispatch(t, data), ...extra };
  }

  private startTraffic(body: unknown): { id: number; total: number } {
    const { eventsPerSecond, seconds } = (body ?? {}) as { eventsPerSecond?: unknown; seconds?: unknown };
    if (
      typeof eventsPerSecond !== 'number' ||
      !(eventsPerSecond > 0) ||
      eventsPerSecond > MAX_EVENTS_PER_SECOND
    ) {
      throw new AdminError(
        400,
        `"eventsPerSecond" must be a number above 0 and at most ${MAX_EVENTS_PER_SECOND}`,
      );
    }
    if (typeof seconds !== 'number' || !(seconds > 0) || seconds > MAX_TRAFFIC_SECONDS) {
      throw new AdminError(400, `"seconds" must be a number above 0 and at most ${MAX_TRAFFIC_SECONDS}`);
    }
    const run = this.traffic.start(eventsPerSecond, seconds);
    return { id: run.id, total: run.total };
  }
}

function parseBoolean(value: string | null, name: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new AdminError(400, `"${name}" must be true or false (got ${String(value)})`);
}
