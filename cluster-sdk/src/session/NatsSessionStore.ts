import { EventEmitter } from 'node:events';
import type { SessionInfo } from '@discordjs/ws';
import type { KV } from '@nats-io/kv';
import { nuid, type NatsConnection } from '@nats-io/transport-node';
import { DisclusterError, ErrorCode } from 'discluster-protocol/errors';
import { sessionBucket, sessionKey } from 'discluster-protocol/kv';
import {
  SessionRecordSchema,
  decodeRecord,
  encodeRecord,
  type SessionRecord,
} from 'discluster-protocol/schemas';
import { describeError, isCasConflict } from 'discluster-runtime';
import { openBucket } from 'discluster-runtime';
import { pick } from '../util/pick.js';
import {
  resolveNatsSessionStoreOptions,
  type NatsSessionStoreOptions,
  type ResolvedNatsSessionStoreOptions,
} from './options.js';

/** Events of {@link NatsSessionStore}. */
export interface NatsSessionStoreEvents {
  /** Diagnostics: failed reads and writes, ignored records. */
  debug: [message: string];
}

/** The two @discordjs/ws manager options a session store provides. */
export interface SessionStoreManagerOptions {
  retrieveSessionInfo(shardId: number): Promise<SessionInfo | null>;
  updateSessionInfo(shardId: number, info: SessionInfo | null): void;
}

/**
 * Gateway sessions (id, sequence, resume URL) kept in NATS KV so that a restarted or moved
 * cluster RESUMEs instead of spending an IDENTIFY.
 *
 * The hot path is memory: @discordjs/ws reads and updates the session on every dispatch, and
 * KV sees at most one write per changed shard per `flushIntervalMs`. A shard not in memory is
 * read from KV once (validated; an invalid record counts as "no session" and is reported as
 * debug). `null` deletes. Keys include the shard count.
 *
 * @example
 * ```ts
 * const store = await NatsSessionStore.create(nc, { shardCount });
 * const manager = new WebSocketManager({ ...store.managerOptions(), intents, rest });
 * // graceful shutdown, keeping sessions resumable:
 * await store.close(); // flushes; later updates (e.g. the null that destroy() sends) are ignored
 * await manager.destroy({ code: 4200 });
 * ```
 */
export class NatsSessionStore extends EventEmitter<NatsSessionStoreEvents> {
  /** Latest known session per shard; null = known to have none. */
  private readonly memory = new Map<number, SessionInfo | null>();
  /** KV key currently holding each shard's record, so a null deletes the right one. */
  private readonly storedKeys = new Map<number, string>();
  /**
   * Revision of each shard's record as this store last read or wrote it (0: known to be absent).
   * Every write is compare-and-set on it, so an owner whose shard moved on can never overwrite
   * (roll back) the record of the owner that took it over.
   */
  private readonly revisions = new Map<number, number>();
  /** Names this store in the records it writes (see SessionRecord.writer). */
  private readonly writer = nuid.next();
  private readonly dirty = new Set<number>();
  private readonly loading = new Map<number, Promise<SessionInfo | null>>();
  private readonly timer: NodeJS.Timeout;
  private flushChain: Promise<void> = Promise.resolve();
  private ticking = false;
  private closed = false;

  private constructor(
    /** Options after defaults and validation. */
    public readonly options: Readonly<ResolvedNatsSessionStoreOptions>,
    private readonly kv: KV,
  ) {
    super();
    this.timer = setInterval(() => this.tick(), options.flushIntervalMs);
    // Shutdown calls flush()/close(); the timer alone must not keep a process alive.
    this.timer.unref();
  }

  /** Validates options and creates (or binds to) the bot's session bucket. */
  public static async create(
    nc: NatsConnection,
    options: NatsSessionStoreOptions,
  ): Promise<NatsSessionStore> {
    const resolved = resolveNatsSessionStoreOptions(options);
    const { kv } = await openBucket(nc, {
      name: sessionBucket(resolved.bot),
      ttlMs: 0,
      storage: resolved.storage,
      replicas: resolved.replicas,
      timeoutMs: resolved.requestTimeoutMs,
      description: 'Discluster gateway sessions per shard count and shard (for RESUME)',
    });
    return new NatsSessionStore(resolved, kv);
  }

  /** `retrieveSessionInfo` / `updateSessionInfo` for `new WebSocketManager({ ... })`. */
  public managerOptions(): SessionStoreManagerOptions {
    return {
      retrieveSessionInfo: (shardId) => this.retrieveSessionInfo(shardId),
      updateSessionInfo: (shardId, info) => this.updateSessionInfo(shardId, info),
    };
  }

  /**
   * The shard's session if it is in memory (`undefined` if it must be read from KV). Synchronous,
   * for the per-dispatch path.
   */
  public cachedSessionInfo(shardId: number): SessionInfo | null | undefined {
    return this.memory.get(shardId);
  }

  /** The shard's session: from memory, else from KV (once). Never rejects; failures read as null. */
  public async retrieveSessionInfo(shardId: number): Promise<SessionInfo | null> {
    const cached = this.memory.get(shardId);
    if (cached !== undefined) return cached;
    if (!this.isOwnShard(shardId)) {
      this.debug(`retrieveSessionInfo(${shardId}): not a shard of count ${this.options.shardCount}`);
      return null;
    }
    if (this.closed) return null;
    let pending = this.loading.get(shardId);
    if (!pending) {
      pending = this.load(shardId);
      this.loading.set(shardId, pending);
      const done = (): void => void this.loading.delete(shardId);
      pending.then(done, done);
    }
    return pending;
  }

  /** Records the shard's session in memory; KV follows at the next flush. `null` deletes it. */
  public updateSessionInfo(shardId: number, info: SessionInfo | null): void {
    if (this.closed) {
      // After close() the store is frozen: e.g. WebSocketManager.destroy() sends null for every
      // shard, which must not delete sessions a successor is meant to resume.
      this.debug(`updateSessionInfo(${shardId}) ignored: the session store is closed`);
      return;
    }
    this.memory.set(shardId, info);
    this.dirty.add(shardId);
  }

  /**
   * Writes every changed session to KV now. Rejects with `DISCLUSTER_ERR_SESSION_FLUSH_FAILED` if
   * some writes failed; those stay queued for the next flush.
   */
  public flush(): Promise<void> {
    const run = this.flushChain.then(() => this.writeDirty());
    this.flushChain = run.catch(() => undefined);
    return run;
  }

  /** Flushes (best effort, failures reported as debug) and stops; later updates are ignored. */
  public async close(): Promise<void> {
    if (this.closed) return;
    // Frozen first, so nothing that arrives during the final flush can change what it writes.
    this.closed = true;
    clearInterval(this.timer);
    try {
      await this.flush();
    } catch (error) {
      this.debug(`Final session flush failed: ${describeError(error)}`);
    }
  }

  private isOwnShard(shardId: number): boolean {
    return Number.isSafeInteger(shardId) && shardId >= 0 && shardId < this.options.shardCount;
  }

  private async load(shardId: number): Promise<SessionInfo | null> {
    const key = sessionKey(this.options.shardCount, shardId);
    let entry;
    try {
      entry = await this.kv.get(key);
    } catch (error) {
      // Not cached: the next call tries KV again. Meanwhile the shard identifies (safe, costs budget).
      this.debug(`Could not read session ${key}: ${describeError(error)}`);
      return null;
    }
    // An update that arrived while we were reading is newer than KV.
    const raced = this.memory.get(shardId);
    if (raced !== undefined) return raced;
    this.revisions.set(shardId, entry?.revision ?? 0);
    let info: SessionInfo | null = null;
    if (entry !== null && entry.operation === 'PUT') {
      this.storedKeys.set(shardId, key);
      const decoded = decodeRecord(SessionRecordSchema, entry.value);
      if (!decoded.ok) this.debug(`Ignoring invalid session record ${key}: ${decoded.error}`);
      else if (decoded.value.shardId !== shardId || decoded.value.shardCount !== this.options.shardCount) {
        this.debug(
          `Ignoring session record ${key}: it is for shard ${decoded.value.shardId}/${decoded.value.shardCount}`,
        );
      } else info = toSessionInfo(decoded.value);
    }
    this.memory.set(shardId, info);
    return info;
  }

  private tick(): void {
    if (this.ticking || this.dirty.size === 0) return;
    this.ticking = true;
    this.flush()
      .catch((error: unknown) => this.debug(`Session flush failed, will retry: ${describeError(error)}`))
      .finally(() => {
        this.ticking = false;
      });
  }

  private async writeDirty(): Promise<void> {
    const shards = [...this.dirty];
    this.dirty.clear();
    const failures: unknown[] = [];
    await Promise.all(
      shards.map(async (shardId) => {
        try {
          await this.writeOne(shardId);
        } catch (error) {
          // Retried at the next flush with whatever is newest by then.
          this.dirty.add(shardId);
          failures.push(error);
        }
      }),
    );
    if (failures.length > 0) {
      throw new DisclusterError(
        ErrorCode.SessionFlushFailed,
        `${failures.length} of ${shards.length} session writes failed (first: ${describeError(failures[0])})`,
        { cause: failures[0] },
      );
    }
  }

  private async writeOne(shardId: number): Promise<void> {
    const info = this.memory.get(shardId) ?? null;
    const previousKey = this.storedKeys.get(shardId);
    if (info === null) {
      await this.compareAndSet(shardId, previousKey ?? sessionKey(this.options.shardCount, shardId), null);
      this.storedKeys.delete(shardId);
      return;
    }
    const record = toSessionRecord(info, this.writer);
    const checked = SessionRecordSchema.safeParse(record);
    if (!checked.success || info.shardId !== shardId) {
      // Retrying cannot fix it; drop it rather than write something no reader accepts.
      this.debug(
        `Not storing an invalid session for shard ${shardId}: ${checked.error?.message ?? 'shard id mismatch'}`,
      );
      return;
    }
    const key = sessionKey(info.shardCount, shardId);
    if (previousKey !== undefined && previousKey !== key) {
      // Same shard id under another shard count (resharded in place): the old record is obsolete,
      // and the new key's revision is not the old one's.
      await this.kv.delete(previousKey);
      this.revisions.delete(shardId);
    }
    if (await this.compareAndSet(shardId, key, record)) this.storedKeys.set(shardId, key);
  }

  /**
   * Writes (or, with null, deletes) the shard's record only if it is still at the revision this store
   * last saw. True when written; false when another writer has changed it since (the shard was taken
   * over): the write is dropped, never retried over the newer record.
   */
  private async compareAndSet(shardId: number, key: string, record: SessionRecord | null): Promise<boolean> {
    // Unknown (the read at connect failed): take the record as it is now as the one to replace.
    const known = this.revisions.get(shardId) ?? (await this.kv.get(key))?.revision ?? 0;
    for (let attempt = 0; attempt < 2; attempt++) {
      const revision = attempt === 0 ? known : await this.ownLostWrite(key);
      if (revision === null) break;
      try {
        if (record === null) {
          if (revision > 0) await this.kv.delete(key, { previousSeq: revision });
          this.revisions.set(shardId, 0);
        } else {
          const written =
            revision === 0
              ? await this.kv.create(key, encodeRecord(record))
              : await this.kv.update(key, encodeRecord(record), revision);
          this.revisions.set(shardId, written);
        }
        return true;
      } catch (error) {
        if (!isCasConflict(error)) throw error;
      }
    }
    // The revision stays the one this store last saw: its later writes of this shard fail the same
    // way, so a revoked owner never overwrites (or deletes) the new owner's record.
    this.debug(
      `Session of shard ${shardId} not stored: another process has written ${key} since (the shard moved on); its record is kept`,
    );
    return false;
  }

  /**
   * After a conflict: the record's revision if the newest write is this store's own (its reply was
   * lost in a reconnect), else null (another writer).
   */
  private async ownLostWrite(key: string): Promise<number | null> {
    const entry = await this.kv.get(key);
    if (entry === null || entry.operation !== 'PUT') return null;
    const decoded = decodeRecord(SessionRecordSchema, entry.value);
    return decoded.ok && decoded.value.writer === this.writer ? entry.revision : null;
  }

  private debug(message: string): void {
    this.emit('debug', message);
  }
}

/** What a session record and @discordjs/ws's SessionInfo share. */
const SESSION_FIELDS = ['sessionId', 'sequence', 'shardId', 'shardCount', 'resumeURL'] as const;

function toSessionRecord(info: SessionInfo, writer: string): SessionRecord {
  return { v: 1, writer, ...pick(info, SESSION_FIELDS), updatedAt: Date.now() };
}

function toSessionInfo(record: SessionRecord): SessionInfo {
  return pick(record, SESSION_FIELDS);
}
