type Json = Record<string, unknown>;

/** One guild as the shard's events left it; channels, roles and members keyed for cheap updates. */
interface CachedGuild {
  base: Json;
  readonly channels: Map<string, Json>;
  roles: Map<string, Json>;
  readonly members: Map<string, Json> | null;
}

/**
 * A guild held as the JSON text last written to the store: a few bytes per character instead of
 * an object graph several times larger. Expanded back into a {@link CachedGuild} by the first
 * event that changes it (rare: channel and role edits), and when restored.
 */
type StoredGuild = string;

/** What a snapshot needs from READY: the user and application a library builds its client from. */
export interface SnapshotIdentity {
  readonly user: Json & { id: string; username: string };
  readonly application: (Json & { id: string }) | null;
}

/** Fields of GUILD_CREATE a snapshot never keeps: volatile, and not updated by the events followed here. */
const DROPPED = ['presences', 'voice_states', 'threads', 'stage_instances'] as const;

/**
 * The guild state of one shard, built from its dispatches (READY, GUILD_*, CHANNEL_*,
 * GUILD_ROLE_*, and GUILD_MEMBER_* when members are kept). `apply` runs on the dispatch path: it
 * ignores every other event after one switch and never serialises; it only marks what changed,
 * and the recorder writes that later.
 */
export class ShardGuildModel {
  public identity: SnapshotIdentity | null = null;
  private readonly guilds = new Map<string, CachedGuild | StoredGuild>();
  private readonly unavailableIds = new Set<string>();
  /** Guilds to write (still present) or delete (gone) at the next flush. */
  public readonly dirty = new Set<string>();
  /** The guild list or identity changed: the manifest must be written. */
  public manifestDirty = false;
  /** A new session started: guild records of earlier sessions no longer listed should go. */
  public resetPending = false;

  public constructor(private readonly keepMembers: boolean) {}

  public apply(event: string, data: unknown): void {
    const d = data as Json;
    switch (event) {
      case 'READY':
        return this.ready(d);
      case 'GUILD_CREATE':
        return d['unavailable'] === true ? this.markUnavailable(String(d['id'])) : this.create(d);
      case 'GUILD_UPDATE':
        return this.update(d);
      case 'GUILD_DELETE':
        return this.remove(String(d['id']), d['unavailable'] === true);
      case 'CHANNEL_CREATE':
      case 'CHANNEL_UPDATE':
        return this.change(d['guild_id'], (guild) => guild.channels.set(String(d['id']), withoutGuildId(d)));
      case 'CHANNEL_DELETE':
        return this.change(d['guild_id'], (guild) => guild.channels.delete(String(d['id'])));
      case 'GUILD_ROLE_CREATE':
      case 'GUILD_ROLE_UPDATE': {
        const role = d['role'] as Json | undefined;
        if (role) this.change(d['guild_id'], (guild) => guild.roles.set(String(role['id']), role));
        return;
      }
      case 'GUILD_ROLE_DELETE':
        return this.change(d['guild_id'], (guild) => guild.roles.delete(String(d['role_id'])));
      case 'GUILD_MEMBER_ADD':
      case 'GUILD_MEMBER_UPDATE':
        if (!this.keepMembers) return;
        return this.change(d['guild_id'], (guild) => guild.members?.set(memberId(d), withoutGuildId(d)));
      case 'GUILD_MEMBER_REMOVE':
        if (!this.keepMembers) return;
        return this.change(d['guild_id'], (guild) => guild.members?.delete(memberId(d)));
      default:
        return;
    }
  }

  /** Takes a loaded snapshot as the current state, without marking anything to write back. */
  public restore(identity: SnapshotIdentity, guilds: readonly Json[], unavailable: readonly string[]): void {
    this.identity = identity;
    this.guilds.clear();
    this.unavailableIds.clear();
    // Held as text from the start: the snapshot is what the store has.
    for (const guild of guilds) this.guilds.set(String(guild['id']), JSON.stringify(guild));
    for (const id of unavailable) this.unavailableIds.add(id);
  }

  /**
   * The guild to write and a token for {@link written}, or null when the shard no longer has it.
   * `json` is the GUILD_CREATE payload as text.
   */
  public guildForWrite(id: string): { json: string; token: CachedGuild | StoredGuild } | null {
    const entry = this.guilds.get(id);
    if (entry === undefined) return null;
    return { json: typeof entry === 'string' ? entry : JSON.stringify(this.payloadOf(entry)), token: entry };
  }

  /**
   * The guild's text reached the store: unless an event changed the guild meanwhile, it is held as
   * that text from now on.
   */
  public written(id: string, token: CachedGuild | StoredGuild, json: string): void {
    if (this.guilds.get(id) === token && !this.dirty.has(id)) this.guilds.set(id, json);
  }

  public guildIds(): string[] {
    return [...this.guilds.keys()];
  }

  public unavailable(): string[] {
    return [...this.unavailableIds];
  }

  /** The guild as a GUILD_CREATE payload, or null when the shard no longer has it. */
  public guildPayload(id: string): Json | null {
    const guild = this.guilds.get(id);
    if (guild === undefined) return null;
    return typeof guild === 'string' ? (JSON.parse(guild) as Json) : this.payloadOf(guild);
  }

  private payloadOf(guild: CachedGuild): Json {
    const payload: Json = {
      ...guild.base,
      channels: [...guild.channels.values()],
      roles: [...guild.roles.values()],
    };
    if (guild.members) payload['members'] = [...guild.members.values()];
    return payload;
  }

  /** The guild as objects to edit (expanded from its text if it is held so), or undefined. */
  private editable(id: string): CachedGuild | undefined {
    const entry = this.guilds.get(id);
    if (typeof entry !== 'string') return entry;
    const expanded = this.toCached(JSON.parse(entry) as Json);
    this.guilds.set(id, expanded);
    return expanded;
  }

  private ready(d: Json): void {
    const user = d['user'] as SnapshotIdentity['user'] | undefined;
    if (!user) return;
    this.identity = { user, application: (d['application'] as SnapshotIdentity['application']) ?? null };
    this.guilds.clear();
    this.unavailableIds.clear();
    for (const guild of (d['guilds'] as Json[] | undefined) ?? [])
      this.unavailableIds.add(String(guild['id']));
    this.dirty.clear();
    this.manifestDirty = true;
    this.resetPending = true;
  }

  private create(d: Json): void {
    const id = String(d['id']);
    this.guilds.set(id, this.toCached(d));
    this.unavailableIds.delete(id);
    this.dirty.add(id);
    this.manifestDirty = true;
  }

  private update(d: Json): void {
    const guild = this.editable(String(d['id']));
    if (!guild) return;
    // GUILD_UPDATE carries the guild's fields and its full role list, not channels or members.
    const { roles, ...rest } = d;
    guild.base = { ...guild.base, ...strip(rest) };
    if (Array.isArray(roles)) guild.roles = byId(roles as Json[]);
    this.dirty.add(guild.base['id'] as string);
  }

  private remove(id: string, outage: boolean): void {
    const had = this.guilds.delete(id);
    // An outage keeps the guild the shard's: a library lists it unavailable until it returns.
    if (outage) this.unavailableIds.add(id);
    else this.unavailableIds.delete(id);
    if (had) this.dirty.add(id);
    this.manifestDirty = true;
  }

  private markUnavailable(id: string): void {
    this.unavailableIds.add(id);
    this.manifestDirty = true;
  }

  private change(guildId: unknown, edit: (guild: CachedGuild) => unknown): void {
    const guild = typeof guildId === 'string' ? this.editable(guildId) : undefined;
    if (!guild) return;
    edit(guild);
    this.dirty.add(guildId as string);
  }

  private toCached(d: Json): CachedGuild {
    const { channels, roles, members, ...rest } = d;
    return {
      base: strip(rest),
      channels: byId(Array.isArray(channels) ? (channels as Json[]).map(withoutGuildId) : []),
      roles: byId(Array.isArray(roles) ? (roles as Json[]) : []),
      members: this.keepMembers ? membersById(Array.isArray(members) ? (members as Json[]) : []) : null,
    };
  }
}

function strip(d: Json): Json {
  const copy = { ...d };
  for (const key of DROPPED) delete copy[key];
  return copy;
}

function byId(items: readonly Json[]): Map<string, Json> {
  return new Map(items.map((item) => [String(item['id']), item]));
}

function membersById(items: readonly Json[]): Map<string, Json> {
  return new Map(items.map((item) => [memberId(item), item]));
}

function memberId(member: Json): string {
  return String((member['user'] as Json | undefined)?.['id']);
}

/** Channel events carry `guild_id`; GUILD_CREATE's channels do not: stored as GUILD_CREATE has them. */
function withoutGuildId(d: Json): Json {
  if (!('guild_id' in d)) return d;
  const { guild_id: _guildId, ...rest } = d;
  return rest;
}
