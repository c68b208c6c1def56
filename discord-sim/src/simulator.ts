import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { GatewayCloseCode } from './closeCodes';
import { createFrameEncoder, zstdAvailable, type TransportCompression } from './compression';
import { clientIp } from './httpUtil';
import { GatewayConnection, type ConnectionHost } from './connection';
import type { GatewayContext } from './gateway/context';
import { countClose, createGatewayCounters, type GatewayCounters } from './gateway/counters';
import { DispatchRouter } from './gateway/dispatchRouter';
import { GuildMemberRequests } from './gateway/guildMemberRequests';
import { IdentifyAndResume } from './gateway/identifyAndResume';
import { LoopLateness } from './gateway/loopLateness';
import { ReadyStream } from './gateway/readyStream';
import { SessionRegistry, type DuplicateLiveSessionRecord } from './gateway/sessionRegistry';
import { ShardControls, type ShardSelector } from './gateway/shardControls';
import { gatewaySnapshot } from './gateway/stateSnapshot';
import { GuildStore } from './guilds';
import { IdentifyLimiter } from './identifyLimiter';
import { GatewayOpcode } from './opcodes';
import type { DiscordSimOptions } from './options';
import { SessionStartBudget } from './sessionStartBudget';
import { makeSnowflake, DISCORD_EPOCH } from './snowflake';

export type { DuplicateLiveSessionRecord } from './gateway/sessionRegistry';
export type { ShardSelector } from './gateway/shardControls';

/** Gateway versions accepted in the `v` query parameter. */
const SUPPORTED_VERSIONS = new Set(['9', '10']);
// A refused client gets this long to answer the close frame, so shutdown never waits on it.
const REFUSED_SOCKET_GRACE_MS = 1000;

/**
 * The gateway's rules, shared by every connection: sessions, identify concurrency, the daily
 * session-start budget, routing by `(guild_id >> 22) % num_shards`, and the counters tests read.
 *
 * This class accepts sockets and closes them; the rules live in ./gateway/ (sessionRegistry,
 * identifyAndResume, readyStream, dispatchRouter, guildMemberRequests, shardControls, stateSnapshot).
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
  public readonly counters: GatewayCounters = createGatewayCounters();
  public readonly duplicateLog: DuplicateLiveSessionRecord[];

  private readonly registry: SessionRegistry;
  private readonly gateway: GatewayContext;
  private readonly router: DispatchRouter;
  private readonly identifyAndResume: IdentifyAndResume;
  private readonly memberRequests: GuildMemberRequests;
  private readonly shardControls: ShardControls;
  private readonly loopLateness = new LoopLateness();

  public constructor(
    private readonly options: Readonly<DiscordSimOptions>,
    resumeUrl: () => string,
    private readonly log: Logger,
  ) {
    this.guilds = new GuildStore(options.guilds, options.seed);
    this.budget = new SessionStartBudget(options.sessionStartTotal, options.sessionStartRemaining);
    this.identifyLimiter = new IdentifyLimiter(
      options.maxConcurrency,
      options.identifyWindowMs,
      undefined,
      () => this.loopLateness.readLatenessMs(),
    );
    this.heartbeatIntervalMs = options.heartbeatIntervalMs;
    this.heartbeatToleranceMs = options.heartbeatToleranceMs;
    this.maxPayloadBytes = options.maxPayloadBytes;
    this.splitCompressedFrames = options.splitCompressedFrames;
    this.registry = new SessionRegistry(this.counters, options.sessionTimeoutMs, log);
    this.duplicateLog = this.registry.duplicateLog;
    this.gateway = {
      options,
      log,
      guilds: this.guilds,
      botUserId: this.botUserId,
      counters: this.counters,
      registry: this.registry,
      closeConnection: (connection, code, reason) => this.closeConnection(connection, code, reason),
    };
    this.router = new DispatchRouter(this.gateway);
    const readyStream = new ReadyStream(this.gateway, this.router, resumeUrl);
    this.identifyAndResume = new IdentifyAndResume(
      this.gateway,
      this.budget,
      this.identifyLimiter,
      this.router,
      readyStream,
    );
    this.memberRequests = new GuildMemberRequests(this.gateway, this.router);
    this.shardControls = new ShardControls(this.gateway);
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
      clientIp(request),
    );
    this.registry.connections.add(connection);
  }

  /** Closes a connection refused before HELLO; drops it if the client never answers the close. */
  private refuse(socket: WebSocket, code: number, reason: string): void {
    socket.close(code, reason);
    setTimeout(() => socket.terminate(), REFUSED_SOCKET_GRACE_MS).unref();
    countClose(this.counters, 'serverCloses', code);
  }

  public heartbeatAckEnabled(connection: GatewayConnection): boolean {
    return this.shardControls.heartbeatAckEnabled(connection);
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
    this.registry.connections.delete(connection);
    if (connection.serverCloseCode === null) countClose(this.counters, 'clientCloses', code);
    const session = connection.session;
    if (session) this.registry.release(session, connection, code);
  }

  public closeConnection(connection: GatewayConnection, code: number, reason: string): void {
    if (connection.serverCloseCode !== null) return;
    countClose(this.counters, 'serverCloses', code);
    this.log.debug(
      { connection: connection.id, shard: connection.session?.routingKey, code, reason },
      'closing connection',
    );
    const session = connection.session;
    connection.close(code, reason);
    if (session) this.registry.release(session, connection, code);
  }

  // ---- what connections ask for ------------------------------------------------------------

  public onIdentify(connection: GatewayConnection, data: unknown): void {
    this.identifyAndResume.identify(connection, data);
  }

  public onResume(connection: GatewayConnection, data: unknown): void {
    this.identifyAndResume.resume(connection, data);
  }

  public onCommand(connection: GatewayConnection, op: number, data: unknown): void {
    if (op !== GatewayOpcode.RequestGuildMembers || !connection.session) return;
    this.memberRequests.handle(connection, connection.session, data);
  }

  // ---- events ------------------------------------------------------------------------------

  /**
   * Routes one event to every session whose shard the formula picks, for every shard count that has
   * sessions (old and new generations both receive it during a reshard). Guild-less events go to shard 0.
   */
  public dispatch(eventName: string, data: Record<string, unknown>, guildIndex?: number): number {
    return this.router.dispatch(eventName, data, guildIndex);
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

  // ---- admin actions -----------------------------------------------------------------------

  public setHeartbeatAcks(enabled: boolean, selector?: ShardSelector): number {
    return this.shardControls.setHeartbeatAcks(enabled, selector);
  }

  /** Connections with a session on the selected shard(s). */
  public selectConnections(selector: ShardSelector): GatewayConnection[] {
    return this.shardControls.selectConnections(selector);
  }

  public closeShards(selector: ShardSelector, code: number): number {
    return this.shardControls.closeShards(selector, code);
  }

  public terminateShards(selector: ShardSelector): number {
    return this.shardControls.terminateShards(selector);
  }

  public reconnectShards(selector: ShardSelector): number {
    return this.shardControls.reconnectShards(selector);
  }

  public requestHeartbeats(selector: ShardSelector): number {
    return this.shardControls.requestHeartbeats(selector);
  }

  /** Sends op 9. Resumable keeps the session (the client RESUMEs on the same socket); otherwise it ends. */
  public invalidateShards(selector: ShardSelector, resumable: boolean): number {
    return this.shardControls.invalidateShards(selector, resumable);
  }

  public snapshot(): Record<string, unknown> {
    return gatewaySnapshot(this.gateway, this.budget, this.identifyLimiter);
  }

  public shutdown(): void {
    this.loopLateness.stop();
    for (const connection of this.registry.connections) connection.terminate();
    this.registry.clearTimers();
  }
}
