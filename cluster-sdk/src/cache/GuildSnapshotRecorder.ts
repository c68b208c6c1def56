import { describeError } from 'discluster-runtime';
import type { GuildSnapshotStore, RestoredSnapshot } from './GuildSnapshotStore.js';
import { ShardGuildModel } from './ShardGuildModel.js';

export interface GuildSnapshotRecorderOptions {
  readonly shardIds: readonly number[];
  /** Changed guilds are written at most this often (a READY's guild loading becomes a few batches). */
  readonly flushIntervalMs: number;
  readonly members: boolean;
  readonly onDebug: (message: string) => void;
  readonly onError: (error: Error) => void;
}

/** Puts in flight at once per flush: enough to hide round trips, few enough not to flood NATS. */
const CONCURRENT_WRITES = 32;

/**
 * Follows each shard's dispatches into a {@link ShardGuildModel} and writes what changed to the
 * {@link GuildSnapshotStore} on a timer, coalesced: a guild changed 100 times between flushes is
 * written once, and nothing is serialised on the dispatch path.
 */
export class GuildSnapshotRecorder {
  private readonly models = new Map<number, ShardGuildModel>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> | null = null;
  private closed = false;
  /** Bytes of the guild records written so far, and how many (for the README's measurements). */
  public bytesWritten = 0;
  public guildsWritten = 0;

  public constructor(
    private readonly store: GuildSnapshotStore,
    private readonly options: GuildSnapshotRecorderOptions,
  ) {
    for (const id of options.shardIds) this.models.set(id, new ShardGuildModel(options.members));
    this.timer = setInterval(() => void this.flush(), options.flushIntervalMs);
    this.timer.unref();
  }

  /** The dispatch path: one map lookup and one switch for events a snapshot ignores. */
  public observe(event: string, data: unknown, shardId: number): void {
    if (!this.closed) this.models.get(shardId)?.apply(event, data);
  }

  /** A restored snapshot is the shard's state: later events change it, nothing is rewritten. */
  public restore(shardId: number, snapshot: RestoredSnapshot): void {
    this.models
      .get(shardId)
      ?.restore(
        { user: snapshot.user, application: snapshot.application },
        snapshot.guilds,
        snapshot.unavailable,
      );
  }

  /** Writes every change so far; one flush at a time (a caller joins the running one, then runs its own). */
  public async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    this.flushing = this.writeChanges().finally(() => (this.flushing = null));
    await this.flushing;
  }

  /** Final flush (a graceful stop leaves the snapshot exactly as the shards saw it), then stops. */
  public async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
    this.closed = true;
  }

  private async writeChanges(): Promise<void> {
    for (const [shardId, model] of this.models) {
      if (model.dirty.size === 0 && !model.manifestDirty) continue;
      try {
        await this.writeShard(shardId, model);
      } catch (error) {
        this.options.onError(
          new Error(`guild snapshot of shard ${shardId} not written, will retry: ${describeError(error)}`),
        );
      }
    }
  }

  private async writeShard(shardId: number, model: ShardGuildModel): Promise<void> {
    const changed = [...model.dirty];
    model.dirty.clear();
    const manifestDirty = model.manifestDirty;
    model.manifestDirty = false;
    const reset = model.resetPending;
    model.resetPending = false;
    const gone: string[] = [];
    try {
      // Records first, then the manifest that lists them, then deletions of what it no longer lists.
      await inBatches(changed, async (id) => {
        const guild = model.guildForWrite(id);
        if (guild === null) return void gone.push(id);
        // Awaited first: `x += await` would read x before the await and lose concurrent additions.
        const bytes = await this.store.putGuildJson(shardId, id, guild.json);
        this.bytesWritten += bytes;
        this.guildsWritten++;
        model.written(id, guild.token, guild.json);
      });
      if ((manifestDirty || gone.length > 0) && model.identity) {
        await this.store.putManifest(shardId, {
          user: model.identity.user,
          application: model.identity.application,
          guilds: model.guildIds(),
          unavailable: model.unavailable(),
          updatedAt: Date.now(),
        });
      }
      if (reset) {
        const current = new Set(model.guildIds());
        for (const id of await this.store.storedGuildIds(shardId)) if (!current.has(id)) gone.push(id);
      }
      await inBatches(gone, (id) => this.store.deleteGuild(shardId, id));
      if (gone.length > 0)
        this.options.onDebug(`guild snapshot of shard ${shardId}: ${gone.length} record(s) removed`);
    } catch (error) {
      // Retried whole at the next flush with whatever is newest by then.
      for (const id of changed) model.dirty.add(id);
      model.manifestDirty ||= manifestDirty;
      model.resetPending ||= reset;
      throw error;
    }
  }
}

async function inBatches<T>(items: readonly T[], run: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += CONCURRENT_WRITES)
    await Promise.all(items.slice(i, i + CONCURRENT_WRITES).map(run));
}
