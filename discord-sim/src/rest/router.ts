import type { BucketSpec } from './buckets';
import { badRequest, methodNotAllowed, routeNotFound } from './errors';

export type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

export interface RouteContext {
  /** Path parameters, percent-decoded, in order. */
  readonly params: readonly string[];
  /** The parsed JSON body (`{}` when empty); undefined for routes without one. */
  readonly body: unknown;
  readonly query: URLSearchParams;
}

export interface RouteResult {
  readonly status: number;
  /** Omitted for 204. */
  readonly body?: unknown;
}

export interface RouteDef {
  readonly method: Method;
  /** Anchored pattern over the path after `/api/vN`; each group is one parameter. */
  readonly path: RegExp;
  /** The route group's bucket (null: only the global limit applies). */
  readonly bucket: BucketSpec | null;
  /** The major parameter (channel, guild, webhook): buckets count separately per value. */
  readonly major: (params: readonly string[]) => string;
  /** Needs `Authorization: Bot <token>`. */
  readonly auth: boolean;
  /** An interaction endpoint: exempt from the global limit, authorised by its interaction token. */
  readonly interaction: boolean;
  /** Reads a JSON body. */
  readonly body: boolean;
  readonly handle: (context: RouteContext) => RouteResult;
}

export const noMajor = (): string => 'global';
export const firstParam = (params: readonly string[]): string => params[0]!;

/**
 * Finds the route for a method and path: an unknown path is 404, a known path with another method is
 * 405 (both Discord's `{ message, code: 0 }`), a bad percent-escape is 400.
 */
export function matchRoute(
  routes: readonly RouteDef[],
  method: string,
  path: string,
): { route: RouteDef; params: string[] } {
  const allowed: string[] = [];
  for (const route of routes) {
    const match = route.path.exec(path);
    if (!match) continue;
    if (route.method !== method) {
      allowed.push(route.method);
      continue;
    }
    try {
      return { route, params: match.slice(1).map((part) => decodeURIComponent(part)) };
    } catch {
      throw badRequest();
    }
  }
  if (allowed.length > 0) throw methodNotAllowed(allowed);
  throw routeNotFound();
}
