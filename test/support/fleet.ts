import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { FleetStatusSchema, type FleetStatus } from 'discluster-protocol';
import {
  killMachine,
  makePm2Home,
  pm2Env,
  spawnNode,
  startDiscordSimProcess,
  startNatsServer,
  startTcpProxy,
  stopAll,
  teardownPm2,
  type DiscordSimProcess,
  type NatsClusterHandle,
  type NatsServerHandle,
  type NatsServerOptions,
  type SimJson,
  type SpawnedProcess,
  type TcpProxyHandle,
} from 'discluster-testing';

/**
 * A whole fleet on one machine for integration tests (docs/architecture.md "Testing"): one nats-server, one
 * discord-sim process, MASTER(s) as the foreground `discluster-master`, and per stand-in machine a
 * foreground `discluster-control` with its own PM2_HOME (so its own pm2 daemon) and host_id,
 * running the real bot fixture. Everything is started as a child of the test and ended by pid.
 */

const ROOT = path.resolve(__dirname, '..', '..');
const CONTROL_BIN = path.join(ROOT, 'pm2-module-control', 'dist', 'main.js');
const MASTER_BIN = path.join(ROOT, 'pm2-module-master', 'dist', 'main.js');
const CLI_BIN = path.join(ROOT, 'pm2-module-master', 'dist', 'cli', 'discluster.js');
export const BOT_SCRIPT = path.join(ROOT, 'test', 'fixtures', 'fleetBot.js');
export const TOKEN = 'integration-bot-token-5f1c9e2a';
/** fixtures/fleetBot.js identifies on this window: keep the simulator's equal. */
export const IDENTIFY_WINDOW_MS = 1000;

export interface HostSpec {
  readonly id: string;
  readonly role?: 'active' | 'standby';
  readonly cores?: number;
  /** Route this host's NATS traffic (CONTROL and its clusters) through a cuttable TCP proxy. */
  readonly viaProxy?: boolean;
  /** Extra `DISCLUSTER_*` variables for this host's CONTROL, over the fleet's (e.g. wrong credentials). */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Words before CONTROL's command, e.g. `ip netns exec <ns>`: CONTROL runs in that network
   * namespace, and so do the pm2 daemon it starts and every cluster (children inherit it).
   */
  readonly prefix?: readonly string[];
}

/**
 * How the fleet reaches a secured NATS (test/natsSecurity.*): the server's options and the
 * `DISCLUSTER_NATS_*` settings of each kind of process. `DISCLUSTER_NATS_URL` defaults to the
 * server's `url` (or the host's proxy) and may be overridden here.
 */
export interface FleetNatsOptions {
  readonly server?: NatsServerOptions;
  readonly master?: Readonly<Record<string, string>>;
  readonly control?: Readonly<Record<string, string>>;
  /** For `discluster` (status, which, …). */
  readonly cli?: Readonly<Record<string, string>>;
}

export interface FleetOptions {
  readonly bot: string;
  readonly hosts: readonly HostSpec[];
  readonly shards: number;
  readonly maxConcurrency: number;
  readonly guilds: number;
  readonly leaseMs: number;
  readonly hostTimeoutMs: number;
  readonly leaderLeaseMs?: number;
  readonly masterToken?: string;
  /** A secured NATS (TLS, authentication, permissions); default: a plain local nats-server. */
  readonly nats?: FleetNatsOptions;
  /**
   * Run on this NATS cluster (startNatsCluster) instead of a nats-server of the fleet's own: every
   * process gets every node's URL, and the eavesdropper and listeners use the cluster. The caller
   * owns the cluster (starts, faults and stops it); the fleet never stops it.
   */
  readonly natsCluster?: NatsClusterHandle;
  /** `DISCLUSTER_KV_REPLICAS` of MASTER and CONTROL (default: theirs, 1). */
  readonly kvReplicas?: number;
  /** The bot CONTROL runs (default fixtures/fleetBot.js); it must identify on IDENTIFY_WINDOW_MS. */
  readonly botScript?: string;
  /** Extra discord-sim flags, named as on its command line (`{ 'session-start-total': 14 }`). */
  readonly sim?: Readonly<Record<string, string | number | boolean>>;
  /**
   * A nats-server and discord-sim started elsewhere (in network namespaces: test/faults/labFleet),
   * whose `url` and `admin` the test process can reach; the fleet stops them. `nats` and `sim`
   * options are then ignored.
   */
  readonly servers?: () => Promise<{ nats: NatsServerHandle; sim: DiscordSimProcess }>;
}

export interface Host {
  readonly spec: HostSpec;
  readonly home: string;
  control: SpawnedProcess;
  readonly proxy: TcpProxyHandle | null;
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export class Fleet {
  public readonly hosts = new Map<string, Host>();
  public readonly masters: SpawnedProcess[] = [];
  /** Subjects of NATS messages that carried the bot token in clear (must stay empty: promise 4). */
  public readonly tokenSightings: string[] = [];
  /** NATS messages the eavesdropper saw (a subscriber to `>`, as any client without permissions could). */
  public natsMessagesSeen = 0;
  private eavesdropper: NatsConnection | undefined;
  /** Client URLs of the fleet's NATS: the one server's, or every node of `options.natsCluster`. */
  public readonly natsServers: readonly string[];
  /** `natsServers` as a `DISCLUSTER_NATS_URL` value (comma-separated). */
  public readonly natsUrl: string;

  private constructor(
    public readonly options: FleetOptions,
    private readonly server: NatsServerHandle | undefined,
    public readonly sim: DiscordSimProcess,
  ) {
    this.natsServers = server ? [server.url] : [...(options.natsCluster?.urls ?? [])];
    this.natsUrl = this.natsServers.join(',');
  }

  /** The fleet's own nats-server; a fleet on `options.natsCluster` has none. */
  public get nats(): NatsServerHandle {
    if (!this.server) throw new Error('this fleet runs on an external NATS cluster: use natsServers');
    return this.server;
  }

  public static async start(options: FleetOptions): Promise<Fleet> {
    if (options.servers) {
      const { nats, sim } = await options.servers();
      return Fleet.startHosts(new Fleet(options, nats, sim));
    }
    if (options.natsCluster && options.nats?.server)
      throw new Error('natsCluster and nats.server exclude each other');
    const nats = options.natsCluster
      ? undefined
      : await startNatsServer({ jetstream: true, ...options.nats?.server });
    let sim: DiscordSimProcess;
    try {
      sim = await startDiscordSimProcess(simFlags(options));
    } catch (error) {
      await nats?.stop();
      throw error;
    }
    return Fleet.startHosts(new Fleet(options, nats, sim));
  }

  private static async startHosts(fleet: Fleet): Promise<Fleet> {
    try {
      await fleet.eavesdrop();
      for (const spec of fleet.options.hosts) await fleet.startHost(spec);
    } catch (error) {
      // Nothing started here may outlive a failed start (the caller has no fleet to stop).
      await fleet.stop().catch(() => undefined);
      throw error;
    }
    return fleet;
  }

  /** Watches every NATS message of the fleet for the bot token. */
  private async eavesdrop(): Promise<void> {
    // A secured NATS (options.nats.server: TLS, authentication, permissions) admits no anonymous
    // client; the natsSecurity tests check who may read what themselves.
    if (this.options.nats?.server) return;
    this.eavesdropper = await connect({
      servers: [...this.natsServers],
      // On a cluster, a killed node only moves the eavesdropper to another one.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
    const needle = Buffer.from(TOKEN);
    this.eavesdropper.subscribe('>', {
      callback: (_error, msg) => {
        this.natsMessagesSeen++;
        if (Buffer.from(msg.data).includes(needle)) this.tokenSightings.push(msg.subject);
      },
    });
    await this.eavesdropper.flush();
  }

  public async startHost(spec: HostSpec): Promise<Host> {
    const home = makePm2Home();
    // The proxy forwards to one port: a host behind it reaches one node of a cluster only.
    const proxy = spec.viaProxy
      ? await startTcpProxy(this.server?.port ?? portOf(this.natsServers[0]!))
      : null;
    const host: Host = { spec, home, proxy, control: this.spawnControl(spec, home, proxy) };
    this.hosts.set(spec.id, host);
    return host;
  }

  private spawnControl(spec: HostSpec, home: string, proxy: TcpProxyHandle | null): SpawnedProcess {
    return spawnNode(CONTROL_BIN, [], {
      prefix: spec.prefix,
      env: {
        ...pm2Env(home),
        DISCLUSTER_NATS_URL: proxy ? proxy.url('nats') : this.natsUrl,
        DISCLUSTER_BOT: this.options.bot,
        ...this.kvReplicasEnv(),
        DISCLUSTER_HOST_ID: spec.id,
        DISCLUSTER_ROLE: spec.role ?? 'active',
        DISCLUSTER_SCRIPT: this.options.botScript ?? BOT_SCRIPT,
        DISCLUSTER_HEARTBEAT_MS: '300',
        DISCLUSTER_RETRY_MS: '500',
        ...(spec.cores ? { DISCLUSTER_CORES: String(spec.cores) } : {}),
        DISCLUSTER_LOG_LEVEL: 'debug',
        ...this.options.nats?.control,
        ...spec.env,
      },
    });
  }

  /** Starts a CONTROL again on a host whose CONTROL was stopped (same PM2_HOME). */
  public restartControl(hostId: string): void {
    const host = this.host(hostId);
    host.control = this.spawnControl(host.spec, host.home, host.proxy);
  }

  /** `prefix`: words before its command, e.g. `ip netns exec <ns>` to run it in a network namespace. */
  public startMaster(extraEnv: Record<string, string> = {}, prefix?: readonly string[]): SpawnedProcess {
    const master = spawnNode(MASTER_BIN, [], {
      prefix,
      env: {
        DISCLUSTER_NATS_URL: this.natsUrl,
        DISCLUSTER_BOT: this.options.bot,
        ...this.kvReplicasEnv(),
        DISCLUSTER_TOKEN: this.options.masterToken ?? TOKEN,
        DISCLUSTER_DISCORD_API: this.sim.rest,
        DISCLUSTER_EXPECTED_HOSTS: String(this.options.hosts.length),
        DISCLUSTER_WAIT_FOR_HOSTS_MS: '20000',
        DISCLUSTER_HOST_TIMEOUT_MS: String(this.options.hostTimeoutMs),
        DISCLUSTER_LEASE_MS: String(this.options.leaseMs),
        DISCLUSTER_LEADER_LEASE_MS: String(this.options.leaderLeaseMs ?? 3000),
        DISCLUSTER_LOG_LEVEL: 'debug',
        ...this.options.nats?.master,
        ...extraEnv,
      },
    });
    this.masters.push(master);
    return master;
  }

  private kvReplicasEnv(): Record<string, string> {
    return this.options.kvReplicas ? { DISCLUSTER_KV_REPLICAS: String(this.options.kvReplicas) } : {};
  }

  public host(hostId: string): Host {
    const host = this.hosts.get(hostId);
    if (!host) throw new Error(`no host ${hostId}`);
    return host;
  }

  /** Runs the `discluster` CLI against this fleet. */
  public async cli(...args: string[]): Promise<CliResult> {
    try {
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI_BIN, ...args], {
        env: {
          ...process.env,
          DISCLUSTER_NATS_URL: this.natsUrl,
          DISCLUSTER_BOT: this.options.bot,
          ...this.options.nats?.cli,
        },
        maxBuffer: 16 * 1024 * 1024,
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code?: number; stdout?: string; stderr?: string };
      return {
        code: typeof failed.code === 'number' ? failed.code : 1,
        stdout: failed.stdout ?? '',
        stderr: failed.stderr ?? '',
      };
    }
  }

  public async status(): Promise<FleetStatus> {
    const result = await this.cli('status', '--json', '--timeout-ms', '3000');
    if (result.code !== 0) throw new Error(`discluster status failed (${result.code}): ${result.stderr}`);
    return FleetStatusSchema.parse(JSON.parse(result.stdout));
  }

  public state(): Promise<SimJson> {
    return this.sim.state();
  }

  /** `POST /traffic`: MESSAGE_CREATE load with nonces `<id>:<n>`, n < total. */
  public async startTraffic(
    eventsPerSecond: number,
    seconds: number,
  ): Promise<{ id: number; total: number }> {
    const response = await fetch(`${this.sim.admin}/traffic`, {
      method: 'POST',
      body: JSON.stringify({ eventsPerSecond, seconds }),
    });
    return (await response.json()) as { id: number; total: number };
  }

  public async trafficDone(id: number): Promise<boolean> {
    return ((await (await fetch(`${this.sim.admin}/traffic/${id}`)).json()) as { done: boolean }).done;
  }

  /** Every JSON line the bot processes of `hostId` wrote (pm2 keeps them per process in $PM2_HOME/logs). */
  public botLines(hostId?: string): Record<string, unknown>[] {
    const homes = hostId ? [this.host(hostId).home] : [...this.hosts.values()].map((host) => host.home);
    const lines: Record<string, unknown>[] = [];
    for (const home of homes) {
      const dir = path.join(home, 'logs');
      if (!fs.existsSync(dir)) continue;
      for (const file of fs
        .readdirSync(dir)
        .filter((name) => name.endsWith('-out.log') && name.includes('-cluster-'))) {
        for (const line of fs.readFileSync(path.join(dir, file), 'utf8').split('\n')) {
          if (!line.startsWith('{')) continue;
          try {
            lines.push(JSON.parse(line) as Record<string, unknown>);
          } catch {
            // A line cut by a SIGKILL.
          }
        }
      }
    }
    return lines;
  }

  /** Unique MESSAGE_CREATE nonces the bot handlers received, fleet-wide. */
  public receivedNonces(): Set<string> {
    return new Set(
      this.botLines()
        .filter((line) => line['t'] === 'msg')
        .map((line) => String(line['nonce'])),
    );
  }

  /** SIGKILL a stand-in machine: its CONTROL, pm2 daemon and every cluster, at once. */
  public async killHost(hostId: string): Promise<void> {
    const host = this.host(hostId);
    await killMachine(host.home);
    await host.control.exited;
  }

  /** The tail of every MASTER's and CONTROL's output, for a failed test's message. */
  public diagnostics(): string {
    const tail = (lines: readonly string[]) =>
      lines.length === 0 ? '(no line on stdout yet)' : lines.slice(-40).join('\n');
    const parts = this.masters.map(
      (master, i) =>
        `--- MASTER ${i} (${master.vitals()})\n${tail(master.lines)}\n${master.stderr().slice(-3000)}`,
    );
    for (const [id, host] of this.hosts)
      parts.push(
        `--- CONTROL ${id} (${host.control.vitals()})\n${tail(host.control.lines)}\n${host.control.stderr().slice(-3000)}`,
      );
    return parts.join('\n');
  }

  /** Ends everything, also after a failed test. */
  public async stop(): Promise<void> {
    try {
      await this.eavesdropper?.close().catch(() => undefined);
      await stopAll();
      for (const host of this.hosts.values()) {
        await teardownPm2(host.home).catch(() => undefined);
        await host.proxy?.close().catch(() => undefined);
      }
      await this.sim.stop();
    } finally {
      // A cluster of the caller's stays up: the caller stops it.
      await this.server?.stop();
    }
  }
}

/** The discord-sim flags of a fleet (its bot token, guilds, shards, identify window, `options.sim`). */
export function simFlags(options: FleetOptions): Record<string, string | number | boolean> {
  return {
    token: TOKEN,
    guilds: options.guilds,
    shards: options.shards,
    'max-concurrency': options.maxConcurrency,
    'identify-window-ms': IDENTIFY_WINDOW_MS,
    ...options.sim,
  };
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

/** Shards ready per the simulator's live sessions: shard id → number of live sessions. */
export function liveSessionsByShard(state: SimJson): Map<number, number> {
  const counts = new Map<number, number>();
  for (const session of state['liveSessions'] as { shard: [number, number] }[])
    counts.set(session.shard[0], (counts.get(session.shard[0]) ?? 0) + 1);
  return counts;
}

export function readyShards(status: FleetStatus): number[] {
  return status.hosts
    .flatMap((host) => host.clusters.flatMap((cluster) => cluster.shards))
    .filter((shard) => shard.state === 'ready')
    .map((shard) => shard.id)
    .sort((a, b) => a - b);
}
