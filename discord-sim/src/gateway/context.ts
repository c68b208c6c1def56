import type { Logger } from 'pino';
import type { GatewayConnection } from '../connection';
import type { GuildStore } from '../guilds';
import type { DiscordSimOptions } from '../options';
import type { GatewayCounters } from './counters';
import type { SessionRegistry } from './sessionRegistry';

/** What the gateway's parts share; GatewaySimulator builds it once and hands it to each of them. */
export interface GatewayContext {
  readonly options: Readonly<DiscordSimOptions>;
  readonly log: Logger;
  readonly guilds: GuildStore;
  readonly botUserId: string;
  readonly counters: GatewayCounters;
  readonly registry: SessionRegistry;
  /** Closes from the server side: counted, logged, and the session ended or kept resumable per the code. */
  closeConnection(connection: GatewayConnection, code: number, reason: string): void;
}
