/**
 * Shared plumbing for the conformance suites in which @discordjs/ws (an independent, widely used
 * shard client) drives the simulator. Not a test file itself (vitest only collects *.test.ts).
 *
 * Every helper here talks to the simulator the way an outside test would: REST through
 * @discordjs/rest, the gateway through @discordjs/ws, and the admin API over HTTP. The only
 * in-process reads are the generated guild ids, which the admin API does not list.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { REST } from '@discordjs/rest';
import {
  WebSocketManager,
  WebSocketShardEvents,
  WebSocketShardStatus,
  type IIdentifyThrottler,
  type OptionalWebSocketManagerOptions,
  type SessionInfo,
  type WebSocketShard,
} from '@discordjs/ws';
import type { GatewayDispatchPayload, GatewayReadyDispatchData } from 'discord-api-types/v10';
import { DiscordSim, type DiscordSimOptions } from '../src';

export const TOKEN = 'conformance-token';

/** Polls `predicate` until it holds. The timeout is a liveness bound, never a performance claim. */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  { timeoutMs = 30_000, intervalMs = 20 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(intervalMs);
  }
}

export interface SimState {
  shardCount: number;
  maxConcurrency: number;
  guilds: number;
  identifies: number;
  resumes: number;
  sessionStartRemaining: number;
  connections: number;
  connectionsOpened: number;
  liveSessions: Array<{ sessionId: string; shard: [number, number] }>;
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
  resumeUrlConnections: number;
}

/** A simulator started on port 0 plus typed admin calls. */
export class SimHandle {
  public readonly sim: DiscordSim;
  public urls!: { rest: string; gateway: string; admin: string };

  public constructor(options: Partial<DiscordSimOptions>) {
    this.sim = new DiscordSim({ port: 0, token: TOKEN, identifyWindowMs: 150, ...options });
  }

  public async start(): Promise<this> {
    this.urls = await this.sim.listen();
    return this;
  }

  public async state(): Promise<SimState> {
    return (await this.get('/state')) as SimState;
  }

  public async get(path: string): Promise<unknown> {
    const response = await fetch(`${this.urls.admin}${path}`);
    if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
    return response.json();
  }

  public async post(path: string, body?: unknown): Promise<unknown> {
    const response = await fetch(`${this.urls.admin}${path}`, {
      method: 'POST',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? null : JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`POST ${path}: ${response.status} ${await response.text()}`);
    return response.json();
  }

  public async dispatch(
    t: string,
    d: Record<string, unknown>,
  ): Promise<{ dispatched: true; sessions: number }> {
    return (await this.post('/dispatch', { t, d })) as { dispatched: true; sessions: number };
  }

  /** Every guild id the simulator generated, in creation order. */
  public guildIds(): string[] {
    const store = this.sim.simulator.guilds;
    return Array.from({ length: store.size }, (_, index) => store.id(index));
  }

  /** Live sessions the admin API reports for one shard (of any count, or of `shardCount`). */
  public async liveOn(shardId: number, shardCount?: number): Promise<number> {
    const { liveSessions } = await this.state();
    return liveSessions.filter(
      ({ shard }) => shard[0] === shardId && (shardCount === undefined || shard[1] === shardCount),
    ).length;
  }

  public async close(): Promise<void> {
    await this.sim.close();
  }
}

/** Discord's routing formula, computed here independently of the simulator. */
export function shardOf(guildId: string, shardCount: number): number {
  return Number((BigInt(guildId) >> 22n) % BigInt(shardCount));
}

/**
 * An identify throttler for a short simulator window: one IDENTIFY per rate-limit key per
 * `windowMs`, in request order. @discordjs/ws's SimpleIdentifyThrottler hard-codes Discord's 5 s,
 * which would make re-identify tests take seconds; Discluster plugs in its own throttler the same way.
 */
export class WindowThrottler implements IIdentifyThrottler {
  private readonly chains = new Map<number, Promise<void>>();
  private readonly lastAt = new Map<number, number>();
  public granted = 0;

  public constructor(
    private readonly maxConcurrency: number,
    private readonly windowMs: number,
  ) {}

  public async waitForIdentify(shardId: number, signal: AbortSignal): Promise<void> {
    const key = shardId % this.maxConcurrency;
    const previous = this.chains.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    this.chains.set(
      key,
      previous.then(() => mine),
    );
    try {
      await previous;
      signal.throwIfAborted();
      const wait = (this.lastAt.get(key) ?? -Infinity) + this.windowMs - Date.now();
      if (wait > 0) await sleep(wait, undefined, { signal });
      this.lastAt.set(key, Date.now());
      this.granted++;
    } finally {
      release();
    }
  }
}

export interface Received {
  /** Every dispatch per shard id, in arrival order. */
  readonly dispatches: Map<number, GatewayDispatchPayload[]>;
  readonly ready: Map<number, GatewayReadyDispatchData[]>;
  readonly resumed: number[];
  readonly errors: Array<{ shardId: number; error: Error }>;
  readonly closed: Array<{ shardId: number; code: number }>;
  readonly heartbeats: Array<{ shardId: number; at: number }>;
  readonly debug: Array<{ shardId: number; message: string }>;
}

export interface ManagerHandle {
  readonly manager: WebSocketManager;
  readonly received: Received;
  readonly sessions: Map<number, SessionInfo>;
  /**
   * Holds every shard of this manager before it (re)connects — @discordjs/ws reads the session
   * store first thing when connecting — until the returned function is called. Lets a test act
   * while a socket is certainly down, without racing the client's 500 ms reconnect delay.
   */
  holdConnects(): () => void;
  /** Resolves when every shard is READY (or RESUMED); rejects if connect() throws. */
  connect(): Promise<void>;
  /** Every dispatch of type `t`, from any shard, with the shard it came in on. */
  events(t: string): Array<{ shardId: number; payload: GatewayDispatchPayload }>;
  shards(): WebSocketShard[];
}

export type ManagerOptions = Partial<OptionalWebSocketManagerOptions> & {
  intents: number;
  /** Use @discordjs/ws's own SimpleIdentifyThrottler (5 s per key) instead of WindowThrottler. */
  defaultThrottler?: boolean;
};

/** Owns simulators and managers of one test and tears all of them down afterwards. */
export class Harness {
  private readonly sims: SimHandle[] = [];
  private readonly managers: ManagerHandle[] = [];

  public async sim(options: Partial<DiscordSimOptions> = {}): Promise<SimHandle> {
    const handle = new SimHandle(options);
    this.sims.push(handle);
    return handle.start();
  }

  /**
   * A WebSocketManager pointed at `sim`, with its own in-memory session store (the package default
   * is one store per process, which would let two managers in one test share sessions).
   */
  public manager(sim: SimHandle, options: ManagerOptions, throttler?: IIdentifyThrottler): ManagerHandle {
    const { defaultThrottler, ...rest } = options;
    const restClient = new REST({
      api: sim.urls.rest.replace(/\/v10$/, ''),
      hashSweepInterval: 0,
      handlerSweepInterval: 0,
    }).setToken(TOKEN);
    const sessions = new Map<number, SessionInfo>();
    let gate: Promise<void> = Promise.resolve();
    const ownThrottler =
      throttler ??
      new WindowThrottler(sim.sim.options.maxConcurrency, sim.sim.options.identifyWindowMs + 100);
    const manager = new WebSocketManager({
      token: TOKEN,
      rest: restClient,
      retrieveSessionInfo: async (shardId) => {
        // Only a shard about to (re)connect is Idle here; dispatch and heartbeat paths pass freely.
        if (shardsOf(manager).find((shard) => shard.id === shardId)?.status === WebSocketShardStatus.Idle)
          await gate;
        return sessions.get(shardId) ?? null;
      },
      updateSessionInfo: (shardId, info) => {
        if (info) sessions.set(shardId, info);
        else sessions.delete(shardId);
      },
      ...(defaultThrottler ? {} : { buildIdentifyThrottler: () => ownThrottler }),
      ...rest,
    });
    const received: Received = {
      dispatches: new Map(),
      ready: new Map(),
      resumed: [],
      errors: [],
      closed: [],
      heartbeats: [],
      debug: [],
    };
    manager.on(WebSocketShardEvents.Dispatch, (payload, shardId) => {
      let list = received.dispatches.get(shardId);
      if (!list) received.dispatches.set(shardId, (list = []));
      list.push(payload);
    });
    manager.on(WebSocketShardEvents.Ready, (data, shardId) => {
      let list = received.ready.get(shardId);
      if (!list) received.ready.set(shardId, (list = []));
      list.push(data);
    });
    manager.on(WebSocketShardEvents.Resumed, (shardId) => received.resumed.push(shardId));
    // Always listen: an 'error' without a listener throws inside @discordjs/ws.
    manager.on(WebSocketShardEvents.Error, (error, shardId) => received.errors.push({ shardId, error }));
    manager.on(WebSocketShardEvents.Closed, (code, shardId) => received.closed.push({ shardId, code }));
    manager.on(WebSocketShardEvents.HeartbeatComplete, (_stats, shardId) =>
      received.heartbeats.push({ shardId, at: Date.now() }),
    );
    manager.on(WebSocketShardEvents.Debug, (message, shardId) => received.debug.push({ shardId, message }));
    manager.on(WebSocketShardEvents.SocketError, () => {});
    const handle: ManagerHandle = {
      manager,
      received,
      sessions,
      holdConnects: () => {
        let open!: () => void;
        gate = new Promise<void>((resolve) => (open = resolve));
        return () => {
          open();
          gate = Promise.resolve();
        };
      },
      connect: () => manager.connect(),
      events: (t) => {
        const out: Array<{ shardId: number; payload: GatewayDispatchPayload }> = [];
        for (const [shardId, list] of received.dispatches)
          for (const payload of list) if (payload.t === t) out.push({ shardId, payload });
        return out;
      },
      shards: () => shardsOf(manager),
    };
    this.managers.push(handle);
    return handle;
  }

  /**
   * Destroys every manager, then closes every simulator. A shard that was sleeping before a
   * reconnect when destroy() ran comes back on its own (destroy saw it Idle), so destroy again
   * until every shard stays Idle; otherwise it would keep dialling a closed port.
   */
  public async cleanup(): Promise<void> {
    const shards = this.managers.flatMap((handle) => handle.shards());
    await Promise.all(
      this.managers.map((handle) =>
        withTimeout(Promise.resolve(handle.manager.destroy()), 10_000).catch(() => {}),
      ),
    );
    for (let round = 0; round < 5; round++) {
      await sleep(650);
      const active = shards.filter((shard) => shard.status !== WebSocketShardStatus.Idle);
      if (active.length === 0) break;
      await Promise.all(active.map((shard) => withTimeout(shard.destroy(), 5_000).catch(() => {})));
    }
    this.managers.length = 0;
    await Promise.all(this.sims.map((sim) => sim.close().catch(() => {})));
    this.sims.length = 0;
  }
}

function shardsOf(manager: WebSocketManager): WebSocketShard[] {
  const { strategy } = manager as unknown as { strategy: { shards?: Map<number, WebSocketShard> } };
  return strategy.shards ? [...strategy.shards.values()] : [];
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  const controller = new AbortController();
  try {
    return await Promise.race([promise, sleep(ms, undefined, { signal: controller.signal })]);
  } finally {
    controller.abort();
  }
}

/** A guild MESSAGE_CREATE with an id the test chooses. */
export function message(
  id: string,
  guildId: string | null,
  content = `message ${id}`,
): Record<string, unknown> {
  const data: Record<string, unknown> = {
    id,
    type: 0,
    channel_id: '900000000000000001',
    author: {
      id: '900000000000000002',
      username: 'tester',
      discriminator: '0',
      global_name: null,
      avatar: null,
    },
    content,
    timestamp: new Date().toISOString(),
    edited_timestamp: null,
    tts: false,
    mention_everyone: false,
    mentions: [],
    mention_roles: [],
    attachments: [],
    embeds: [],
    pinned: false,
  };
  if (guildId !== null) data['guild_id'] = guildId;
  return data;
}

/** Counts occurrences of each key. */
export function tally(keys: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}

/** One guild id on each shard of `shardCount`, to aim dispatches at a shard. */
export function guildPerShard(guildIds: readonly string[], shardCount: number): string[] {
  const out: string[] = [];
  for (let shardId = 0; shardId < shardCount; shardId++) {
    const id = guildIds.find((guildId) => shardOf(guildId, shardCount) === shardId);
    if (id === undefined) throw new Error(`no guild on shard ${shardId}/${shardCount}; use more guilds`);
    out.push(id);
  }
  return out;
}

/**
 * Sends an event type no intent filters to one guild per shard and waits until each shard has it.
 * The gateway delivers a session's dispatches in order, so everything dispatched earlier has
 * arrived too: counts taken afterwards are final.
 */
export async function barrier(
  sim: SimHandle,
  handle: ManagerHandle,
  shardCount: number,
  shardIds: readonly number[],
  tag: string,
): Promise<void> {
  const targets = guildPerShard(sim.guildIds(), shardCount);
  for (const shardId of shardIds)
    await sim.dispatch('CONFORMANCE_BARRIER', { guild_id: targets[shardId], tag });
  await waitFor(
    () =>
      shardIds.every((shardId) =>
        (handle.received.dispatches.get(shardId) ?? []).some(
          (p) => (p.t as string) === 'CONFORMANCE_BARRIER' && (p.d as { tag?: string }).tag === tag,
        ),
      ),
    `barrier ${tag} on shards ${shardIds.join(',')}`,
  );
}
