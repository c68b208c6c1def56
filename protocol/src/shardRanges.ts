import { z } from 'zod';

/**
 * Shard ranges as an operator writes them (`pin_shards`: `0-127,256-300`) and as CONTROL announces
 * them to MASTER (`pinShards: [[0, 127], [256, 300]]`, both ends included).
 */

/** One inclusive range of shard ids: `[first, last]`. */
export type ShardRange = readonly [first: number, last: number];

/** The highest shard id a range may name (a reshard goes up to 1,000,000 shards). */
export const MAX_PIN_SHARD = 999_999;

/** At most this many ranges per host: enough for any real layout, small enough for a heartbeat. */
export const MAX_PIN_RANGES = 256;

const shard = z.number().int().nonnegative().max(MAX_PIN_SHARD);

/**
 * A host's pinned ranges on the wire: sorted, each `first <= last`, none overlapping another of the
 * same host (MASTER checks overlaps between hosts).
 */
export const ShardRangesSchema = z
  .array(z.tuple([shard, shard]))
  .min(1)
  .max(MAX_PIN_RANGES)
  .superRefine((ranges, ctx) => {
    const problem = rangesProblem(ranges);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** Why `ranges` is not a valid, sorted, non-overlapping list, or null. */
function rangesProblem(ranges: readonly ShardRange[]): string | null {
  let previous: ShardRange | undefined;
  for (const range of ranges) {
    if (range[0] > range[1]) return `range ${formatShardRanges([range])} ends before it starts`;
    if (previous && range[0] <= previous[1])
      return `ranges ${formatShardRanges([previous])} and ${formatShardRanges([range])} overlap or are out of order`;
    previous = range;
  }
  return null;
}

/**
 * Parses `0-127,256-300` (single shards as `7`; spaces allowed around commas and dashes) into
 * sorted ranges. Throws an `Error` whose message says what is wrong; overlapping ranges are an
 * error (a typo more often than intent), adjacent ones are merged.
 */
export function parseShardRanges(text: string): ShardRange[] {
  const parts = text.split(',').map((part) => part.trim());
  const ranges: [number, number][] = [];
  for (const [index, part] of parts.entries()) {
    const match = /^(\d{1,7})(?:\s*-\s*(\d{1,7}))?$/.exec(part);
    // Named by position, not quoted: a value pasted into the wrong key may be a secret.
    if (!match)
      throw new Error(
        `entry ${index + 1} is not a shard or a range like 0-127 (expected e.g. 0-127,256-300)`,
      );
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (first > last) throw new Error(`range ${part} ends before it starts`);
    if (last > MAX_PIN_SHARD) throw new Error(`shard ${last} is above ${MAX_PIN_SHARD}`);
    ranges.push([first, last]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const range of ranges) {
    const last = merged[merged.length - 1];
    if (last && range[0] <= last[1])
      throw new Error(`ranges ${formatShardRanges([last])} and ${formatShardRanges([range])} overlap`);
    if (last && range[0] === last[1] + 1) last[1] = range[1];
    else merged.push([range[0], range[1]]);
  }
  if (merged.length > MAX_PIN_RANGES) throw new Error(`more than ${MAX_PIN_RANGES} separate ranges`);
  return merged;
}

/** `[[0, 127], [256, 256]]` → `0-127,256`. */
export function formatShardRanges(ranges: readonly ShardRange[]): string {
  return ranges.map(([first, last]) => (first === last ? String(first) : `${first}-${last}`)).join(',');
}

/** How many shards `ranges` name. */
export function shardRangesSize(ranges: readonly ShardRange[]): number {
  return ranges.reduce((sum, [first, last]) => sum + last - first + 1, 0);
}

/** Every shard id of `ranges`, ascending. */
export function expandShardRanges(ranges: readonly ShardRange[]): number[] {
  const out: number[] = [];
  for (const [first, last] of ranges) for (let id = first; id <= last; id++) out.push(id);
  return out;
}

/**
 * The shard serving `guildId` among `shardCount` (Discord's formula: `(guild_id >> 22) % shards`).
 */
export function shardForGuild(guildId: string, shardCount: number): number {
  return Number((BigInt(guildId) >> 22n) % BigInt(shardCount));
}
