import type { ShardState } from 'discluster-protocol/shardStates';

/** What one shard is doing: one of discluster-protocol's `SHARD_STATES`. */
export type { ShardState };

/** A shard's state and counters, as reported to CONTROL and to pm2. */
export interface ShardStatus {
  readonly id: number;
  readonly state: ShardState;
  /** Last heartbeat round trip in ms, or -1 before the first ACK. */
  readonly ping: number;
  readonly guilds: number;
  readonly events: number;
  /** Why the shard waits, while `state` is `waiting`. */
  readonly waitingReason: string | null;
  /** Last close code seen, or null. */
  readonly lastCloseCode: number | null;
  /** Guilds of the READY payload not received yet (0 once the shard has them all). */
  readonly loadingGuilds: number;
}

interface MutableShardStatus {
  state: ShardState;
  ping: number;
  guilds: Set<string>;
  /** Guilds READY listed that have not arrived as GUILD_CREATE yet. */
  loading: Set<string>;
  events: number;
  waitingReason: string | null;
  lastCloseCode: number | null;
}

/**
 * Tracks every shard of a cluster from gateway events. The dispatch path only bumps a counter and
 * looks at the event name, so tracking costs next to nothing per event.
 */
export class ShardStatusTracker {
  private readonly shards = new Map<number, MutableShardStatus>();

  public constructor(
    shardIds: readonly number[],
    private readonly onChange: (shardId: number, state: ShardState, previous: ShardState) => void,
  ) {
    for (const id of shardIds) {
      this.shards.set(id, {
        state: 'idle',
        ping: -1,
        guilds: new Set(),
        loading: new Set(),
        events: 0,
        waitingReason: null,
        lastCloseCode: null,
      });
    }
  }

  public setState(shardId: number, state: ShardState, waitingReason: string | null = null): void {
    const shard = this.shards.get(shardId);
    if (!shard) return;
    shard.waitingReason = state === 'waiting' ? waitingReason : null;
    if (shard.state === state) return;
    const previous = shard.state;
    shard.state = state;
    this.onChange(shardId, state, previous);
  }

  public state(shardId: number): ShardState | undefined {
    return this.shards.get(shardId)?.state;
  }

  /**
   * The READY payload, seen before the shard is marked ready: @discordjs/ws emits its `ready`
   * event before the READY dispatch, and status read in a `ready` listener must count the guilds.
   */
  public onReady(shardId: number, data: unknown): void {
    const shard = this.shards.get(shardId);
    if (!shard) return;
    const guilds = (data as { guilds?: Array<{ id: string }> }).guilds ?? [];
    shard.guilds = new Set(guilds.map((guild) => guild.id));
    shard.loading = new Set(shard.guilds);
  }

  /**
   * Called for every dispatch: counts it and follows the guild list. Returns true for the shard's
   * own session setup (READY, and the GUILD_CREATE of a guild READY listed), false otherwise.
   */
  public onDispatch(shardId: number, eventName: string, data: unknown): boolean {
    const shard = this.shards.get(shardId);
    if (!shard) return false;
    shard.events++;
    switch (eventName) {
      case 'READY':
        this.onReady(shardId, data);
        return true;
      case 'GUILD_CREATE': {
        const id = (data as { id: string }).id;
        shard.guilds.add(id);
        return shard.loading.delete(id);
      }
      case 'GUILD_DELETE': {
        const deleted = data as { id: string; unavailable?: boolean };
        // `unavailable: true` is an outage; the guild is still ours.
        if (deleted.unavailable !== true) shard.guilds.delete(deleted.id);
        return false;
      }
      default:
        return false;
    }
  }

  /**
   * A resumed shard's guilds restored from its snapshot (Discord sends none on RESUME). Joined with
   * what its replayed events already added.
   */
  public restoreGuilds(shardId: number, guildIds: Iterable<string>): void {
    const shard = this.shards.get(shardId);
    if (!shard) return;
    for (const id of guildIds) shard.guilds.add(id);
  }

  /** Guilds READY listed that have not arrived yet. */
  public loadingGuilds(shardId: number): number {
    return this.shards.get(shardId)?.loading.size ?? 0;
  }

  public onHeartbeat(shardId: number, latency: number): void {
    const shard = this.shards.get(shardId);
    if (shard) shard.ping = latency;
  }

  public onClosed(shardId: number, code: number): void {
    const shard = this.shards.get(shardId);
    if (!shard) return;
    shard.lastCloseCode = code;
  }

  public allInState(state: ShardState): boolean {
    for (const shard of this.shards.values()) if (shard.state !== state) return false;
    return this.shards.size > 0;
  }

  public snapshot(): ShardStatus[] {
    return [...this.shards.entries()].map(([id, shard]) => ({
      id,
      state: shard.state,
      ping: shard.ping,
      guilds: shard.guilds.size,
      events: shard.events,
      waitingReason: shard.waitingReason,
      lastCloseCode: shard.lastCloseCode,
      loadingGuilds: shard.loading.size,
    }));
  }
}
