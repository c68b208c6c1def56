import type { GatewayConnection } from '../connection';
import { Intent, intentForEvent, MESSAGE_CONTENT_EVENTS } from '../intents';
import type { Session } from '../session';
import { isSnowflake, shardForGuild } from '../snowflake';
import type { GatewayContext } from './context';

/** A dispatch being routed: its serialised data, and a content-stripped twin made on demand. */
interface RoutedDispatch {
  readonly eventName: string;
  readonly dataJson: string;
  readonly strippedJson: () => string;
  readonly inGuild: boolean;
}

/**
 * Sends dispatches: routes an event to the sessions of the shard `(guild_id >> 22) % num_shards` picks,
 * filtered by their intents, and sequences every dispatch into its session (for replay) on the way out.
 */
export class DispatchRouter {
  public constructor(private readonly gateway: GatewayContext) {}

  /**
   * Routes one event to every session whose shard the formula picks, for every shard count that has
   * sessions (old and new generations both receive it during a reshard). Guild-less events go to shard 0.
   */
  public dispatch(eventName: string, data: Record<string, unknown>, guildIndex?: number): number {
    this.gateway.counters.dispatched++;
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
    for (const [shardCount, shards] of this.gateway.registry.routes) {
      const shardId =
        guildId === null
          ? 0
          : guildIndex !== undefined
            ? this.gateway.guilds.shardOf(guildIndex, shardCount)
            : shardForGuild(guildId, shardCount);
      const sessions = shards[shardId];
      if (!sessions) continue;
      for (const session of sessions) if (this.route(session, routed)) deliveredTo++;
    }
    return deliveredTo;
  }

  /** Sequences a dispatch into `session` and sends it if the session has a socket. */
  public sendToSession(session: Session, eventName: string, dataJson: string): void {
    const message = session.sequence(eventName, dataJson);
    if (session.connection) this.deliver(session.connection, message);
  }

  /** Sends an already sequenced message (a fresh dispatch or a RESUME replay). */
  public deliver(connection: GatewayConnection, message: string): void {
    this.gateway.counters.framesSent++;
    connection.sendRaw(message);
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
}

/** What a session without MESSAGE_CONTENT sees of a guild message. */
function stripMessageContent(data: Record<string, unknown>): Record<string, unknown> {
  return { ...data, content: '', embeds: [], attachments: [], components: [], poll: undefined };
}
