import type { IncomingMessage, ServerResponse } from 'node:http';
import { SnowflakeSchema } from 'discluster-protocol';
import { locateGuild } from '../guildLocation.js';
import type { EventStream } from './eventStream.js';
import { renderMetrics } from './fleetMetrics.js';
import { sendJson, sendText } from './respond.js';
import { standbyMessage } from './standbyMessage.js';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from './statusPage.js';
import type { StatusSource } from './statusSource.js';

export interface RouteContext {
  readonly bot: string;
  readonly source: StatusSource;
  readonly events: EventStream;
}

type Route = (req: IncomingMessage, res: ServerResponse, url: URL, context: RouteContext) => Promise<void>;

/** 503 from a MASTER that does not lead, naming the one that does. */
async function notLeading(res: ServerResponse, source: StatusSource): Promise<void> {
  const leader = await source.currentLeader().catch(() => null);
  sendJson(
    res,
    503,
    {
      error: standbyMessage(source.instanceId, leader),
      leader: leader ? { instanceId: leader.instanceId, hostname: leader.hostname } : null,
    },
    { 'retry-after': '5' },
  );
}

const page: Route = async (_req, res) => {
  sendText(res, 200, 'text/html; charset=utf-8', STATUS_PAGE_HTML, {
    'content-security-policy': STATUS_PAGE_CSP,
    'x-frame-options': 'DENY',
  });
};

const status: Route = async (_req, res, _url, { source }) => {
  const view = source.fleetView();
  if (!view) return notLeading(res, source);
  sendJson(res, 200, view.status);
};

const which: Route = async (_req, res, url, { source }) => {
  const guild = url.searchParams.get('guild') ?? '';
  if (!SnowflakeSchema.safeParse(guild).success) {
    const shown = guild.length > 40 ? `${guild.slice(0, 40)}…` : guild;
    sendJson(res, 400, { error: `guild must be a Discord id (1-20 digits), got ${JSON.stringify(shown)}` });
    return;
  }
  const view = source.fleetView();
  if (!view) return notLeading(res, source);
  if (!view.plan) {
    sendJson(
      res,
      503,
      {
        error:
          'no plan yet: MASTER is waiting for CONTROLs or for GET /gateway/bot; no shard serves any guild',
      },
      { 'retry-after': '5' },
    );
    return;
  }
  sendJson(res, 200, locateGuild(view.plan, guild));
};

const events: Route = (req, res, _url, context) => context.events.attach(req, res);

const metrics: Route = async (_req, res, _url, { bot, source }) => {
  const rendered = await renderMetrics({ bot, view: source.fleetView() });
  sendText(res, 200, rendered.contentType, rendered.body);
};

/** Path → handler; each answers GET (and HEAD, except the event stream). */
const ROUTES: ReadonlyMap<string, { readonly route: Route; readonly head: boolean }> = new Map([
  ['/', { route: page, head: true }],
  ['/api/status', { route: status, head: true }],
  ['/api/which', { route: which, head: true }],
  ['/api/events', { route: events, head: false }],
  ['/metrics', { route: metrics, head: true }],
]);

/**
 * The status server's request handler: `GET /` (the page), `/api/status`, `/api/which?guild=`,
 * `/api/events` (Server-Sent Events) and `/metrics`; anything else 404, another method 405. It
 * never throws: bad input is a 4xx, a failure a 500.
 */
export function createRequestHandler(
  context: RouteContext,
  onError: (error: unknown, req: IncomingMessage) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void (async () => {
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://status.invalid');
      } catch {
        sendJson(res, 400, { error: 'malformed request target' });
        return;
      }
      const entry = ROUTES.get(url.pathname);
      if (!entry) {
        sendJson(res, 404, {
          error: 'not found: try / (status page), /api/status, /api/which?guild=<id>, /api/events, /metrics',
        });
        return;
      }
      const allowed = entry.head ? ['GET', 'HEAD'] : ['GET'];
      if (!allowed.includes(req.method ?? '')) {
        sendJson(
          res,
          405,
          { error: `method ${req.method ?? '?'} not allowed` },
          { allow: allowed.join(', ') },
        );
        return;
      }
      await entry.route(req, res, url, context);
    })().catch((error: unknown) => {
      onError(error, req);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error; see the MASTER log' });
      else res.destroy();
    });
  };
}
