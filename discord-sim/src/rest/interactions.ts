import { randomBytes } from 'node:crypto';
import { SnowflakeGenerator } from '../snowflake';

/** Discord: follow-ups work with the interaction token for 15 minutes. */
export const INTERACTION_TOKEN_MS = 15 * 60_000;

export interface StoredInteraction {
  readonly id: string;
  readonly token: string;
  readonly applicationId: string;
  readonly channelId: string | null;
  readonly guildId: string | null;
  readonly createdAt: number;
  /** The callback type once the callback route accepted one. */
  callbackType: number | null;
  /** The message the callback created (types 4 and 5), the one `@original` edits. */
  originalMessageId: string | null;
  followUps: number;
}

/**
 * Interactions handed to bots through INTERACTION_CREATE: the id/token pair the callback route accepts
 * once, and the token the follow-up webhooks use. Entries leave after the token's 15 minutes.
 */
export class InteractionStore {
  private readonly byId = new Map<string, StoredInteraction>();
  private readonly byToken = new Map<string, StoredInteraction>();
  private readonly ids = new SnowflakeGenerator(6);

  public constructor(private readonly limit: number) {}

  public nextId(): string {
    return this.ids.next();
  }

  /** A token shaped like Discord's: long, URL-safe, unguessable. */
  public nextToken(): string {
    return `aW50ZXJhY3Rpb24${randomBytes(48).toString('base64url')}`;
  }

  public register(
    fields: Pick<StoredInteraction, 'id' | 'token' | 'applicationId' | 'channelId' | 'guildId'>,
  ): StoredInteraction {
    this.prune();
    const interaction: StoredInteraction = {
      ...fields,
      createdAt: Date.now(),
      callbackType: null,
      originalMessageId: null,
      followUps: 0,
    };
    // A test may dispatch the same id twice: the newer token replaces the older one.
    const previous = this.byId.get(interaction.id);
    if (previous) this.byToken.delete(previous.token);
    this.byId.set(interaction.id, interaction);
    this.byToken.set(interaction.token, interaction);
    return interaction;
  }

  public get(id: string): StoredInteraction | undefined {
    const interaction = this.byId.get(id);
    return interaction && !expired(interaction) ? interaction : undefined;
  }

  public getByToken(token: string): StoredInteraction | undefined {
    const interaction = this.byToken.get(token);
    return interaction && !expired(interaction) ? interaction : undefined;
  }

  public list(): StoredInteraction[] {
    return [...this.byId.values()];
  }

  /** Insertion order is creation order: drop expired entries from the front, and any past the cap. */
  private prune(): void {
    for (const interaction of this.byId.values()) {
      if (!expired(interaction) && this.byId.size < this.limit) break;
      this.byId.delete(interaction.id);
      this.byToken.delete(interaction.token);
    }
  }
}

function expired(interaction: StoredInteraction): boolean {
  return Date.now() - interaction.createdAt > INTERACTION_TOKEN_MS;
}
