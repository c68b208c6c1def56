import { createHash } from 'node:crypto';

/** Where one REST call falls in Discord's rate limits. */
export interface RestRoute {
  /** Method and route template, e.g. `POST /channels/:id/messages`. */
  readonly template: string;
  /** The channel, guild or webhook a per-route limit counts for; `global` for other routes. */
  readonly major: string;
  /** Interaction callbacks do not count against the global limit (Discord's rule). */
  readonly globalExempt: boolean;
  /** KV-safe hash of {@link template}. */
  readonly routeHash: string;
  /** KV-safe form of {@link major}: the id itself, or a hash for a webhook's id and token. */
  readonly majorKey: string;
}

// Snowflakes; Discord's are 17-19 digits today, simulators may use shorter ones.
const ID = /^\d{1,20}$/;
// The version prefix of any API base (`https://discord.com/api/v10`, a proxy's `/x/api/v10`).
const API_PREFIX = /^(?:.*?\/api)?(?:\/v\d+)?(?=\/)/;

function hash(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 22);
}

/**
 * The route of a request URL, following Discord's documented model: limits are per route template
 * and per top-level resource (channel, guild, webhook), and ids elsewhere in the path do not make a
 * new bucket. Reactions share one template whatever the emoji; a webhook's token is part of its major.
 */
export function restRouteOf(method: string, url: string): RestRoute {
  let pathname: string;
  try {
    pathname = new URL(url).pathname;
  } catch {
    pathname = url.split('?')[0] ?? url;
  }
  const segments = pathname.replace(API_PREFIX, '').split('/').filter(Boolean);
  const [resource, id, webhookToken] = segments;
  let major = 'global';
  if ((resource === 'channels' || resource === 'guilds') && id !== undefined && ID.test(id)) major = id;
  if (resource === 'webhooks' && id !== undefined && ID.test(id))
    major = webhookToken === undefined ? id : `${id}/${webhookToken}`;

  const parts: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as string;
    const previous = segments[i - 1];
    if (previous === 'reactions') {
      // The emoji and everything after it (`@me`, a user id) is one bucket.
      parts.push(':reaction');
      break;
    }
    if (ID.test(segment)) parts.push(':id');
    else if ((resource === 'webhooks' && i === 2) || (resource === 'interactions' && i === 2))
      parts.push(':token');
    else parts.push(segment);
  }
  const verb = method.toUpperCase();
  const template = `${verb} /${parts.join('/')}`;
  return {
    template,
    major,
    globalExempt: resource === 'interactions' && segments[3] === 'callback',
    routeHash: hash(template),
    majorKey: ID.test(major) || major === 'global' ? major : hash(major),
  };
}
