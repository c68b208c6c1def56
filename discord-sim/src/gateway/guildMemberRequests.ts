import { GatewayCloseCode } from '../closeCodes';
import type { GatewayConnection } from '../connection';
import type { Session } from '../session';
import { isSnowflake } from '../snowflake';
import type { GatewayContext } from './context';
import type { DispatchRouter } from './dispatchRouter';

/** Discord allows one "all members" request (empty query, limit 0) per guild per this interval. */
const GUILD_MEMBERS_ALL_INTERVAL_MS = 30_000;

/**
 * REQUEST_GUILD_MEMBERS (op 8): answered with one empty GUILD_MEMBERS_CHUNK, or RATE_LIMITED when an
 * "all members" request for the guild comes too soon after the last one.
 */
export class GuildMemberRequests {
  /** guild id → when its last "all members" request was answered. */
  private readonly lastAllMembersRequest = new Map<string, number>();

  public constructor(
    private readonly gateway: GatewayContext,
    private readonly router: DispatchRouter,
  ) {}

  public handle(connection: GatewayConnection, session: Session, data: unknown): void {
    const request = data as { guild_id?: unknown; query?: unknown; limit?: unknown; nonce?: unknown } | null;
    if (!request || typeof request !== 'object' || !isSnowflake(request.guild_id)) {
      return this.gateway.closeConnection(
        connection,
        GatewayCloseCode.UnknownOpcode,
        'Invalid REQUEST_GUILD_MEMBERS payload.',
      );
    }
    const guildId = request.guild_id;
    const nonce = typeof request.nonce === 'string' ? request.nonce.slice(0, 32) : undefined;
    if (request.query === '' && request.limit === 0) {
      const last = this.lastAllMembersRequest.get(guildId);
      const now = Date.now();
      if (last !== undefined && now - last < GUILD_MEMBERS_ALL_INTERVAL_MS) {
        const retryAfter = (GUILD_MEMBERS_ALL_INTERVAL_MS - (now - last)) / 1000;
        const meta = nonce === undefined ? { guild_id: guildId } : { guild_id: guildId, nonce };
        this.router.sendToSession(
          session,
          'RATE_LIMITED',
          JSON.stringify({ opcode: 8, retry_after: retryAfter, meta }),
        );
        return;
      }
      this.lastAllMembersRequest.set(guildId, now);
    }
    const chunk = {
      guild_id: guildId,
      members: [],
      chunk_index: 0,
      chunk_count: 1,
      not_found: [],
      ...(nonce === undefined ? {} : { nonce }),
    };
    this.router.sendToSession(session, 'GUILD_MEMBERS_CHUNK', JSON.stringify(chunk));
  }
}
