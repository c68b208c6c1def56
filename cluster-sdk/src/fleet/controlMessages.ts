import {
  AssignMessageSchema,
  ConfirmReplySchema,
  ControlToClusterSchema,
  FenceMessageSchema,
  ShutdownMessageSchema,
  type AssignMessage,
  type ControlToCluster,
} from 'discluster-protocol/clusterControl';

/** A CONTROL → cluster message after validation, or why it was rejected. */
export type DecodedControlMessage =
  { readonly ok: true; readonly message: ControlToCluster } | { readonly ok: false; readonly error: string };

/**
 * Validates the `data` of a CONTROL packet. Picks the schema by `type` first, so a bad `assign`
 * is reported by its fields ("gateway.url: …") rather than as "matches none of four shapes".
 * Zod's issue texts name expected types, never received values, so no secret is echoed.
 */
export function decodeControlMessage(data: unknown): DecodedControlMessage {
  const type = typeof data === 'object' && data !== null ? (data as { type?: unknown }).type : undefined;
  const schema =
    type === 'assign'
      ? AssignMessageSchema
      : type === 'confirm-reply'
        ? ConfirmReplySchema
        : type === 'shutdown'
          ? ShutdownMessageSchema
          : type === 'fence'
            ? FenceMessageSchema
            : null;
  if (type === 'keepalive') {
    // The package index exports no schema of its own for it; the union's member checks it, and its
    // three fields make a plain description clearer than the union's issue list.
    const result = ControlToClusterSchema.safeParse(data);
    if (result.success && result.data.type === 'keepalive') return { ok: true, message: result.data };
    return {
      ok: false,
      error: 'keepalive: expected { v: 1, type: "keepalive", epoch: a non-negative integer }',
    };
  }
  if (schema === null) {
    const shown = typeof type === 'string' ? JSON.stringify(type.slice(0, 40)) : typeof type;
    return {
      ok: false,
      error: `type: expected assign, confirm-reply, shutdown, fence or keepalive, got ${shown}`,
    };
  }
  const result = schema.safeParse(data);
  if (result.success) return { ok: true, message: result.data };
  const issues = result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
  return { ok: false, error: `${String(type)}: ${issues.join('; ')}` };
}

/**
 * What differs between two assignments in ways a running cluster cannot absorb (its shards, its
 * token, its NATS access), or null when only the epoch, the plan's cluster list, the gateway info
 * or `fenceAfterMs` moved. A new `sourceAddress` (CONTROL restarted with other `source_addresses`)
 * is not one: the sockets stay where they are, and the cluster takes it at its next start. Secrets
 * are named, never shown.
 */
export function describeAssignmentChange(from: AssignMessage, to: AssignMessage): string | null {
  const changes: string[] = [];
  const shardsFrom = [...from.shardIds].sort((a, b) => a - b);
  const shardsTo = [...to.shardIds].sort((a, b) => a - b);
  if (shardsFrom.join(',') !== shardsTo.join(',')) {
    changes.push(`shards [${shardsFrom.join(', ')}] → [${shardsTo.join(', ')}]`);
  }
  if (from.shardCount !== to.shardCount) changes.push(`shardCount ${from.shardCount} → ${to.shardCount}`);
  if (from.bot !== to.bot) changes.push(`bot ${from.bot} → ${to.bot}`);
  if (from.token !== to.token) changes.push('the token');
  if (canonical(from.nats) !== canonical(to.nats)) changes.push('the NATS access');
  return changes.length === 0 ? null : changes.join(', ');
}

/** JSON with object keys sorted, so equal values compare equal whatever order CONTROL wrote them in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    typeof item === 'object' && item !== null && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : item,
  );
}
