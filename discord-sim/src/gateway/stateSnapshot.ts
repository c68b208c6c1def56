import type { IdentifyLimiter } from '../identifyLimiter';
import type { SessionStartBudget } from '../sessionStartBudget';
import type { GatewayContext } from './context';

interface LiveSessionState {
  sessionId: string;
  shard: [number, number];
  connectedFor: number;
  /** The client's IP address (which local address a client's socket left from). */
  remoteAddress: string;
}

/** The gateway's state as `GET /_sim/state` shows it: settings, counters, violations, live sessions. */
export function gatewaySnapshot(
  gateway: GatewayContext,
  budget: SessionStartBudget,
  identifyLimiter: IdentifyLimiter,
): Record<string, unknown> {
  const { options, counters, registry } = gateway;
  const liveSessions: LiveSessionState[] = [];
  const now = Date.now();
  for (const connection of registry.connections) {
    const session = connection.session;
    if (session && connection.isOpen)
      liveSessions.push({
        sessionId: session.id,
        shard: [session.shardId, session.shardCount],
        connectedFor: now - connection.openedAt,
        remoteAddress: connection.remoteAddress,
      });
  }
  return {
    shardCount: options.shards,
    maxConcurrency: options.maxConcurrency,
    identifyWindowMs: options.identifyWindowMs,
    guilds: gateway.guilds.size,
    identifies: counters.identifies,
    identifiesUnjudged: identifyLimiter.unjudged,
    resumes: counters.resumes,
    sessionStartTotal: budget.total,
    sessionStartRemaining: budget.remaining,
    tokenReset: budget.tokenReset,
    connections: registry.connections.size,
    connectionsOpened: counters.connectionsOpened,
    sessions: registry.sessionCount,
    liveSessions,
    violations: {
      identifyRate: identifyLimiter.violations,
      duplicateLiveSessions: counters.duplicateLiveSessions,
      sendRate: counters.sendRateViolations,
      resumeWhileLive: counters.resumeWhileLive,
    },
    dispatched: counters.dispatched,
    framesSent: counters.framesSent,
    invalidSessions: counters.invalidSessions,
    heartbeatsMissed: counters.heartbeatsMissed,
    serverCloses: counters.serverCloses,
    clientCloses: counters.clientCloses,
  };
}
