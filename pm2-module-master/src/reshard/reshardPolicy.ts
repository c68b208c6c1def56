import { DisclusterError, ErrorCode, type PlanRecord } from 'discluster-protocol';
import type { GatewayBot } from '../gatewayBot.js';

/**
 * Reshard policy (issue 7), pure: which shard count to move to, whether the day's session starts
 * can pay for it, when to reshard on its own, and how long the new generation needs.
 */

/** Discord requires large bots (max_concurrency above 1) to run a multiple of max_concurrency. */
export function shardCountStep(maxConcurrency: number): number {
  return Math.max(1, maxConcurrency);
}

function roundUp(value: number, step: number): number {
  return Math.ceil(value / step) * step;
}

export interface TargetInput {
  readonly current: number;
  /** `discluster reshard --shards N`; absent: chosen here. */
  readonly requested?: number | undefined;
  readonly gateway: GatewayBot;
  /** Guilds the fleet serves now (sum of shard reports), if known. */
  readonly guilds?: number | undefined;
  /** Guilds per shard to aim below (`reshard_guilds_per_shard`). */
  readonly guildsPerShard: number;
}

export type TargetResult =
  { readonly ok: true; readonly shardCount: number } | { readonly ok: false; readonly reason: string };

/**
 * The new shard count: the requested one (which must be a multiple of the step and differ from the
 * running count), or the largest of Discord's recommendation, enough shards for `guildsPerShard`,
 * and one step above the running count, rounded up to the step.
 */
export function chooseShardCount(input: TargetInput): TargetResult {
  const step = shardCountStep(input.gateway.session_start_limit.max_concurrency);
  if (input.requested !== undefined) {
    if (!Number.isSafeInteger(input.requested) || input.requested < 1)
      return { ok: false, reason: `--shards must be a positive integer, got ${input.requested}` };
    if (input.requested % step !== 0)
      return {
        ok: false,
        reason: `--shards ${input.requested} is not a multiple of max_concurrency ${step} (Discord requires it); try ${roundUp(input.requested, step)}`,
      };
    if (input.requested === input.current)
      return { ok: false, reason: `the fleet already runs ${input.current} shards` };
    return { ok: true, shardCount: input.requested };
  }
  const forGuilds = input.guilds !== undefined ? Math.ceil(input.guilds / input.guildsPerShard) : 0;
  const wanted = Math.max(input.gateway.shards, forGuilds, input.current + 1);
  return { ok: true, shardCount: roundUp(wanted, step) };
}

export interface BudgetInput {
  readonly shardCount: number;
  readonly remaining: number;
  readonly resetAfterMs: number;
  readonly floor: number;
}

/**
 * Every new shard identifies once: the reshard starts only if `remaining` stays at or above the
 * floor after paying for all of them. The reason says what would help.
 */
export function checkReshardBudget(input: BudgetInput): { ok: true } | { ok: false; reason: string } {
  const after = input.remaining - input.shardCount;
  if (after >= input.floor) return { ok: true };
  const hours = Math.floor(input.resetAfterMs / 3_600_000);
  const minutes = Math.ceil((input.resetAfterMs % 3_600_000) / 60_000);
  return {
    ok: false,
    reason:
      `session_start_limit.remaining is ${input.remaining}: ${input.shardCount} new shards would leave ${after}, ` +
      `below the floor ${input.floor} (reshard_budget_floor). Nothing changed. Retry after the daily reset ` +
      `(in ${hours}h ${minutes}m) or choose fewer shards.`,
  };
}

export interface AutoInput {
  readonly current: number;
  readonly gateway: GatewayBot;
  /** Most guilds any one shard reports. */
  readonly busiestShardGuilds: number;
  readonly guildsPerShard: number;
}

/** Why to reshard on its own, or null: Discord recommends more shards, or a shard is too full. */
export function autoReshardReason(input: AutoInput): string | null {
  const step = shardCountStep(input.gateway.session_start_limit.max_concurrency);
  if (roundUp(input.gateway.shards, step) > input.current)
    return `Discord recommends ${input.gateway.shards} shards; ${input.current} run`;
  if (input.busiestShardGuilds > input.guildsPerShard)
    return `a shard carries ${input.busiestShardGuilds} guilds, above reshard_guilds_per_shard ${input.guildsPerShard}`;
  return null;
}

/**
 * Time until `pending` more shards have identified: one bucket of `maxConcurrency` per window,
 * which is also the least a reshard can take (the benchmark's reference).
 */
export function identifyTimeMs(pending: number, maxConcurrency: number, windowMs: number): number {
  if (pending <= 0) return 0;
  return Math.ceil(pending / Math.max(1, maxConcurrency)) * windowMs;
}

/** Plan changes other than the reshard's own wait until it finished: two moves at once would collide. */
export function refuseDuringReshard(plan: PlanRecord, what: string): void {
  if (plan.reshard)
    throw new DisclusterError(
      ErrorCode.ReshardRefused,
      `${what} is not possible while the fleet reshards to ${plan.reshard.shardCount} shards; wait until it finished (\`discluster status\`)`,
    );
}
