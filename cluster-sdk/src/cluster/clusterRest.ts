import type { REST, ResponseLike } from '@discordjs/rest';
import type { NatsConnection } from '@nats-io/transport-node';
import { DisclusterError, ErrorCode } from 'discluster-protocol/errors';
import type { Agent } from 'undici';
import { FleetRestLimiter, type MakeRequest } from '../rest/FleetRestLimiter.js';
import { discordRest, undici } from '../rest/lazyModules.js';
import type { FatalShardClose } from './ClusterEvents.js';
import type { ClusterAssignment, ResolvedClusterSettings } from './ClusterOptions.js';

// @discordjs/rest builds every URL on this base; requests are sent to the assignment's instead.
const DEFAULT_API = 'https://discord.com/api';
const TOKEN_REJECTED = 'Authentication failed: Discord answered 401 to a REST call with the bot token';

/**
 * `cluster.rest`: @discordjs/rest's client, built before the assignment is known so bot code can
 * hold it from the start. Its `makeRequest` is Discluster's fleet limiter (see rest/), and its own
 * per-process global limit is lifted: the fleet's limit is the one that counts.
 */
export function createClusterRest(send: MakeRequest): REST {
  const { REST } = discordRest();
  return new REST({
    version: '10',
    api: DEFAULT_API,
    globalRequestsPerSecond: Number.MAX_SAFE_INTEGER,
    makeRequest: send,
  });
}

/** The REST base of an assignment (`GET /gateway/bot`'s `api`, MASTER's `discord_api`), without the version. */
export function restApiBase(assignment: ClusterAssignment): string {
  return (assignment.gateway.api ?? `${DEFAULT_API}/v10`).replace(/\/v\d+\/?$/, '').replace(/\/$/, '');
}

/** Sends what @discordjs/rest built for discord.com to the assignment's API base. */
export function retarget(url: string, apiBase: string): string {
  return url.startsWith(DEFAULT_API) ? apiBase + url.slice(DEFAULT_API.length) : url;
}

/** Where the fleet limiter's warnings and debug lines go. */
export interface RestDiagnostics {
  readonly onWarn: (message: string) => void;
  readonly onDebug: (message: string) => void;
}

/** The cluster's fleet limiter, from its assignment and settings. */
export function openClusterRestLimiter(
  nc: NatsConnection,
  assignment: ClusterAssignment,
  settings: ResolvedClusterSettings,
  hooks: RestDiagnostics & { readonly onTokenRejected: (first: boolean) => void },
): Promise<FleetRestLimiter> {
  return FleetRestLimiter.open(nc, {
    bot: assignment.bot,
    token: assignment.token,
    globalPerSecond: assignment.gateway.restGlobalPerSecond ?? 50,
    processes: assignment.clusterIds.length,
    invalidRequestLimit: settings.restInvalidRequestLimit,
    replicas: assignment.kvReplicas ?? 1,
    ...hooks,
  });
}

/**
 * A cluster's REST: the client bot code holds from its first `cluster.rest` on (built then, so a
 * cluster that never calls REST never loads @discordjs/rest), and the fleet limiter and token it
 * gets once the assignment is known. Token and limiter are private fields (promise 4).
 */
export class ClusterRestLink {
  #rest: REST | null = null;
  #limiter: FleetRestLimiter | null = null;
  #apiBase = DEFAULT_API;
  #token: string | null = null;
  /** With `assignment.sourceAddress`: undici connects from it (the REST client's `agent`). */
  #agent: Agent | null = null;

  public get rest(): REST {
    if (this.#rest) return this.#rest;
    const rest = createClusterRest((url, init) => {
      if (!this.#limiter) return restNotStarted();
      return this.#limiter.makeRequest(retarget(url, this.#apiBase), init);
    });
    this.#rest = rest;
    this.#authorise(rest);
    return rest;
  }

  /**
   * Authorises the client and puts it under the fleet's limits. A 401 is reported (`onFatal`) by
   * one process of the fleet, as a gateway 4004 would be.
   */
  public async bind(
    nc: NatsConnection,
    assignment: ClusterAssignment,
    settings: ResolvedClusterSettings,
    hooks: RestDiagnostics & { readonly onFatal: (close: FatalShardClose) => void },
  ): Promise<void> {
    const { onFatal, ...rest } = hooks;
    this.#limiter = await openClusterRestLimiter(nc, assignment, settings, {
      ...rest,
      onTokenRejected: (first) => {
        if (!first) return;
        onFatal({ shardId: assignment.shardIds[0] ?? 0, code: 4004, reason: TOKEN_REJECTED });
      },
    });
    this.#apiBase = restApiBase(assignment);
    if (assignment.sourceAddress !== undefined) this.#agent = sourceAddressAgent(assignment.sourceAddress);
    this.#token = assignment.token;
    if (this.#rest) this.#authorise(this.#rest);
  }

  /** Gives the client the token and the source-address agent once both it and the assignment exist. */
  #authorise(rest: REST): void {
    if (this.#token === null) return;
    // @discordjs/rest hands its agent to makeRequest as `dispatcher` (a request's own wins), and
    // the default makeRequest, which the fleet limiter sends with, passes it to undici.
    if (this.#agent) rest.setAgent(this.#agent);
    rest.setToken(this.#token);
  }

  public close(): void {
    this.#limiter?.close();
    this.#agent?.close().catch(() => undefined);
  }
}

/**
 * An undici dispatcher whose sockets leave from `localAddress` (a local address of this machine).
 * undici's Client option `localAddress`, which an Agent passes to each Client: not
 * `connect: { localAddress }`, which undici 6's connector overrides with the Client's own (null).
 */
export function sourceAddressAgent(localAddress: string): Agent {
  return new (undici().Agent)({ localAddress });
}

function restNotStarted(): Promise<ResponseLike> {
  return Promise.reject(
    new DisclusterError(
      ErrorCode.Closed,
      'cluster.rest sends once cluster.start() has the assignment (token, API base, fleet limits); await it first',
    ),
  );
}
