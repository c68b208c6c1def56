import type { IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { closeCodeEndsSession, GatewayCloseCode } from './closeCodes';
import { createFrameEncoder, zstdAvailable, type TransportCompression } from './compression';
import { GatewayConnection, type ConnectionHost } from './connection';
import { GuildStore } from './guilds';
import { IdentifyLimiter } from './identifyLimiter';
import {
  hasUnknownIntentBits,
  Intent,
  intentForEvent,
  MESSAGE_CONTENT_EVENTS,
  PRIVILEGED_INTENTS,
} from './intents';
import { GatewayOpcode } from './opcodes';
import type { DiscordSimOptions } from './options';
import { Session } from './session';
import { SessionStartBudget } from './sessionStartBudget';
import { isSnowflake, makeSnowflake, shardForGuild, DISCORD_EPOCH } from './snowflake';

/** Gateway versions accepted in the `v` query parameter. */
const SUPPORTED_VERSIONS = new Set(['9', '10']);
// A refused client gets this long to answer the close frame, so shutdown never waits on it.
const REFUSED_SOCKET_GRACE_MS = 1000;
/**
 * Longest stretch of GUILD_CREATE streaming in one event-loop turn. The simulator is the referee of
 * identify timing: an IDENTIFY is stamped when its message is handled, so a long synchronous send
 * (hundreds of guilds through pako) would stamp the next shard's IDENTIFY late and report a rate
 * violation that never happened on the wire.
 */
const GUILD_CREATE_SLICE_MS = 4;
const GUILD_MEMBERS_ALL_INTERVAL_MS = 30_000;

/** A dispatch the simulator routes: its serialised data, and a content-stripped twin made on demand. */
interface RoutedDispatch {
  readonly eventName: string;
  readonly dataJson: string;
  readonly strippedJson: () => string;
  readonly inGuild: boolean;
}

export interface DuplicateLiveSessionRecord {
  readonly at: number;
  readonly shard: readonly [id: number, count: number];
  readonly sessionIds: readonly string[];
}

/** Selects sessions for admin actions: a shard id (or every shard), optionally of one shard count. */
export interface ShardSelector {
  readonly shardId: number | 'all';
  readonly shardCount?: number | undefined;
}

/**
 * The gateway's rules, shared by every connection: sessions, identify concurrency, the daily
 * session-start budget, routing by `(guild_id >> 22) % num_shards`, and the counters tests read.
 */
export class GatewaySimulator implements ConnectionHost {
  public readonly guilds: GuildStore;
  public readonly botUserId = makeSnowflake(DISCORD_EPOCH + 50_000_000_000, 0, 0, 1);
  public readonly budget: SessionStartBudget;
  public readonly identifyLimiter: IdentifyLimiter;
  public readonly heartbeatIntervalMs: number;
  public readonly heartbeatToleranceMs: number;
  public readonly maxPayloadBytes: number;
  public readonly splitCompressedFrames: boolean;

  private readonly connections = new Set<GatewayConnection>();
  private readonly sessions = new Map<string, Session>();
  /** shardCount → shardId → every unended session of that shard (live or resumable). */
  private readonly routing = new Map<number, Array<Set<Session>>>();
  /** `${count}:${id}` → sessions with an open, authenticated socket. */
  private readonly live = new Map<string, Set<Session>>();
  private readonly lastMembersRequest = new Map<string, number>();
  private heartbeatAcks = true;
  private readonly startedAt = new Date().toISOString();

  public readonly counters = {
    identifies: 0,
    resumes: 0,
    dispatched: 0,
    framesSent: 0,
    connectionsOpened: 0,
    heartbeatsMissed: 0,
    invalidSessions: 0,
    sendRateViolations: 0,
    duplicateLiveSessions: 0,
    resumeWhileLive: 0,
    serverCloses: {} as Record<string, number>,
    clientCloses: {} as Record<string, number>,
  };
  public readonly duplicateLog: DuplicateLiveSessionRecord[] = [];

  public constructor(
    private readonly options: Readonly<DiscordSimOptions>,
    private readonly resumeUrl: () => string,
    private readonly log: Logger,
  ) {
    this.guilds = new GuildStore(options.guilds, options.seed);
    this.budget = new SessionStartBudget(options.sessionStartTotal, options.sessionStartRemaining);
    this.identifyLimiter = new IdentifyLimiter(options.maxConcurrency, options.identifyWindowMs);
    this.heartbeatIntervalMs = options.heartbeatIntervalMs;
    this.heartbeatToleranceMs = options.heartbeatToleranceMs;
    this.maxPayloadBytes = options.maxPayloadBytes;
    this.splitCompressedFrames = options.splitCompressedFrames;
  }

  // ---- connections -------------------------------------------------------------------------

  public accept(socket: WebSocket, request: IncomingMessage): void {
    const url = new URL(request.url ?? '/', 'ws://sim');
    const version = url.searchParams.get('v');
    const encoding = url.searchParams.get('encoding') ?? 'json';
    const compress = url.searchParams.get('compress');
    this.counters.connectionsOpened++;
    if (version !== null && !SUPPORTED_VERSIONS.has(version)) {
      return this.refuse(socket, GatewayCloseCode.InvalidAPIVersion, 'Invalid API version.');
    }
    if (encoding !== 'json') {
      return this.refuse(
        socket,
        GatewayCloseCode.DecodeError,
        `discord-sim speaks encoding=json only (got ${encoding.slice(0, 20)}).`,
      );
    }
    if (compress !== null && compress !== 'zlib-stream' && !(compress === 'zstd-stream' && zstdAvailable())) {
      return this.refuse(
        socket,
        GatewayCloseCode.DecodeError,
        `Unsupported compress=${compress.slice(0, 20)} on this simulator.`,
      );
    }
    const encoder = createFrameEncoder(compress as TransportCompression | null);
    // request.socket is the TCP socket ws writes to: corking it lets a burst go out in one write.
    const connection = new GatewayConnection(
      socket,
      encoder,
      this,
      this.options.sendLimit,
      this.options.sendWindowMs,
      url.pathname,
      request.socket,
    );
    this.connections.add(connection);
  }

  /** Closes a connection refused before HELLO; drops it if the client never answers the close. */
  private refuse(socket: WebSocket, code: number, reason: string): void {
    socket.close(code, reason);
    setTimeout(() => socket.terminate(), REFUSED_SOCKET_GRACE_MS).unref();
    this.countClose('serverCloses', code);
  }

  public heartbeatAckEnabled(connection: GatewayConnection): boolean {
    return connection.heartbeatAckOverride ?? this.heartbeatAcks;
  }

  public setHeartbeatAcks(enabled: boolean, selector?: ShardSelector): number {
    if (!selector) {
      this.heartbeatAcks = enabled;
      for (const connection of this.connections) connection.heartbeatAckOverride = null;
      return this.connections.size;
    }
    const targets = this.selectConnections(selector);
    for (const connection of targets) connection.heartbeatAckOverride = enabled;
    return targets.length;
  }

  public onSendRateExceeded(): void {
    this.counters.sendRateViolations++;
  }

  public onHeartbeatMissed(connection: GatewayConnection): void {
    this.counters.heartbeatsMissed++;
    // Discord forces a resume here: the socket goes, the session stays resumable.
    this.closeConnection(connection, GatewayCloseCode.UnknownError, 'Heartbeat not received in time.');
  }

  public onClosed(connection: GatewayConnection, code: number): void {
    this.connections.delete(connection);
    if (connection.serverCloseCode === null) this.countClose('clientCloses', code);
    const session = connection.session;
    if (!session) return;
    this.detach(session, connection);
    if (closeCodeEndsSession(code)) this.endSession(session);
    else this.scheduleExpiry(session);
  }

  // ---- identify and resume -----------------------------------------------------------------

  public onIdentify(connection: GatewayConnection, data: unknown): void {
    if (connection.session)
      return this.closeConnection(
        connection,
        GatewayCloseCode.AlreadyAuthenticated,
        'Already authenticated.',
      );
    const identify = parseIdentify(data);
    if (!identify)
      return this.closeConnection(connection, GatewayCloseCode.UnknownOpcode, 'Invalid IDENTIFY payload.');
    if (identify.token !== this.options.token || this.budget.tokenReset) {
      return this.closeConnection(
        connection,
        GatewayCloseCode.AuthenticationFailed,
        'Authentication failed.',
      );
    }
    if (hasUnknownIntentBits(identify.intents))
      return this.closeConnection(connection, GatewayCloseCode.InvalidIntents, 'Invalid intent(s).');
    if ((identify.intents & PRIVILEGED_INTENTS & ~this.options.allowedPrivilegedIntents) !== 0) {
      return this.closeConnection(connection, GatewayCloseCode.DisallowedIntents, 'Disallowed intent(s).');
    }
    const [shardId, shardCount] = identify.shard;
    if (
      shardCount < 1 ||
      shardId < 0 ||
      shardId >= shardCount ||
      shardCount % this.options.largeBotShardFactor !== 0
    ) {
      return this.closeConnection(connection, GatewayCloseCode.InvalidShard, 'Invalid shard.');
    }
    if (this.guilds.guildsOfShard(shardId, shardCount).length > this.options.maxGuildsPerShard) {
      return this.closeConnection(connection, GatewayCloseCode.ShardingRequired, 'Sharding required.');
    }
    if (!this.identifyLimiter.attempt(shardId, shardCount)) {
      this.log.warn(
        { shard: [shardId, shardCount], rateLimitKey: shardId % this.options.maxConcurrency },
        'IDENTIFY inside its rate-limit window: answered INVALID_SESSION(false)',
      );
      // Over the concurrency limit: Discord answers INVALID_SESSION(false) and the client retries.
      this.counters.invalidSessions++;
      connection.sendOp(GatewayOpcode.InvalidSession, false);
      return;
    }
    if (!this.budget.spend()) return this.resetToken();
    this.counters.identifies++;
    const session = new Session(
      randomBytes(16).toString('hex'),
      shardId,
      shardCount,
      identify.intents,
      this.options.replayBufferLimit,
    );
    this.sessions.set(session.id, session);
    this.routingSet(shardCount, shardId).add(session);
    this.attach(session, connection);
    this.sendReady(session);
  }

  public onResume(connection: GatewayConnection, data: unknown): void {
    if (connection.session)
      return this.closeConnection(
        connection,
        GatewayCloseCode.AlreadyAuthenticated,
        'Already authenticated.',
      );
    const resume = parseResume(data);
    if (!resume)
      return this.closeConnection(connection, GatewayCloseCode.UnknownOpcode, 'Invalid RESUME payload.');
    if (resume.token !== this.options.token || this.budget.tokenReset) {
      return this.closeConnection(
        connection,
        GatewayCloseCode.AuthenticationFailed,
        'Authentication failed.',
      );
    }
    const session = this.sessions.get(resume.sessionId);
    if (!session || session.ended) {
      this.counters.invalidSessions++;
      connection.sendOp(GatewayOpcode.InvalidSession, false);
      return;
    }
    const plan = session.planReplay(resume.seq);
    if (plan.kind === 'seq-ahead') {
      this.endSession(session);
      return this.closeConnection(connection, GatewayCloseCode.InvalidSeq, 'Invalid seq.');
    }
    if (plan.kind === 'too-old') {
      this.endSession(session);
      this.counters.invalidSessions++;
      connection.sendOp(GatewayOpcode.InvalidSession, false);
      return;
    }
    if (session.connection && session.connection !== connection) {
      // Resuming elsewhere takes the session over; Discord drops the old socket.
      this.counters.resumeWhileLive++;
      const previous = session.connection;
      this.detach(session, previous);
      previous.session = null;
      this.closeConnection(previous, GatewayCloseCode.UnknownError, 'Session resumed elsewhere.');
    }
    if (session.expiryTimer) clearTimeout(session.expiryTimer);
    session.expiryTimer = null;
    this.counters.resumes++;
    this.attach(session, connection);
    for (const message of plan.messages) this.deliver(connection, message);
    this.deliver(connection, session.sequence('RESUMED', '{}'));
  }

  public onCommand(connection: GatewayConnection, op: number, data: unknown): void {
    if (op !== GatewayOpcode.RequestGuildMembers || !connection.session) return;
    const request = data as { guild_id?: unknown; query?: unknown; limit?: unknown; nonce?: unknown } | null;
    if (!request || typeof request !== 'object' || !isSnowflake(request.guild_id)) {
      return this.closeConnection(
        connection,
        GatewayCloseCode.UnknownOpcode,
        'Invalid REQUEST_GUILD_MEMBERS payload.',
      );
    }
    const guildId = request.guild_id;
    const nonce = typeof request.nonce === 'string' ? request.nonce.slice(0, 32) : undefined;
    const session = connection.session;
    if (request.query === '' && request.limit === 0) {
      const last = this.lastMembersRequest.get(guildId);
      const now = Date.now();
      if (last !== undefined && now - last < GUILD_MEMBERS_ALL_INTERVAL_MS) {
        const retryAfter = (GUILD_MEMBERS_ALL_INTERVAL_MS - (now - last)) / 1000;
        const meta = nonce === undefined ? { guild_id: guildId } : { guild_id: guildId, nonce };
        this.sendToSession(
          session,
          'RATE_LIMITED',
          JSON.stringify({ opcode: 8, retry_after: retryAfter, meta }),
        );
        return;
      }
      this.lastMembersRequest.set(guildId, now);
    }
    const chunk = {
      guild_id: guildId,
      members: [],
      chunk_index: 0,
      chunk_count: 1,
      not_found: [],
      ...(nonce === undefined ? {} : { nonce }),
    };
    this.sendToSession(session, 'GUILD_MEMBERS_CHUNK', JSON.stringify(chunk));
  }

  // ---- dispatch routing --------------------------------------------------------------------

  /**
   * Routes one event to every session whose shard the formula picks, for every shard count that has
   * sessions (old and new generations both receive it during a reshard). Guild-less events go to shard 0.
   */
  public dispatch(eventName: string, data: Record<string, unknown>, guildIndex?: number): number {
    this.counters.dispatched++;
    const guildId =
      typeof data['guild_id'] === 'string' && isSnowflake(data['guild_id']) ? data['guild_id'] : null;
    const dataJson = JSON.stringify(data);
    let stripped: string | null = null;
    const routed: RoutedDispatch = {
      eventName,
      dataJson,
      inGuild: guildId !== null,
      strippedJson: () => (stripped ??= JSON.stringify(stripMessageContent(data))),
    };
    let deliveredTo = 0;
    for (const [shardCount, shards] of this.routing) {
      const shardId =
        guildId === null
          ? 0
          : guildIndex !== undefined
            ? this.guilds.shardOf(guildIndex, shardCount)
            : shardForGuild(guildId, shardCount);
      const sessions = shards[shardId];
      if (!sessions) continue;
      for (const session of sessions) if (this.route(session, routed)) deliveredTo++;
    }
    return deliveredTo;
  }

  private route(session: Session, dispatch: RoutedDispatch): boolean {
    const needed = intentForEvent(dispatch.eventName, dispatch.inGuild);
    if (needed !== 0 && (session.intents & needed) === 0) return false;
    const withoutContent =
      MESSAGE_CONTENT_EVENTS.has(dispatch.eventName) &&
      dispatch.inGuild &&
      (session.intents & Intent.MessageContent) === 0;
    this.sendToSession(
      session,
      dispatch.eventName,
      withoutContent ? dispatch.strippedJson() : dispatch.dataJson,
    );
    return true;
  }

  private sendToSession(session: Session, eventName: string, dataJson: string): void {
    const message = session.sequence(eventName, dataJson);
    if (session.connection) this.deliver(session.connection, message);
  }

  private deliver(connection: GatewayConnection, message: string): void {
    this.counters.framesSent++;
    connection.sendRaw(message);
  }

  private sendReady(session: Session): void {
    const guildIndices = this.guilds.guildsOfShard(session.shardId, session.shardCount);
    const ready = {
      v: 10,
      user: {
        id: this.botUserId,
        username: 'discord-sim',
        discriminator: '0',
        global_name: null,
        avatar: null,
        bot: true,
        flags: 0,
      },
      guilds: guildIndices.map((index) => ({ id: this.guilds.id(index), unavailable: true })),
      session_id: session.id,
      session_type: 'normal',
      resume_gateway_url: this.resumeUrl(),
      shard: [session.shardId, session.shardCount],
      application: { id: this.botUserId, flags: 0 },
      private_channels: [],
      presences: [],
      relationships: [],
      guild_join_requests: [],
      user_settings: {},
      geo_ordered_rtc_regions: [],
    };
    this.sendToSession(session, 'READY', JSON.stringify(ready));
    if ((session.intents & Intent.Guilds) === 0) return;
    // Stream GUILD_CREATEs in short slices so a thousand shards identifying share the event loop.
    let next = 0;
    const sendBatch = (): void => {
      if (session.ended) return;
      const sendGuilds = (): void => {
        const sliceEnd = performance.now() + GUILD_CREATE_SLICE_MS;
        do {
          this.sendToSession(
            session,
            'GUILD_CREATE',
            JSON.stringify(this.guilds.guildCreate(guildIndices[next]!, this.botUserId, this.startedAt)),
          );
          next++;
        } while (next < guildIndices.length && performance.now() < sliceEnd);
      };
      // One write per batch, not one per guild (a socket-less session still sequences them for replay).
      if (session.connection) session.connection.batch(sendGuilds);
      else sendGuilds();
      if (next < guildIndices.length) setImmediate(sendBatch);
    };
    sendBatch();
  }

  // ---- session bookkeeping -----------------------------------------------------------------

  private attach(session: Session, connection: GatewayConnection): void {
    session.connection = connection;
    connection.session = session;
    let liveOfShard = this.live.get(session.routingKey);
    if (!liveOfShard) this.live.set(session.routingKey, (liveOfShard = new Set()));
    liveOfShard.add(session);
    if (liveOfShard.size > 1) {
      this.counters.duplicateLiveSessions++;
      this.log.warn({ shard: [session.shardId, session.shardCount] }, 'two live sessions serve one shard');
      this.duplicateLog.push({
        at: Date.now(),
        shard: [session.shardId, session.shardCount],
        sessionIds: [...liveOfShard].map((s) => s.id),
      });
      if (this.duplicateLog.length > 1000) this.duplicateLog.shift();
    }
  }

  private detach(session: Session, connection: GatewayConnection): void {
    if (session.connection !== connection) return;
    session.connection = null;
    const liveOfShard = this.live.get(session.routingKey);
    liveOfShard?.delete(session);
    if (liveOfShard?.size === 0) this.live.delete(session.routingKey);
  }

  private scheduleExpiry(session: Session): void {
    if (session.ended || session.expiryTimer) return;
    session.expiryTimer = setTimeout(() => this.endSession(session), this.options.sessionTimeoutMs);
  }

  private endSession(session: Session): void {
    if (session.ended) return;
    session.ended = true;
    if (session.expiryTimer) clearTimeout(session.expiryTimer);
    session.expiryTimer = null;
    this.sessions.delete(session.id);
    const shards = this.routing.get(session.shardCount);
    shards?.[session.shardId]?.delete(session);
    if (shards?.every((set) => set.size === 0)) this.routing.delete(session.shardCount);
    if (session.connection) this.detach(session, session.connection);
  }

  private routingSet(shardCount: number, shardId: number): Set<Session> {
    let shards = this.routing.get(shardCount);
    if (!shards)
      this.routing.set(shardCount, (shards = Array.from({ length: shardCount }, () => new Set<Session>())));
    return shards[shardId]!;
  }

  /** Spending a session start with none left: every session ends and the token stops working. */
  private resetToken(): void {
    this.log.warn(
      'session_start_limit exhausted: every session ends and the token stops working (Discord resets it)',
    );
    for (const connection of [...this.connections])
      this.closeConnection(connection, GatewayCloseCode.AuthenticationFailed, 'Authentication failed.');
    for (const session of [...this.sessions.values()]) this.endSession(session);
  }

  public closeConnection(connection: GatewayConnection, code: number, reason: string): void {
    if (connection.serverCloseCode !== null) return;
    this.countClose('serverCloses', code);
    this.log.debug(
      { connection: connection.id, shard: connection.session?.routingKey, code, reason },
      'closing connection',
    );
    const session = connection.session;
    connection.close(code, reason);
    if (session) {
      this.detach(session, connection);
      if (closeCodeEndsSession(code)) this.endSession(session);
      else this.scheduleExpiry(session);
    }
  }

  private countClose(kind: 'serverCloses' | 'clientCloses', code: number): void {
    const key = String(code);
    this.counters[kind][key] = (this.counters[kind][key] ?? 0) + 1;
  }

  // ---- admin actions -----------------------------------------------------------------------

  /** Connections with a session on the selected shard(s). */
  public selectConnections(selector: ShardSelector): GatewayConnection[] {
    const selected: GatewayConnection[] = [];
    for (const connection of this.connections) {
      const session = connection.session;
      if (!session || !connection.isOpen) continue;
      if (selector.shardId !== 'all' && session.shardId !== selector.shardId) continue;
      if (selector.shardCount !== undefined && session.shardCount !== selector.shardCount) continue;
      selected.push(connection);
    }
    return selected;
  }

  public closeShards(selector: ShardSelector, code: number): number {
    const targets = this.selectConnections(selector);
    for (const connection of targets) this.closeConnection(connection, code, 'Closed by discord-sim admin.');
    return targets.length;
  }

  public terminateShards(selector: ShardSelector): number {
    const targets = this.selectConnections(selector);
    for (const connection of targets) {
      const session = connection.session;
      connection.terminate();
      if (session) {
        this.detach(session, connection);
        this.scheduleExpiry(session);
      }
    }
    return targets.length;
  }

  public reconnectShards(selector: ShardSelector): number {
    const targets = this.selectConnections(selector);
    for (const connection of targets) connection.requestReconnect(this.options.reconnectCloseAfterMs);
    return targets.length;
  }

  public requestHeartbeats(selector: ShardSelector): number {
    const targets = this.selectConnections(selector);
    for (const connection of targets) connection.sendOp(GatewayOpcode.Heartbeat, null);
    return targets.length;
  }

  /** Sends op 9. Resumable keeps the session (the client RESUMEs on the same socket); otherwise it ends. */
  public invalidateShards(selector: ShardSelector, resumable: boolean): number {
    const targets = this.selectConnections(selector);
    for (const connection of targets) {
      const session = connection.session!;
      this.counters.invalidSessions++;
      this.detach(session, connection);
      connection.session = null;
      if (resumable) this.scheduleExpiry(session);
      else this.endSession(session);
      connection.sendOp(GatewayOpcode.InvalidSession, resumable);
    }
    return targets.length;
  }

  /** The bot joined guilds: GUILD_CREATE to every session now serving them. */
  public addGuilds(count: number): number {
    const added = this.guilds.add(count);
    for (const index of added) {
      this.dispatch(
        'GUILD_CREATE',
        this.guilds.guildCreate(index, this.botUserId, new Date().toISOString()),
        index,
      );
    }
    return added.length;
  }

  public snapshot(): Record<string, unknown> {
    const liveSessions: Array<{ sessionId: string; shard: [number, number]; connectedFor: number }> = [];
    const now = Date.now();
    for (const connection of this.connections) {
      const session = connection.session;
      if (session && connection.isOpen)
        liveSessions.push({
          sessionId: session.id,
          shard: [session.shardId, session.shardCount],
          connectedFor: now - connection.openedAt,
        });
    }
    return {
      shardCount: this.options.shards,
      maxConcurrency: this.options.maxConcurrency,
      identifyWindowMs: this.options.identifyWindowMs,
      guilds: this.guilds.size,
      identifies: this.counters.identifies,
      resumes: this.counters.resumes,
      sessionStartTotal: this.budget.total,
      sessionStartRemaining: this.budget.remaining,
      tokenReset: this.budget.tokenReset,
      connections: this.connections.size,
      connectionsOpened: this.counters.connectionsOpened,
      sessions: this.sessions.size,
      liveSessions,
      violations: {
        identifyRate: this.identifyLimiter.violations,
        duplicateLiveSessions: this.counters.duplicateLiveSessions,
        sendRate: this.counters.sendRateViolations,
        resumeWhileLive: this.counters.resumeWhileLive,
      },
      dispatched: this.counters.dispatched,
      framesSent: this.counters.framesSent,
      invalidSessions: this.counters.invalidSessions,
      heartbeatsMissed: this.counters.heartbeatsMissed,
      serverCloses: this.counters.serverCloses,
      clientCloses: this.counters.clientCloses,
    };
  }

  public shutdown(): void {
    for (const connection of this.connections) connection.terminate();
    for (const session of this.sessions.values()) if (session.expiryTimer) clearTimeout(session.expiryTimer);
  }
}

interface IdentifyData {
  token: string;
  intents: number;
  shard: [number, number];
}

function parseIdentify(data: unknown): IdentifyData | null {
  if (typeof data !== 'object' || data === null) return null;
  const { token, intents, shard, properties } = data as Record<string, unknown>;
  if (typeof token !== 'string' || typeof intents !== 'number' || !Number.isInteger(intents)) return null;
  if (typeof properties !== 'object' || properties === null) return null;
  if (shard === undefined) return { token, intents, shard: [0, 1] };
  if (
    !Array.isArray(shard) ||
    shard.length !== 2 ||
    !shard.every((n) => typeof n === 'number' && Number.isInteger(n))
  )
    return null;
  return { token, intents, shard: [shard[0] as number, shard[1] as number] };
}

function parseResume(data: unknown): { token: string; sessionId: string; seq: number } | null {
  if (typeof data !== 'object' || data === null) return null;
  const { token, session_id: sessionId, seq } = data as Record<string, unknown>;
  if (typeof token !== 'string' || typeof sessionId !== 'string') return null;
  // A client that never saw a dispatch resumes with seq null; treat it as 0.
  if (seq !== null && (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0)) return null;
  return { token, sessionId, seq: seq ?? 0 };
}

/** What a session without MESSAGE_CONTENT sees of a guild message. */
function stripMessageContent(data: Record<string, unknown>): Record<string, unknown> {
  return { ...data, content: '', embeds: [], attachments: [], components: [], poll: undefined };
}
