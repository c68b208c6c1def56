/**
 * The harness the standalone-cluster tests share (not a test file). For process tests: discord-sim
 * in its own process with its GET /gateway/bot answer, a standalone cluster process
 * (`fixtures/standaloneCluster.js`, the built SDK as a bot runs it) started from a config file, the
 * JSON lines a process wrote, and the per-file nats-server, temp dir and simulator cleanup around
 * them. For in-process tests: a nats-server and discord-sim per file, and standalone clusters on
 * them, stopped after each test.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  spawnNode,
  startDiscordSimProcess,
  startNatsServer,
  stopAll,
  type DiscordSimProcess,
  type NatsServerHandle,
  type SpawnedProcess,
} from 'discluster-testing';
import type { ConnectionOptions, NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { Cluster, type ClusterAssignment, type ClusterOptions } from '../src';
import { Cleanup, connectNats } from './helpers';

export const STANDALONE_FIXTURE = path.join(__dirname, 'fixtures', 'standaloneCluster.js');
export const GUILDS_INTENT = 1;
export const GUILD_MESSAGES_INTENT = 1 << 9;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON read back from processes
export type JsonLine = Record<string, any>;

/** What a test file's processes run against: one nats-server and one temp dir for the file. */
export interface StandaloneHarness {
  readonly nats: NatsServerHandle;
  readonly tmp: string;
  /** The simulators of the running test (stopped after it). */
  readonly sims: DiscordSimProcess[];
  /** A NATS connection of the test's own to the file's nats-server, closed after the test. */
  connectNats(name: string): Promise<NatsConnection>;
}

/**
 * Registers the file's hooks: a nats-server and a temp dir (`tmpPrefix`) for the whole file; after
 * each test every process it spawned is stopped by pid (`stopAll`), then the test's NATS
 * connections close, then `afterEachTest` runs (the file's own proxies), then its simulators stop.
 */
export function useStandaloneHarness(
  tmpPrefix: string,
  afterEachTest?: () => Promise<void>,
): StandaloneHarness {
  let nats: NatsServerHandle | undefined;
  let tmp: string | undefined;
  const sims: DiscordSimProcess[] = [];
  const connections: NatsConnection[] = [];
  beforeAll(async () => {
    nats = await startNatsServer();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), tmpPrefix));
  });
  afterEach(async () => {
    await stopAll();
    for (const nc of connections.splice(0)) await nc.close();
    await afterEachTest?.();
    for (const sim of sims.splice(0)) await sim.stop();
  });
  afterAll(async () => {
    await nats?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });
  return {
    get nats(): NatsServerHandle {
      if (!nats) throw new Error('nats-server not started yet (use the harness inside a test)');
      return nats;
    },
    get tmp(): string {
      if (!tmp) throw new Error('temp dir not made yet (use the harness inside a test)');
      return tmp;
    },
    sims,
    async connectNats(name) {
      if (!nats) throw new Error('nats-server not started yet (use the harness inside a test)');
      const nc = await connectNats(nats.url, name);
      connections.push(nc);
      return nc;
    },
  };
}

/** Every JSON line a process wrote to stdout, in order (anything else it printed is skipped). */
export function jsonLines(proc: { readonly lines: readonly string[] }): JsonLine[] {
  return proc.lines.flatMap((text) => {
    try {
      return [JSON.parse(text) as JsonLine];
    } catch {
      return [];
    }
  });
}

/** The simulator the fleet-mode tests run against: 2 shards, both identified in one 200 ms window. */
export const TWO_SHARD_SIM = {
  guilds: 100,
  shards: 2,
  'max-concurrency': 2,
  'identify-window-ms': 200,
  'heartbeat-interval-ms': 1000,
} as const;

/**
 * discord-sim in its own process, with command-line flags and `token`, added to `sims` (the
 * caller stops them), and its GET /gateway/bot answer for that token.
 */
export async function startSimWithGateway(
  sims: DiscordSimProcess[],
  token: string,
  flags: Readonly<Record<string, number>>,
): Promise<{ sim: DiscordSimProcess; gateway: JsonLine }> {
  const sim = await startDiscordSimProcess({ token, ...flags });
  sims.push(sim);
  const response = await fetch(`${sim.rest}/gateway/bot`, { headers: { authorization: `Bot ${token}` } });
  return { sim, gateway: (await response.json()) as JsonLine };
}

/**
 * Starts the standalone cluster fixture on `config` (see the comment at the top of the fixture).
 * The config, token included, travels in a 0600 file in `dir`, never in argv or the environment.
 */
export function startStandaloneCluster(dir: string, name: string, config: object): SpawnedProcess {
  const configFile = path.join(dir, `cluster-${name}-${Date.now()}.json`);
  fs.writeFileSync(configFile, JSON.stringify(config), { mode: 0o600 });
  return spawnNode(STANDALONE_FIXTURE, [configFile]);
}

/** A simulator's GET /gateway/bot answer for `token`, typed as an assignment's `gateway`. */
export async function gatewayOf(
  sim: DiscordSimProcess,
  token: string,
): Promise<ClusterAssignment['gateway']> {
  const response = await fetch(`${sim.rest}/gateway/bot`, { headers: { authorization: `Bot ${token}` } });
  return (await response.json()) as ClusterAssignment['gateway'];
}

/**
 * A standalone `Cluster` in the test's own process (for what only an in-process cluster shows: its
 * objects, its build seams, its throttler's budget), without the SDK's signal and process-error
 * handlers. Cluster 0 of 1, serving `shardIds` (default: all shards 0..shardCount-1).
 */
export function inProcessCluster(
  base: {
    readonly token: string;
    readonly bot: string;
    readonly gateway: ClusterAssignment['gateway'];
    readonly shardCount: number;
    readonly shardIds?: readonly number[];
    readonly nats: NatsConnection | ConnectionOptions;
    /** A reshard's new generation: bot code gets only its shards' READY and guild loading. */
    readonly standby?: boolean;
    /** The local address its gateway and REST sockets leave from. */
    readonly sourceAddress?: string;
  },
  options: Partial<Omit<ClusterOptions, 'standalone'>> = {},
): Cluster {
  const shardIds = base.shardIds
    ? [...base.shardIds]
    : Array.from({ length: base.shardCount }, (_, id) => id);
  return new Cluster({
    intents: 1,
    handleSignals: false,
    handleProcessErrors: false,
    ...options,
    standalone: {
      assignment: {
        clusterId: 0,
        shardIds,
        shardCount: base.shardCount,
        clusterIds: [0],
        bot: base.bot,
        token: base.token,
        gateway: base.gateway,
        ...(base.standby ? { standby: true } : {}),
        ...(base.sourceAddress !== undefined ? { sourceAddress: base.sourceAddress } : {}),
      },
      nats: base.nats,
    },
  });
}

/** A nats-server and a discord-sim process shared by the tests of a file or describe block. */
export interface NatsAndSim {
  readonly nats: NatsServerHandle;
  readonly sim: DiscordSimProcess;
}

/**
 * Registers hooks (in the file or the describe block that calls it) that start a nats-server and a
 * discord-sim process for `token` with command-line `flags` before its tests, and stop them after.
 */
export function useNatsAndSim(token: string, flags: Readonly<Record<string, number>>): NatsAndSim {
  let nats: NatsServerHandle | undefined;
  let sim: DiscordSimProcess | undefined;
  beforeAll(async () => {
    nats = await startNatsServer();
    sim = await startDiscordSimProcess({ token, ...flags });
  });
  afterAll(async () => {
    await sim?.stop();
    await nats?.stop();
  });
  return {
    get nats(): NatsServerHandle {
      if (!nats) throw new Error('nats-server not started yet (use it inside a test)');
      return nats;
    },
    get sim(): DiscordSimProcess {
      if (!sim) throw new Error('discord-sim not started yet (use it inside a test)');
      return sim;
    },
  };
}

/** A file's nats-server and discord-sim, and the in-process clusters its tests run on them. */
export interface InProcessClusters extends NatsAndSim {
  /** Steps run after each test, newest first (the clusters' stops and connections are in it). */
  readonly cleanup: Cleanup;
  /**
   * A standalone cluster of `bot` (not started) on its own NATS connection, with the simulator's
   * gateway and REST; it is stopped, and the connection closed, after the test.
   */
  cluster(
    bot: string,
    shards: {
      readonly shardCount: number;
      readonly shardIds?: readonly number[];
      readonly standby?: boolean;
    },
    options?: Partial<Omit<ClusterOptions, 'standalone'>>,
  ): Promise<Cluster>;
}

/**
 * Registers, in the file or describe block that calls it, a nats-server and a discord-sim process
 * for `token` (see {@link useNatsAndSim}) and the cleanup after each test of the clusters made with
 * {@link InProcessClusters.cluster}.
 */
export function useInProcessClusters(
  token: string,
  flags: Readonly<Record<string, number>>,
): InProcessClusters {
  const env = useNatsAndSim(token, flags);
  const cleanup = new Cleanup();
  afterEach(async () => {
    await cleanup.run();
  });
  return {
    get nats(): NatsServerHandle {
      return env.nats;
    },
    get sim(): DiscordSimProcess {
      return env.sim;
    },
    cleanup,
    async cluster(bot, shards, options = {}) {
      const nc = await connectNats(env.nats.url, bot);
      cleanup.add(() => nc.close());
      const gateway = { ...(await gatewayOf(env.sim, token)), api: env.sim.rest };
      const cluster = inProcessCluster({ token, bot, gateway, nats: nc, ...shards }, options);
      cleanup.add(() => cluster.stop());
      return cluster;
    },
  };
}
