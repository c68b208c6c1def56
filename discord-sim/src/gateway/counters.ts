/** Running totals the gateway keeps for tests and the admin state. */
export interface GatewayCounters {
  identifies: number;
  resumes: number;
  dispatched: number;
  framesSent: number;
  connectionsOpened: number;
  heartbeatsMissed: number;
  invalidSessions: number;
  sendRateViolations: number;
  duplicateLiveSessions: number;
  resumeWhileLive: number;
  /** Close code → closes the server started. */
  serverCloses: Record<string, number>;
  /** Close code → closes the client started. */
  clientCloses: Record<string, number>;
}

export function createGatewayCounters(): GatewayCounters {
  return {
    identifies: 0,
    resumes: 0,
    dispatched: 0,
    framesSent: 0,
    connectionsOpened: 0,
    heartbeatsMissed: 0,
    invalidSessions: 0,
    sendRateViolations: 0,
    duplicateLiveSessions: 0,
    resumeWhileLive: 0,
    serverCloses: {},
    clientCloses: {},
  };
}

export function countClose(
  counters: GatewayCounters,
  kind: 'serverCloses' | 'clientCloses',
  code: number,
): void {
  const key = String(code);
  counters[kind][key] = (counters[kind][key] ?? 0) + 1;
}
