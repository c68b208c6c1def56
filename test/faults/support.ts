import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { fleetSubjects, type FleetStatus } from 'discluster-protocol';
import {
  pm2Env,
  pm2List,
  startTcpProxy,
  waitFor,
  type SimJson,
  type SpawnedProcess,
  type TcpProxyHandle,
} from 'discluster-testing';
// The simulator's own guild model: its guild ids are deterministic from `--guilds` and `--seed`, and
// traffic nonce n goes to guild index `n % guilds`. checkDeliveryModel() checks it against what the bot saw.
import { GuildStore } from 'discord-sim/dist/guilds';
import { Fleet, liveSessionsByShard, readyShards, type FleetOptions } from '../support/fleet';
import { fleetViolations, type FleetViolations } from '../support/invariants';

/**
 * The fault matrix's harness (docs/reliability.md): a {@link Fleet} plus what every fault test
 * checks — at-least-once delivery of the simulator's MESSAGE_CREATE traffic to bot code, counted by
 * nonce; never two live sessions of one shard (the simulator's counter, and our own poll of its live
 * sessions); no identify inside its rate-limit window — and the recovery time, which is logged (the
 * bound in each test's name is a liveness timeout, never a measured duration asserted against).
 */

/** A traffic run of the simulator: nonces `<id>:<n>`, n < total, n dispatched no earlier than `earliestAt(n)`. */
export interface Traffic {
  readonly id: number;
  readonly total: number;
  readonly eventsPerSecond: number;
  /** The simulator's clock (ms since epoch) when the run started. */
  readonly startedAt: number;
}

/**
 * When nonce `n` was dispatched at the earliest: the simulator sends it at the first 10 ms tick at
 * which `floor((now - startedAt) * eventsPerSecond / 1000) >= n`.
 */
export function earliestDispatchAt(traffic: Traffic, n: number): number {
  return traffic.startedAt + (n * 1000) / traffic.eventsPerSecond;
}

export interface Delivery {
  readonly dispatched: number;
  /** Nonces of the run that reached bot code at least once. */
  readonly delivered: number;
  /** Nonces the test's rule allowed to be lost (their shard had no session when they were sent). */
  readonly exempt: number;
  /** Nonces that had to arrive and did not: must be empty. */
  readonly missing: readonly number[];
}

export interface Invariants extends FleetViolations {
  readonly maxLivePerShard: number;
  readonly identifies: number;
  readonly resumes: number;
}

/** One line of docs/reliability.md, as a test measured it. */
export interface FaultResult {
  readonly fault: string;
  readonly delivery: Delivery;
  readonly invariants: Invariants;
  readonly recoveryMs: number | null;
  readonly notes?: Record<string, unknown>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Runs in a child (the test process never requires pm2): sends one `fleetbot:test` message to the
// named process of the daemon of PM2_HOME, the way CONTROL sends its own messages.
const SEND_SCRIPT = `
const pm2 = require(process.env.SEND_PM2);
const fail = (why) => { process.stderr.write(String(why)); process.exit(1); };
pm2.connect((error) => {
  if (error) fail(error);
  pm2.list((listError, list) => {
    if (listError) fail(listError);
    const proc = list.find((p) => p.name === process.env.SEND_NAME);
    if (!proc) fail('no process ' + process.env.SEND_NAME);
    const packet = { type: 'process:msg', topic: 'fleetbot:test', data: JSON.parse(process.env.SEND_DATA) };
    pm2.sendDataToProcessId(proc.pm_id, packet, (sendError) => {
      if (sendError) fail(sendError);
      pm2.disconnect();
      process.exit(0);
    });
  });
});
`;

/** A cluster process as the pm2 daemon of its host lists it. */
export interface ClusterProcess {
  readonly name: string;
  readonly clusterId: number;
  readonly pid: number;
  readonly status: string;
}

export class FaultRig {
  /** Every fleet event (`cluster.failed`, `fatal`) published since the start. */
  public readonly events: Record<string, unknown>[] = [];
  /** Most live sessions one shard had at any poll of the simulator. */
  public maxLivePerShard = 0;
  private readonly guilds: GuildStore;
  private readonly proxies: TcpProxyHandle[] = [];
  private polling = true;
  private poller: Promise<void> = Promise.resolve();
  private observer: NatsConnection | undefined;

  private constructor(public readonly fleet: Fleet) {
    const seed = fleet.options.sim?.['seed'];
    this.guilds = new GuildStore(fleet.options.guilds, typeof seed === 'number' ? seed : 1);
  }

  public static async start(options: FleetOptions): Promise<FaultRig> {
    const rig = new FaultRig(await Fleet.start(options));
    try {
      await rig.observe();
    } catch (error) {
      await rig.stop();
      throw error;
    }
    return rig;
  }

  public get shards(): number {
    return this.fleet.options.shards;
  }

  /** Subscribes to fleet events (reconnecting for as long as it takes) and polls live sessions. */
  private async observe(): Promise<void> {
    this.observer = await connect({
      servers: [...this.fleet.natsServers],
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
    this.observer.subscribe(fleetSubjects(this.fleet.options.bot).allEvents, {
      callback: (_error, msg) => {
        try {
          this.events.push(JSON.parse(Buffer.from(msg.data).toString('utf8')) as Record<string, unknown>);
        } catch {
          // Not an event of ours.
        }
      },
    });
    await this.observer.flush();
    this.poller = (async () => {
      while (this.polling) {
        try {
          for (const count of liveSessionsByShard(await this.fleet.state()).values())
            this.maxLivePerShard = Math.max(this.maxLivePerShard, count);
        } catch {
          // The simulator is being stopped.
        }
        await sleep(100);
      }
    })();
  }

  /** Ends every process of the fleet, also after a failed test. */
  public async stop(): Promise<void> {
    this.polling = false;
    await this.poller;
    await this.observer?.close().catch(() => undefined);
    try {
      await this.fleet.stop();
    } finally {
      for (const proxy of this.proxies) await proxy.close().catch(() => undefined);
    }
  }

  // ---- processes --------------------------------------------------------------------------------

  /** A MASTER that reaches NATS only through a TCP proxy the test can cut. */
  public async startMasterViaProxy(): Promise<{ master: SpawnedProcess; proxy: TcpProxyHandle }> {
    const proxy = await startTcpProxy(this.fleet.nats.port);
    this.proxies.push(proxy);
    return { master: this.fleet.startMaster({ DISCLUSTER_NATS_URL: proxy.url('nats') }), proxy };
  }

  /** The cluster processes the pm2 daemon of `hostId` runs, by cluster id. */
  public async clusterProcesses(hostId: string): Promise<ClusterProcess[]> {
    const pattern = new RegExp(`^discluster-${this.fleet.options.bot}-cluster-(\\d+)$`);
    const found: ClusterProcess[] = [];
    for (const proc of (await pm2List(this.fleet.host(hostId).home)).processes) {
      const match = pattern.exec(String(proc['name']));
      if (!match) continue;
      found.push({
        name: String(proc['name']),
        clusterId: Number(match[1]),
        pid: Number(proc['pid']),
        status: String(proc['pm2_env']?.['status']),
      });
    }
    return found.sort((a, b) => a.clusterId - b.clusterId);
  }

  public async clusterProcess(hostId: string, clusterId: number): Promise<ClusterProcess> {
    const found = (await this.clusterProcesses(hostId)).find((proc) => proc.clusterId === clusterId);
    if (!found) throw new Error(`host ${hostId} runs no cluster ${clusterId}`);
    return found;
  }

  /**
   * Blocks the event loop of a cluster process for good (fixtures/fleetBot.js runs `for (;;);` on a
   * `fleetbot:test` pm2 message), as bot code stuck in a synchronous loop would.
   */
  public async hangCluster(hostId: string, clusterId: number): Promise<void> {
    await promisify(execFile)(process.execPath, ['-e', SEND_SCRIPT], {
      env: {
        ...process.env,
        ...pm2Env(this.fleet.host(hostId).home),
        SEND_PM2: require.resolve('pm2'),
        SEND_NAME: `discluster-${this.fleet.options.bot}-cluster-${clusterId}`,
        SEND_DATA: JSON.stringify({ action: 'hang' }),
      },
      timeout: 30_000,
    });
  }

  /** While set, cluster `clusterId` of `hostId` exits at every start (a marker file fleetBot.js checks). */
  public setCrashing(hostId: string, clusterId: number, crashing: boolean): void {
    const marker = path.join(this.fleet.host(hostId).home, `fleetbot-crash-${clusterId}`);
    if (crashing) fs.writeFileSync(marker, 'crash at start\n');
    else fs.rmSync(marker, { force: true });
  }

  /** Stops the nats-server (SIGTERM to its pid) and resolves once it is gone. */
  public async stopNats(): Promise<void> {
    const pid = this.fleet.nats.pid;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    await waitFor(() => !fs.existsSync(`/proc/${pid}`), {
      description: `nats-server ${pid} to exit`,
      timeoutMs: 30_000,
    });
  }

  /** Starts the nats-server again on the same port and JetStream store (stopping it first if it runs). */
  public async restartNats(): Promise<void> {
    await this.fleet.nats.restart();
  }

  // ---- the simulator ------------------------------------------------------------------------------

  public async state(): Promise<SimJson> {
    return this.fleet.state();
  }

  public async admin(route: string): Promise<void> {
    const response = await fetch(`${this.fleet.sim.admin}${route}`, { method: 'POST' });
    if (!response.ok) throw new Error(`POST ${route}: ${response.status} ${await response.text()}`);
  }

  public async startTraffic(eventsPerSecond: number, seconds: number): Promise<Traffic> {
    const { id, total } = await this.fleet.startTraffic(eventsPerSecond, seconds);
    const run = (await (await fetch(`${this.fleet.sim.admin}/traffic/${id}`)).json()) as {
      startedAt: number;
    };
    return { id, total, eventsPerSecond, startedAt: run.startedAt };
  }

  /** How many nonces of the run the simulator has dispatched so far. */
  public async trafficSent(traffic: Traffic): Promise<number> {
    return ((await (await fetch(`${this.fleet.sim.admin}/traffic/${traffic.id}`)).json()) as { sent: number })
      .sent;
  }

  /** Successful IDENTIFYs per shard, in order (the simulator's clock). */
  public async identifiesByShard(): Promise<Map<number, number[]>> {
    const records = (await (await fetch(`${this.fleet.sim.admin}/identifies`)).json()) as {
      at: number;
      shard: [number, number];
      outcome: string;
    }[];
    const byShard = new Map<number, number[]>();
    for (const record of records)
      if (record.outcome === 'ready')
        byShard.set(record.shard[0], [...(byShard.get(record.shard[0]) ?? []), record.at]);
    return byShard;
  }

  /** Every shard has exactly one live session. */
  public async allShardsLive(): Promise<boolean> {
    const live = liveSessionsByShard(await this.state());
    for (let shard = 0; shard < this.shards; shard++) if (live.get(shard) !== 1) return false;
    return true;
  }

  /** Clusters the hung-cluster watchdog of any CONTROL killed so far (false alarms count too). */
  public watchdogKills(): number {
    return [...this.fleet.hosts.values()]
      .flatMap((host) => host.control.lines)
      .filter((line) => line.includes('cluster stopped reporting')).length;
  }

  public async invariants(): Promise<Invariants> {
    const state = await this.state();
    return {
      ...fleetViolations(state),
      maxLivePerShard: this.maxLivePerShard,
      identifies: state['identifies'] as number,
      resumes: state['resumes'] as number,
    };
  }

  // ---- fleet ------------------------------------------------------------------------------------

  /** Waits until `discluster status` shows every shard ready (and `also`), and returns that status. */
  public async allReady(
    description: string,
    timeoutMs: number,
    also: (status: FleetStatus) => boolean = () => true,
  ): Promise<FleetStatus> {
    let last: FleetStatus | undefined;
    try {
      await waitFor(
        async () => {
          last = await this.fleet.status();
          return readyShards(last).length === this.shards && also(last);
        },
        { description, timeoutMs, intervalMs: 250 },
      );
    } catch (error) {
      throw new Error(`${String(error)}\nlast status: ${JSON.stringify(last)}\n${this.fleet.diagnostics()}`);
    }
    return last!;
  }

  /**
   * Sends one MESSAGE_CREATE to every guild and waits for all of them at the bot (a healthy fleet
   * delivers everything), and checks that each arrived on the shard {@link shardOfNonce} names.
   */
  public async checkDeliveryModel(timeoutMs = 30_000): Promise<void> {
    const guilds = this.fleet.options.guilds;
    const traffic = await this.startTraffic(100, guilds / 100);
    const delivery = await this.delivery(traffic, { timeoutMs });
    if (delivery.missing.length > 0)
      throw new Error(`a healthy fleet lost ${delivery.missing.length} of ${guilds} messages`);
    for (const line of this.fleet.botLines()) {
      if (line['t'] !== 'msg') continue;
      const [id, n] = String(line['nonce']).split(':').map(Number);
      if (id !== traffic.id || n === undefined) continue;
      if (Number(line['shardId']) !== this.shardOfNonce(n))
        throw new Error(
          `nonce ${traffic.id}:${n} arrived on shard ${String(line['shardId'])}, not ${this.shardOfNonce(n)}`,
        );
    }
  }

  /** The shard the simulator routes nonce `n` of any traffic run to. */
  public shardOfNonce(n: number): number {
    return this.guilds.shardOf(n % this.fleet.options.guilds, this.fleet.options.shards);
  }

  /**
   * Waits for the run to end and for every nonce that must arrive (all of them, unless `exempt`
   * says a nonce's shard had no session when it was sent) to reach bot code; returns the count.
   * Missing nonces are returned, not thrown: the test asserts on them.
   */
  public async delivery(
    traffic: Traffic,
    options: { timeoutMs: number; exempt?: (n: number) => boolean },
  ): Promise<Delivery> {
    await waitFor(() => this.fleet.trafficDone(traffic.id), {
      description: `traffic run ${traffic.id} to end`,
      timeoutMs: options.timeoutMs + (traffic.total / traffic.eventsPerSecond) * 1000,
      intervalMs: 250,
    });
    const required: number[] = [];
    let exempt = 0;
    for (let n = 0; n < traffic.total; n++) {
      if (options.exempt?.(n)) exempt++;
      else required.push(n);
    }
    let received = new Set<string>();
    const missingNow = () => required.filter((n) => !received.has(`${traffic.id}:${n}`));
    await waitFor(
      () => {
        received = this.fleet.receivedNonces();
        return missingNow().length === 0;
      },
      {
        description: `the ${required.length} MESSAGE_CREATE of run ${traffic.id} that must arrive`,
        timeoutMs: options.timeoutMs,
        intervalMs: 500,
      },
    ).catch(() => undefined);
    received = this.fleet.receivedNonces();
    let delivered = 0;
    for (let n = 0; n < traffic.total; n++) if (received.has(`${traffic.id}:${n}`)) delivered++;
    return { dispatched: traffic.total, delivered, exempt, missing: missingNow() };
  }
}

/**
 * Measures recovery from the moment the fault is injected: `RecoveryClock.start()` right before
 * injecting it, then `until()` polls a condition (the bound is the liveness timeout from the test's
 * name, counted from the start) and returns how long recovery took. The clock starts when it is
 * made and only `start()` makes one: an unstarted clock would count from the process's start
 * (performance.now()'s origin), and its bound would shrink with the test process's uptime.
 */
export class RecoveryClock {
  private readonly startedAt = performance.now();

  private constructor() {}

  public static start(): RecoveryClock {
    return new RecoveryClock();
  }

  public async until(
    description: string,
    boundMs: number,
    predicate: () => boolean | Promise<boolean>,
    diagnostics: () => string = () => '',
  ): Promise<number> {
    // A later wait on the same clock gets what is left of the bound, and one more poll at least.
    const remaining = Math.max(1_000, boundMs - (performance.now() - this.startedAt));
    try {
      await waitFor(predicate, { description, timeoutMs: remaining, intervalMs: 100 });
    } catch (error) {
      throw new Error(`${String(error)}\n${diagnostics()}`);
    }
    return Math.round(performance.now() - this.startedAt);
  }
}

/**
 * Prints one result line for docs/reliability.md (and appends it to `$FAULT_MATRIX_RESULTS` when
 * set), so every run of the matrix shows what it measured.
 */
export function reportResult(result: FaultResult): void {
  const line = JSON.stringify({ ...result, at: new Date().toISOString() });
  console.log(`[fault-matrix] ${line}`);
  const file = process.env['FAULT_MATRIX_RESULTS'];
  if (file) fs.appendFileSync(file, `${line}\n`);
}

/** Shard ids a host serves per a status, sorted. */
export function shardsOfHost(status: FleetStatus, hostId: string): number[] {
  return (status.hosts.find((host) => host.id === hostId)?.clusters ?? [])
    .flatMap((cluster) => cluster.shards.map((shard) => shard.id))
    .sort((a, b) => a - b);
}

/** The clusters of a host per a status: id and shard ids. */
export function clustersOfHost(status: FleetStatus, hostId: string): { id: number; shardIds: number[] }[] {
  return (status.hosts.find((host) => host.id === hostId)?.clusters ?? []).map((cluster) => ({
    id: cluster.id,
    shardIds: cluster.shards.map((shard) => shard.id).sort((a, b) => a - b),
  }));
}
