import { randomBytes } from 'node:crypto';
import { GatewayCloseCode } from '../closeCodes';
import type { GatewayConnection } from '../connection';
import type { IdentifyLimiter } from '../identifyLimiter';
import { hasUnknownIntentBits, PRIVILEGED_INTENTS } from '../intents';
import { GatewayOpcode } from '../opcodes';
import { Session } from '../session';
import type { SessionStartBudget } from '../sessionStartBudget';
import type { GatewayContext } from './context';
import type { DispatchRouter } from './dispatchRouter';
import type { ReadyStream } from './readyStream';

/**
 * How a connection gets a session: IDENTIFY starts one (token, intents, shard, identify concurrency and
 * the daily session-start budget checked, in Discord's order), RESUME takes an unended one over and
 * replays what it missed.
 */
export class IdentifyAndResume {
  public constructor(
    private readonly gateway: GatewayContext,
    private readonly budget: SessionStartBudget,
    private readonly identifyLimiter: IdentifyLimiter,
    private readonly router: DispatchRouter,
    private readonly readyStream: ReadyStream,
  ) {}

  /**
   * What IDENTIFY and RESUME check first, in Discord's order: no session yet on the connection, a
   * valid payload (parsed by the caller), the right token. Returns the payload, or null once the
   * connection is closed with the matching code.
   */
  private admit<T extends { token: string }>(
    connection: GatewayConnection,
    payload: T | null,
    op: 'IDENTIFY' | 'RESUME',
  ): T | null {
    const close = (code: number, reason: string): null => {
      this.gateway.closeConnection(connection, code, reason);
      return null;
    };
    if (connection.session) return close(GatewayCloseCode.AlreadyAuthenticated, 'Already authenticated.');
    if (!payload) return close(GatewayCloseCode.UnknownOpcode, `Invalid ${op} payload.`);
    if (payload.token !== this.gateway.options.token || this.budget.tokenReset)
      return close(GatewayCloseCode.AuthenticationFailed, 'Authentication failed.');
    return payload;
  }

  public identify(connection: GatewayConnection, data: unknown): void {
    const { options, guilds, counters, registry } = this.gateway;
    const close = (code: number, reason: string): void =>
      this.gateway.closeConnection(connection, code, reason);
    const identify = this.admit(connection, parseIdentify(data), 'IDENTIFY');
    if (!identify) return;
    if (hasUnknownIntentBits(identify.intents))
      return close(GatewayCloseCode.InvalidIntents, 'Invalid intent(s).');
    if ((identify.intents & PRIVILEGED_INTENTS & ~options.allowedPrivilegedIntents) !== 0) {
      return close(GatewayCloseCode.DisallowedIntents, 'Disallowed intent(s).');
    }
    const [shardId, shardCount] = identify.shard;
    if (
      shardCount < 1 ||
      shardId < 0 ||
      shardId >= shardCount ||
      shardCount % options.largeBotShardFactor !== 0
    ) {
      return close(GatewayCloseCode.InvalidShard, 'Invalid shard.');
    }
    if (guilds.guildsOfShard(shardId, shardCount).length > options.maxGuildsPerShard) {
      return close(GatewayCloseCode.ShardingRequired, 'Sharding required.');
    }
    if (!this.identifyLimiter.attempt(shardId, shardCount)) {
      this.gateway.log.warn(
        { shard: [shardId, shardCount], rateLimitKey: shardId % options.maxConcurrency },
        'IDENTIFY inside its rate-limit window: answered INVALID_SESSION(false)',
      );
      // Over the concurrency limit: Discord answers INVALID_SESSION(false) and the client retries.
      counters.invalidSessions++;
      connection.sendOp(GatewayOpcode.InvalidSession, false);
      return;
    }
    if (!this.budget.spend()) return this.resetToken();
    counters.identifies++;
    const session = new Session(
      randomBytes(16).toString('hex'),
      shardId,
      shardCount,
      identify.intents,
      options.replayBufferLimit,
    );
    registry.add(session);
    registry.attach(session, connection);
    this.readyStream.send(session);
  }

  public resume(connection: GatewayConnection, data: unknown): void {
    const { counters, registry } = this.gateway;
    const close = (code: number, reason: string): void =>
      this.gateway.closeConnection(connection, code, reason);
    const resume = this.admit(connection, parseResume(data), 'RESUME');
    if (!resume) return;
    const session = registry.find(resume.sessionId);
    if (!session || session.ended) {
      counters.invalidSessions++;
      connection.sendOp(GatewayOpcode.InvalidSession, false);
      return;
    }
    const plan = session.planReplay(resume.seq);
    if (plan.kind === 'seq-ahead') {
      registry.end(session);
      return close(GatewayCloseCode.InvalidSeq, 'Invalid seq.');
    }
    if (plan.kind === 'too-old') {
      registry.end(session);
      counters.invalidSessions++;
      connection.sendOp(GatewayOpcode.InvalidSession, false);
      return;
    }
    if (session.connection && session.connection !== connection) {
      // Resuming elsewhere takes the session over; Discord drops the old socket.
      counters.resumeWhileLive++;
      const previous = session.connection;
      registry.detach(session, previous);
      previous.session = null;
      this.gateway.closeConnection(previous, GatewayCloseCode.UnknownError, 'Session resumed elsewhere.');
    }
    registry.cancelExpiry(session);
    counters.resumes++;
    registry.attach(session, connection);
    for (const message of plan.messages) this.router.deliver(connection, message);
    this.router.deliver(connection, session.sequence('RESUMED', '{}'));
  }

  /** Spending a session start with none left: every session ends and the token stops working. */
  private resetToken(): void {
    this.gateway.log.warn(
      'session_start_limit exhausted: every session ends and the token stops working (Discord resets it)',
    );
    for (const connection of [...this.gateway.registry.connections])
      this.gateway.closeConnection(
        connection,
        GatewayCloseCode.AuthenticationFailed,
        'Authentication failed.',
      );
    this.gateway.registry.endAll();
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
