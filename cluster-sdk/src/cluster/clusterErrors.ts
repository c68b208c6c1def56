import { DisclusterError, ErrorCode } from 'discluster-protocol/errors';

/** A shard whose identify wait failed for a reason other than its own close (see holdOnFailure). */
export function identifyHeldError(shardId: number, cause: unknown): DisclusterError {
  const code = cause instanceof DisclusterError ? cause.code : ErrorCode.NatsClosed;
  const why = cause instanceof Error ? cause.message : String(cause);
  return new DisclusterError(code, `shard ${shardId} is held and will not identify: ${why}`, { cause });
}

/** The cluster's NATS connection closed for good while it served. */
export function natsClosedError(error: Error | void, inFleet: boolean): DisclusterError {
  return new DisclusterError(
    ErrorCode.NatsClosed,
    `the NATS connection closed for good${error ? ` (${error.message})` : ''}: stopping this cluster's shards` +
      (inFleet ? '; exiting so its supervisor restarts it with a fresh connection' : '') +
      '. Check the NATS credentials (nats_user/nats_pass, nats_creds, nats_token) if it repeats.',
    error ? { cause: error } : undefined,
  );
}

/** A reshard handover list reached its bound (HandoverGate). */
export function handoverOverflowError(list: 'held' | 'recorded', limit: number): DisclusterError {
  return new DisclusterError(
    ErrorCode.HandoverOverflow,
    list === 'held'
      ? `reshard handover: more than ${limit} events held for go-live; the oldest are dropped and lost to bot code`
      : `reshard handover: more than ${limit} delivered events recorded; the oldest may reach bot code twice`,
  );
}

/** `shardForGuild` input that is no snowflake. */
export function parseSnowflake(guildId: string | bigint): bigint {
  let id: bigint;
  try {
    id = BigInt(guildId);
  } catch {
    throw new DisclusterError(
      ErrorCode.InvalidOption,
      `shardForGuild: ${JSON.stringify(String(guildId))} is not a snowflake`,
    );
  }
  if (id < 0n)
    throw new DisclusterError(ErrorCode.InvalidOption, 'shardForGuild: a snowflake is never negative');
  return id;
}

/** `send` on a shard this cluster does not serve (or before its shards exist). */
export function invalidShardError(shardId: number, clusterId: number | undefined): DisclusterError {
  return new DisclusterError(
    ErrorCode.InvalidShard,
    `shard ${shardId} is not served by cluster ${clusterId ?? '?'}`,
  );
}
