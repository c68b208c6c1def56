import type { Logger } from 'pino';
import { closeCodeEndsSession } from '../closeCodes';
import type { GatewayConnection } from '../connection';
import type { Session } from '../session';
import type { GatewayCounters } from './counters';

export interface DuplicateLiveSessionRecord {
  readonly at: number;
  readonly shard: readonly [id: number, count: number];
  readonly sessionIds: readonly string[];
}

/** Duplicate-session records kept; the oldest are dropped. */
const DUPLICATE_LOG_LIMIT = 1000;

/**
 * Who is connected and which sessions exist: the open connections, every unended session, the routing
 * sets dispatches go through, and the live sets that catch two sockets serving one shard at once.
 */
export class SessionRegistry {
  public readonly connections = new Set<GatewayConnection>();
  public readonly duplicateLog: DuplicateLiveSessionRecord[] = [];

  private readonly sessions = new Map<string, Session>();
  /** shardCount → shardId → every unended session of that shard (live or resumable). */
  private readonly routing = new Map<number, Array<Set<Session>>>();
  /** `${count}:${id}` → sessions with an open, authenticated socket. */
  private readonly live = new Map<string, Set<Session>>();

  public constructor(
    private readonly counters: GatewayCounters,
    private readonly sessionTimeoutMs: number,
    private readonly log: Logger,
  ) {}

  public get sessionCount(): number {
    return this.sessions.size;
  }

  public find(sessionId: string): Session | undefined {
    return this.sessions.get(sessionId);
  }

  /** shardCount → shardId → the sessions a dispatch for that shard goes to. */
  public get routes(): ReadonlyMap<number, ReadonlyArray<ReadonlySet<Session>>> {
    return this.routing;
  }

  /** A new session: known by id, and routed to from now on. */
  public add(session: Session): void {
    this.sessions.set(session.id, session);
    this.routingSet(session.shardCount, session.shardId).add(session);
  }

  /** Gives `session` the socket `connection`; a second live socket on one shard is counted and logged. */
  public attach(session: Session, connection: GatewayConnection): void {
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
      if (this.duplicateLog.length > DUPLICATE_LOG_LIMIT) this.duplicateLog.shift();
    }
  }

  /** Takes the socket `connection` from `session` (if it is still the session's socket). */
  public detach(session: Session, connection: GatewayConnection): void {
    if (session.connection !== connection) return;
    session.connection = null;
    const liveOfShard = this.live.get(session.routingKey);
    liveOfShard?.delete(session);
    if (liveOfShard?.size === 0) this.live.delete(session.routingKey);
  }

  /** The socket of `session` closed with `code`: the session ends, or stays resumable until it expires. */
  public release(session: Session, connection: GatewayConnection, code: number): void {
    this.detach(session, connection);
    if (closeCodeEndsSession(code)) this.end(session);
    else this.scheduleExpiry(session);
  }

  /** Keeps a socket-less session resumable for the session timeout, then ends it. */
  public scheduleExpiry(session: Session): void {
    if (session.ended || session.expiryTimer) return;
    session.expiryTimer = setTimeout(() => this.end(session), this.sessionTimeoutMs);
  }

  /** A RESUME arrived in time: the session no longer expires. */
  public cancelExpiry(session: Session): void {
    if (session.expiryTimer) clearTimeout(session.expiryTimer);
    session.expiryTimer = null;
  }

  public end(session: Session): void {
    if (session.ended) return;
    session.ended = true;
    this.cancelExpiry(session);
    this.sessions.delete(session.id);
    const shards = this.routing.get(session.shardCount);
    shards?.[session.shardId]?.delete(session);
    if (shards?.every((set) => set.size === 0)) this.routing.delete(session.shardCount);
    if (session.connection) this.detach(session, session.connection);
  }

  public endAll(): void {
    for (const session of [...this.sessions.values()]) this.end(session);
  }

  /** Stops every expiry timer, so a shut-down simulator keeps nothing alive. */
  public clearTimers(): void {
    for (const session of this.sessions.values()) if (session.expiryTimer) clearTimeout(session.expiryTimer);
  }

  private routingSet(shardCount: number, shardId: number): Set<Session> {
    let shards = this.routing.get(shardCount);
    if (!shards)
      this.routing.set(shardCount, (shards = Array.from({ length: shardCount }, () => new Set<Session>())));
    return shards[shardId]!;
  }
}
