import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  GuildSnapshotGuildSchema,
  GuildSnapshotManifestSchema,
  type GuildSnapshotManifest,
} from 'discluster-protocol/guildSnapshot';
import {
  guildSnapshotBucket,
  guildSnapshotGuildFilter,
  guildSnapshotGuildKey,
  guildSnapshotManifestKey,
} from 'discluster-protocol/kv';
import { decodeRecord, encodeRecord } from 'discluster-protocol/schemas';
import { describeError, openBucket } from 'discluster-runtime';

type Json = Record<string, unknown>;

/** A shard's snapshot as read back and validated: what the restored READY and GUILD_CREATEs carry. */
export interface RestoredSnapshot {
  readonly user: GuildSnapshotManifest['user'];
  readonly application: GuildSnapshotManifest['application'];
  readonly guilds: ReadonlyArray<Json & { id: string }>;
  readonly unavailable: readonly string[];
}

/** `none`: nothing stored for this shard count and shard; `corrupt`: stored but unusable (why). */
export type SnapshotLoad =
  | { readonly kind: 'ok'; readonly snapshot: RestoredSnapshot }
  | { readonly kind: 'none' }
  | { readonly kind: 'corrupt'; readonly reason: string };

export interface GuildSnapshotStoreOptions {
  readonly bot: string;
  readonly shardCount: number;
  readonly replicas: number;
  readonly timeoutMs: number;
}

/**
 * The `guilds` KV bucket: per shard a manifest and one record per guild (keys in
 * discluster-protocol's kv.ts). Writes are plain puts: only a shard's owner writes its keys, and
 * the manifest is written after the guild records it lists, so a listed guild always has one.
 */
export class GuildSnapshotStore {
  private constructor(
    private readonly kv: KV,
    private readonly shardCount: number,
  ) {}

  public static async create(
    nc: NatsConnection,
    options: GuildSnapshotStoreOptions,
  ): Promise<GuildSnapshotStore> {
    const { kv } = await openBucket(nc, {
      name: guildSnapshotBucket(options.bot),
      ttlMs: 0,
      replicas: options.replicas,
      timeoutMs: options.timeoutMs,
      description: 'Discluster guild snapshots per shard count and shard (caches across a RESUME)',
    });
    return new GuildSnapshotStore(kv, options.shardCount);
  }

  public async putGuild(shardId: number, guild: Json): Promise<number> {
    return this.putGuildJson(shardId, String(guild['id']), JSON.stringify(guild));
  }

  /** Writes a guild given as its GUILD_CREATE JSON text (what the recorder holds); returns the bytes. */
  public async putGuildJson(shardId: number, guildId: string, guildJson: string): Promise<number> {
    // The record's JSON with the guild's text spliced in: the guild is not serialised twice.
    const head = encodeRecord({ v: 1, shardId, shardCount: this.shardCount });
    const value = `${head.slice(0, -1)},"guild":${guildJson}}`;
    await this.kv.put(guildSnapshotGuildKey(this.shardCount, shardId, guildId), value);
    return Buffer.byteLength(value);
  }

  public async deleteGuild(shardId: number, guildId: string): Promise<void> {
    await this.kv.purge(guildSnapshotGuildKey(this.shardCount, shardId, guildId));
  }

  public async putManifest(
    shardId: number,
    manifest: Omit<GuildSnapshotManifest, 'v' | 'shardId' | 'shardCount'>,
  ): Promise<void> {
    const record: GuildSnapshotManifest = { v: 1, shardId, shardCount: this.shardCount, ...manifest };
    await this.kv.put(guildSnapshotManifestKey(this.shardCount, shardId), encodeRecord(record));
  }

  /** Guild ids with a record for the shard (after a new session: find the stale ones). */
  public async storedGuildIds(shardId: number): Promise<string[]> {
    const prefix = guildSnapshotGuildFilter(this.shardCount, shardId).slice(0, -1);
    const ids: string[] = [];
    for await (const key of await this.kv.keys(guildSnapshotGuildFilter(this.shardCount, shardId)))
      ids.push(key.slice(prefix.length));
    return ids;
  }

  /**
   * Reads and validates the shard's snapshot. Never rejects: a failed read or an invalid record is
   * `corrupt` (a partial cache would look complete to a library, so all or nothing).
   */
  public async load(shardId: number): Promise<SnapshotLoad> {
    try {
      return await this.loadOrThrow(shardId);
    } catch (error) {
      return { kind: 'corrupt', reason: `read failed: ${describeError(error)}` };
    }
  }

  private async loadOrThrow(shardId: number): Promise<SnapshotLoad> {
    const manifestKey = guildSnapshotManifestKey(this.shardCount, shardId);
    const entry = await this.kv.get(manifestKey);
    if (entry === null || entry.operation !== 'PUT') return { kind: 'none' };
    const manifest = decodeRecord(GuildSnapshotManifestSchema, entry.value);
    if (!manifest.ok) return { kind: 'corrupt', reason: `${manifestKey}: ${manifest.error}` };
    if (manifest.value.shardId !== shardId || manifest.value.shardCount !== this.shardCount)
      return {
        kind: 'corrupt',
        reason: `${manifestKey} names shard ${manifest.value.shardId}/${manifest.value.shardCount}`,
      };
    const wanted = new Set(manifest.value.guilds);
    const found = new Map<string, Json & { id: string }>();
    // One ordered consumer streams every guild record of the shard: no request per guild.
    const records = await this.kv.history({ key: guildSnapshotGuildFilter(this.shardCount, shardId) });
    for await (const record of records) {
      if (record.operation !== 'PUT') continue;
      const guildId = record.key.slice(record.key.lastIndexOf('.') + 1);
      if (!wanted.has(guildId)) continue; // stale: written before the manifest dropped it
      const decoded = decodeRecord(GuildSnapshotGuildSchema, record.value);
      if (!decoded.ok) return { kind: 'corrupt', reason: `${record.key}: ${decoded.error}` };
      const { guild } = decoded.value;
      if (
        guild.id !== guildId ||
        decoded.value.shardId !== shardId ||
        decoded.value.shardCount !== this.shardCount
      )
        return {
          kind: 'corrupt',
          reason: `${record.key} holds guild ${guild.id} of shard ${decoded.value.shardId}/${decoded.value.shardCount}`,
        };
      found.set(guildId, guild);
    }
    const missing = manifest.value.guilds.filter((id) => !found.has(id));
    if (missing.length > 0)
      return {
        kind: 'corrupt',
        reason: `${missing.length} listed guild record(s) missing (first ${missing[0]})`,
      };
    return {
      kind: 'ok',
      snapshot: {
        user: manifest.value.user,
        application: manifest.value.application,
        guilds: manifest.value.guilds.map((id) => found.get(id)!),
        unavailable: manifest.value.unavailable,
      },
    };
  }
}
