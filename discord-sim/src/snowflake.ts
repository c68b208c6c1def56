/** Discord's epoch (2015-01-01T00:00:00.000Z): snowflake timestamps count from here. */
export const DISCORD_EPOCH = 1_420_070_400_000;

/**
 * Builds a snowflake string from its parts. Ids stay strings on the wire, as Discord sends them,
 * and are built with BigInt because they do not fit a double.
 */
export function makeSnowflake(
  timestampMs: number,
  worker: number,
  processId: number,
  increment: number,
): string {
  const ts = BigInt(timestampMs - DISCORD_EPOCH);
  return (
    (ts << 22n) |
    (BigInt(worker & 0x1f) << 17n) |
    (BigInt(processId & 0x1f) << 12n) |
    BigInt(increment & 0xfff)
  ).toString();
}

/** `(guild_id >> 22) % num_shards`, Discord's routing formula. Throws on a malformed id. */
export function shardForGuild(guildId: string, shardCount: number): number {
  return Number((BigInt(guildId) >> 22n) % BigInt(shardCount));
}

/** True for strings that are well-formed snowflakes (decimal digits, fits 64 bits). */
export function isSnowflake(value: unknown): value is string {
  if (typeof value !== 'string' || !/^\d{1,20}$/.test(value)) return false;
  return BigInt(value) < 1n << 64n;
}

/** Hands out unique, increasing snowflakes for generated messages and sessions. */
export class SnowflakeGenerator {
  private lastTimestamp = 0;
  private increment = 0;

  public constructor(private readonly worker = 1) {}

  public next(): string {
    let now = Date.now();
    if (now <= this.lastTimestamp) {
      if (++this.increment > 0xfff) {
        // 4096 ids in one millisecond: borrow the next millisecond rather than repeat an id.
        this.increment = 0;
        this.lastTimestamp += 1;
      }
      now = this.lastTimestamp;
    } else {
      this.increment = 0;
      this.lastTimestamp = now;
    }
    return makeSnowflake(now, this.worker, 0, this.increment);
  }
}
