import { botUserObject } from '../botUser';
import { Intent } from '../intents';
import type { Session } from '../session';
import type { GatewayContext } from './context';
import type { DispatchRouter } from './dispatchRouter';

/**
 * Longest stretch of GUILD_CREATE streaming in one event-loop turn. The simulator is the referee of
 * identify timing: an IDENTIFY is stamped when its message is handled, so a long synchronous send
 * (hundreds of guilds through pako) would stamp the next shard's IDENTIFY late and report a rate
 * violation that never happened on the wire.
 */
const GUILD_CREATE_SLICE_MS = 4;

/** What a new session receives: READY, then one GUILD_CREATE per guild of its shard, time-sliced. */
export class ReadyStream {
  /** `joined_at` of the guilds the bot starts in. */
  private readonly startedAt = new Date().toISOString();

  public constructor(
    private readonly gateway: GatewayContext,
    private readonly router: DispatchRouter,
    private readonly resumeUrl: () => string,
  ) {}

  public send(session: Session): void {
    const { guilds, botUserId } = this.gateway;
    const guildIndices = guilds.guildsOfShard(session.shardId, session.shardCount);
    const ready = {
      v: 10,
      user: botUserObject(botUserId),
      guilds: guildIndices.map((index) => ({ id: guilds.id(index), unavailable: true })),
      session_id: session.id,
      session_type: 'normal',
      resume_gateway_url: this.resumeUrl(),
      shard: [session.shardId, session.shardCount],
      application: { id: botUserId, flags: 0 },
      private_channels: [],
      presences: [],
      relationships: [],
      guild_join_requests: [],
      user_settings: {},
      geo_ordered_rtc_regions: [],
    };
    this.router.sendToSession(session, 'READY', JSON.stringify(ready));
    if ((session.intents & Intent.Guilds) === 0) return;
    // Stream GUILD_CREATEs in short slices so a thousand shards identifying share the event loop.
    let next = 0;
    const sendBatch = (): void => {
      if (session.ended) return;
      const sendGuilds = (): void => {
        const sliceEnd = performance.now() + GUILD_CREATE_SLICE_MS;
        do {
          this.router.sendToSession(
            session,
            'GUILD_CREATE',
            JSON.stringify(guilds.guildCreate(guildIndices[next]!, botUserId, this.startedAt)),
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
}
