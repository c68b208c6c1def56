/**
 * Gateway close codes after which reconnecting cannot help: the shard stays down instead of looping
 * (and spending identifies) and the cluster reports it. MASTER stops the fleet on every code but
 * 4011, which starts a reshard (the other shards keep serving meanwhile).
 */
export const FATAL_CLOSE_CODES: Readonly<Record<number, string>> = {
  4004: 'Authentication failed: the bot token is invalid',
  4010: 'Invalid shard: the shard id or shard count was rejected',
  4011: 'Sharding required: a shard would carry too many guilds',
  4012: 'Invalid API version',
  4013: 'Invalid intents: the intents bitfield has unknown bits',
  4014: 'Disallowed intents: a privileged intent is not enabled for this application',
};

export function isFatalCloseCode(code: number | null): code is number {
  return code !== null && code in FATAL_CLOSE_CODES;
}
