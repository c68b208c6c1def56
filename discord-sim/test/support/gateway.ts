// Shared helpers for the discord-sim protocol tests: an in-process simulator per test, a raw `ws`
// client that records every frame, and small HTTP helpers for the REST and admin APIs.
// Every wait here is a liveness bound (a hang fails instead of stalling), never a timing assertion.
import WebSocket, { type ClientOptions } from 'ws';
import { DiscordSim, type DiscordSimOptions } from '../../src/index.js';

export const TOKEN = 'test-token';
/** Liveness bound for one awaited frame or close. */
export const WAIT_MS = 15_000;

export interface GatewayMessage {
  op: number;
  d: unknown;
  s: number | null;
  t: string | null;
}

export interface CloseEvent {
  code: number;
  reason: string;
}

/** Every simulator a test started, closed by `closeAllSims()` in afterEach. */
const sims: DiscordSim[] = [];
const clients: RawClient[] = [];

export async function startSim(options: Partial<DiscordSimOptions> = {}): Promise<DiscordSim> {
  const sim = new DiscordSim({ token: TOKEN, ...options });
  sims.push(sim);
  await sim.listen();
  return sim;
}

/** Closes every client and simulator of the test; first checks each simulator still answers. */
export async function closeAllSims(): Promise<void> {
  for (const client of clients.splice(0)) client.terminate();
  const toClose = sims.splice(0);
  try {
    for (const sim of toClose) {
      // "The simulator never crashes": its admin API still answers after whatever the test did.
      const response = await fetch(`${sim.urls.admin}/state`);
      if (response.status !== 200)
        throw new Error(`GET /_sim/state answered ${response.status} after the test`);
      await response.json();
    }
  } finally {
    await Promise.all(toClose.map((sim) => sim.close()));
  }
}

/**
 * A raw gateway client: no protocol logic at all, so a test sends exactly the bytes it means to
 * and sees every frame the simulator sends back, in order.
 */
export class RawClient {
  public readonly messages: GatewayMessage[] = [];
  public closeEvent: CloseEvent | null = null;
  private waiters: Array<() => void> = [];

  private constructor(public readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      // Without compression every server frame is JSON text; a binary one is recorded as op -1.
      if (isBinary) this.messages.push({ op: -1, d: null, s: null, t: 'BINARY' });
      else this.messages.push(JSON.parse(String(data)) as GatewayMessage);
      this.notify();
    });
    ws.on('close', (code, reason) => {
      this.closeEvent = { code, reason: reason.toString('utf8') };
      this.notify();
    });
    ws.on('error', () => {
      // 'close' follows; a test asserts on that.
    });
  }

  /**
   * Connects (default query `v=10&encoding=json`) and waits for the socket to open. `options`: the
   * `ws` client's (e.g. `localAddress`, the address the socket leaves from).
   */
  public static async connect(
    base: string,
    query = '?v=10&encoding=json',
    options?: ClientOptions,
  ): Promise<RawClient> {
    const ws = new WebSocket(`${base}${query}`, options);
    const client = new RawClient(ws);
    clients.push(client);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no WebSocket open from ${base} within ${WAIT_MS} ms`)),
        WAIT_MS,
      );
      ws.once('open', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.once('close', (code) => {
        // Closed during the handshake (e.g. v=8): still a client whose close code a test reads.
        clearTimeout(timer);
        if (client.closeEvent === null) client.closeEvent = { code, reason: '' };
        resolve();
      });
      ws.once('unexpected-response', (_request, response) => {
        clearTimeout(timer);
        reject(new Error(`WebSocket upgrade refused with HTTP ${response.statusCode}`));
      });
    });
    return client;
  }

  /** Connects and waits for HELLO. */
  public static async hello(base: string, query?: string, options?: ClientOptions): Promise<RawClient> {
    const client = await RawClient.connect(base, query, options);
    await client.waitFor((m) => m.op === 10, 'HELLO');
    return client;
  }

  public send(payload: unknown): void {
    this.ws.send(JSON.stringify(payload));
  }

  public sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  public identify(shard: [number, number] = [0, 1], extra: Record<string, unknown> = {}): void {
    this.send({
      op: 2,
      d: {
        token: TOKEN,
        intents: 0,
        properties: { os: 'linux', browser: 'raw', device: 'raw' },
        shard,
        ...extra,
      },
    });
  }

  public resume(sessionId: string, seq: number | null, token = TOKEN): void {
    this.send({ op: 6, d: { token, session_id: sessionId, seq } });
  }

  /** IDENTIFY and wait for READY; returns the READY data. */
  public async identifyReady(
    shard: [number, number] = [0, 1],
    extra: Record<string, unknown> = {},
  ): Promise<ReadyData> {
    const from = this.messages.length;
    this.identify(shard, extra);
    const answer = await this.waitFor((m) => m.t === 'READY' || m.op === 9, 'READY', from);
    if (answer.op === 9)
      throw new Error(`IDENTIFY of shard [${shard.join(', ')}] got INVALID_SESSION instead of READY`);
    return answer.d as ReadyData;
  }

  /** First message at index ≥ `from` matching `predicate`; rejects if the socket closes first. */
  public async waitFor(
    predicate: (m: GatewayMessage) => boolean,
    description: string,
    from = 0,
  ): Promise<GatewayMessage> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const found = this.messages.slice(from).find(predicate);
      if (found) return found;
      if (this.closeEvent) {
        throw new Error(
          `socket closed (${this.closeEvent.code} ${this.closeEvent.reason}) before ${description}; got ${this.describe()}`,
        );
      }
      if (Date.now() >= deadline)
        throw new Error(`no ${description} within ${WAIT_MS} ms; got ${this.describe()}`);
      await this.nextEvent(deadline);
    }
  }

  /** Waits until `count` messages (from index `from`) match. */
  public async waitForCount(
    predicate: (m: GatewayMessage) => boolean,
    count: number,
    description: string,
    from = 0,
  ): Promise<GatewayMessage[]> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const found = this.messages.slice(from).filter(predicate);
      if (found.length >= count) return found;
      if (this.closeEvent) {
        throw new Error(
          `socket closed (${this.closeEvent.code}) after ${found.length}/${count} ${description}`,
        );
      }
      if (Date.now() >= deadline)
        throw new Error(`only ${found.length}/${count} ${description} within ${WAIT_MS} ms`);
      await this.nextEvent(deadline);
    }
  }

  /** Waits for the socket to close and returns the close code the client saw. */
  public async closed(): Promise<CloseEvent> {
    const deadline = Date.now() + WAIT_MS;
    while (!this.closeEvent) {
      if (Date.now() >= deadline)
        throw new Error(`socket still open after ${WAIT_MS} ms; got ${this.describe()}`);
      await this.nextEvent(deadline);
    }
    return this.closeEvent;
  }

  public close(code: number): void {
    this.ws.close(code);
  }

  public terminate(): void {
    this.ws.terminate();
  }

  public get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  private describe(): string {
    return JSON.stringify(this.messages.map((m) => (m.op === 0 ? `${m.t}#${m.s}` : `op${m.op}`)).slice(-20));
  }

  private notify(): void {
    const current = this.waiters;
    this.waiters = [];
    for (const wake of current) wake();
  }

  private nextEvent(deadline: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

export interface ReadyData {
  v: number;
  session_id: string;
  resume_gateway_url: string;
  shard: [number, number];
  guilds: Array<{ id: string; unavailable: boolean }>;
  user: { id: string; bot: boolean };
  application: { id: string; flags: number };
}

// ---- HTTP ------------------------------------------------------------------------------------

export interface SimState {
  shardCount: number;
  maxConcurrency: number;
  identifies: number;
  resumes: number;
  sessionStartTotal: number;
  sessionStartRemaining: number;
  tokenReset: boolean;
  connections: number;
  sessions: number;
  liveSessions: Array<{
    sessionId: string;
    shard: [number, number];
    connectedFor: number;
    remoteAddress: string;
  }>;
  violations: {
    identifyRate: number;
    duplicateLiveSessions: number;
    sendRate: number;
    resumeWhileLive: number;
  };
  dispatched: number;
  invalidSessions: number;
  heartbeatsMissed: number;
  serverCloses: Record<string, number>;
  clientCloses: Record<string, number>;
  guilds: number;
  resumeUrlConnections: number;
  rest: {
    requests: number;
    ok: number;
    rateLimited: number;
    globalRateLimited: number;
    invalid: number;
    banned: number;
    bans: number;
    unauthorized: number;
    byClient: Record<string, number>;
  };
}

export async function getState(sim: DiscordSim): Promise<SimState> {
  const response = await fetch(`${sim.urls.admin}/state`);
  if (response.status !== 200) throw new Error(`GET /_sim/state answered ${response.status}`);
  return (await response.json()) as SimState;
}

/** State without the fields that change with the clock, for "nothing changed" comparisons. */
export async function stableState(sim: DiscordSim): Promise<unknown> {
  const state = await getState(sim);
  return {
    ...state,
    liveSessions: state.liveSessions.map(({ sessionId, shard, remoteAddress }) => ({
      sessionId,
      shard,
      remoteAddress,
    })),
  };
}

export interface JsonResponse {
  status: number;
  headers: Headers;
  text: string;
  body: unknown;
}

export async function request(url: string, init: RequestInit = {}): Promise<JsonResponse> {
  const response = await fetch(url, init);
  const text = await response.text();
  let body: unknown = undefined;
  try {
    body = JSON.parse(text);
  } catch {
    // Left undefined: a test expecting JSON fails on it with the text in view.
  }
  return { status: response.status, headers: response.headers, text, body };
}

export function adminPost(sim: DiscordSim, path: string, body?: unknown): Promise<JsonResponse> {
  const init: RequestInit = { method: 'POST' };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  return request(`${sim.urls.admin}${path}`, init);
}

/** Polls `predicate` over the simulator state until it holds (liveness bound only). */
export async function waitForState(
  sim: DiscordSim,
  predicate: (state: SimState) => boolean,
  description: string,
): Promise<SimState> {
  const deadline = Date.now() + WAIT_MS;
  let last: SimState | undefined;
  for (;;) {
    last = await getState(sim);
    if (predicate(last)) return last;
    if (Date.now() >= deadline)
      throw new Error(`state never showed ${description}; last: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
