import type { APIGatewaySessionStartLimit } from 'discord-api-types/v10';
import type { ClusterAssignment } from '../cluster/ClusterOptions.js';
import { sourceAddressAgent } from '../cluster/clusterRest.js';
import { undici } from '../rest/lazyModules.js';

/**
 * Fresh `session_start_limit` data for the identify throttler: `GET /gateway/bot` at the REST base
 * the assignment's data came from. Null when the assignment does not say where that is (an older
 * MASTER, or a standalone assignment without `gateway.api`): shards held at the floor then wait for
 * someone to call `updateBudget`.
 */
export function gatewayBotSource(
  assignment: ClusterAssignment,
): (() => Promise<APIGatewaySessionStartLimit>) | null {
  const api = assignment.gateway.api;
  if (api === undefined) return null;
  const url = `${api.replace(/\/+$/, '')}/gateway/bot`;
  const { token, sourceAddress } = assignment;
  // From the cluster's own address, like its gateway and REST sockets (rarely: once per reset).
  const dispatcher = sourceAddress === undefined ? undefined : sourceAddressAgent(sourceAddress);
  return async () => {
    const init = {
      headers: { authorization: `Bot ${token}`, 'user-agent': 'DiscordBot (discluster, 0.1)' },
      signal: AbortSignal.timeout(15_000),
    };
    const response = dispatcher ? await undici().fetch(url, { ...init, dispatcher }) : await fetch(url, init);
    if (!response.ok) throw new Error(`GET /gateway/bot answered ${response.status}`);
    const body = (await response.json()) as { session_start_limit?: APIGatewaySessionStartLimit };
    const limit = body.session_start_limit;
    if (
      !limit ||
      ![limit.total, limit.remaining, limit.reset_after, limit.max_concurrency].every(
        (value) => typeof value === 'number' && Number.isFinite(value) && value >= 0,
      )
    )
      throw new Error('GET /gateway/bot answered without a valid session_start_limit');
    return limit;
  };
}
