import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { NatsConnection, Msg } from '@nats-io/transport-node';
import {
  ControlConfigSchema,
  DisclusterError,
  ErrorCode,
  toWireError,
  FleetReplySchema,
  HostCommandSchema,
  fleetSubjects,
  formatConfigIssues,
  generateHostKeyPair,
  loadModuleConfig,
  openSealed,
  sourceAddressesNotOnHost,
  tokenContext,
  type AssignCommand,
  type ConfigIssue,
  type ControlConfig,
  type FleetReply,
  type HostCommand,
  type HostKeyPair,
} from 'discluster-protocol';
import { redactNatsUrl } from 'discluster-runtime';
import { hostFacts, packageVersion } from './hostFacts.js';
import { LeaseKeeper } from './leases/leaseKeeper.js';
import { createLogger, type Logger } from './logger.js';
import { connectNats, natsAccessForClusters } from './natsOptions.js';
import { connectPm2, type Pm2Client } from './pm2/daemonClient.js';
import { NatsRequestError, loadPm2Io, requestReply, respond } from 'discluster-runtime';
import { registerPm2Surface } from './pm2/metricsAndActions.js';
import { DEFAULT_RESTART_POLICY } from './clusters/restartPolicy.js';
import { ROLLING_READY_TIMEOUT_MS, rollingRestart } from './clusters/rollingRestart.js';
import { ClusterSupervisor } from './clusters/supervisor.js';

/** The package name: pm2 hands the module its settings in `process.env[MODULE_NAME]`. */
export const MODULE_NAME = 'discluster-control';

/** A running CONTROL. */
export interface ControlHandle {
  /** `invalid-config`: idle, reporting its configuration error; `running`: connected to NATS. */
  readonly state: 'invalid-config' | 'running';
  /** Stops heartbeats and closes NATS and pm2 connections; cluster processes keep running. */
  close(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The whole of CONTROL, shared by the pm2 module entry and the foreground bin. Reads its settings
 * from `env` (`process.env['discluster-control']` under pm2, `DISCLUSTER_*` in the foreground).
 */
export async function startControl(env: NodeJS.ProcessEnv = process.env): Promise<ControlHandle> {
  const loaded = loadModuleConfig(ControlConfigSchema, { moduleName: MODULE_NAME, env });
  if (!loaded.ok) return idleOnInvalidConfig(loaded.issues);
  // A cluster could not bind its sockets to an address this host does not have: refuse it here,
  // before anything starts, rather than as clusters that fail to connect.
  const notOnHost = sourceAddressesNotOnHost(loaded.config.source_addresses, os.networkInterfaces());
  if (notOnHost.length > 0)
    return idleOnInvalidConfig(
      notOnHost.map((address) => ({
        key: 'source_addresses',
        message: `${address} is not an address of this host (none of its network interfaces has it)`,
      })),
    );
  const control = new Control(
    loaded.config,
    createLogger(loaded.config.log_level, { hostId: loaded.config.host_id }),
  );
  await control.start();
  return { state: 'running', close: () => control.close() };
}

/**
 * Logs the configuration's problems and stays up, idle: exiting would make pm2 restart us in a
 * loop with the same bad value, and `pm2 set` restarts the module anyway once the operator fixes it.
 */
function idleOnInvalidConfig(issues: readonly ConfigIssue[]): ControlHandle {
  const logger = createLogger('info', {});
  logger.error({ issues, keys: issues.map((issue) => issue.key) }, formatConfigIssues(MODULE_NAME, issues));
  const idle = setInterval(() => undefined, 1 << 30);
  return {
    state: 'invalid-config',
    close: async () => clearInterval(idle),
  };
}

class Control {
  private readonly keys: HostKeyPair = generateHostKeyPair();
  private readonly instanceId = randomUUID();
  private readonly subjects;
  private nc: NatsConnection | undefined;
  private epoch: number | null = null;
  private heartbeat: NodeJS.Timeout | undefined;
  /** An extra heartbeat soon: a reshard's new clusters changed state (MASTER switches on them). */
  private soonHeartbeat: NodeJS.Timeout | undefined;
  private announceTimer: NodeJS.Timeout | undefined;
  private pm2: Pm2Client | undefined;
  private leases: LeaseKeeper | undefined;
  private supervisor: ClusterSupervisor | undefined;
  private closed = false;
  /** Commands run one at a time: two assignments must not interleave their pm2 calls. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Counts commands other than rolling-restart: a newer one ends a rolling restart early. */
  private otherCommands = 0;

  public constructor(
    private readonly config: ControlConfig,
    private readonly logger: Logger,
  ) {
    this.subjects = fleetSubjects(config.bot);
  }

  public async start(): Promise<void> {
    this.logger.info(
      {
        bot: this.config.bot,
        role: this.config.role,
        nats: this.config.nats_url.map(redactNatsUrl),
        instanceId: this.instanceId,
      },
      'discluster-control starting',
    );
    // Warns about plaintext, and retries (explaining refusals) until NATS accepts us.
    const nc = await connectNats(this.config, this.logger);
    this.nc = nc;
    this.logger.info({ server: nc.getServer() }, 'connected to NATS');
    nc.closed().then((error) => {
      if (this.closed) return;
      // Closed for good (it never is with unlimited reconnects, unless auth is revoked): exit so
      // pm2 restarts us with a fresh connection.
      this.logger.fatal({ err: error }, 'NATS connection closed; exiting');
      process.exit(1);
    });
    nc.subscribe(this.subjects.commands(this.config.host_id), {
      callback: (_error, msg) => this.onCommand(msg),
    });
    nc.subscribe(this.subjects.broadcast, { callback: (_error, msg) => this.onCommand(msg) });
    // `discluster status` asks every CONTROL directly when MASTER is down: answer with the heartbeat.
    nc.subscribe(this.subjects.hostStatus, {
      callback: (_error, msg) => {
        if (msg.reply) msg.respond(encoder.encode(JSON.stringify(this.facts('heartbeat'))));
      },
    });
    this.registerPm2Surface();
    void this.announce();
    this.heartbeat = setInterval(() => this.publishHeartbeat(), this.config.heartbeat_ms);
    this.publishHeartbeat();
  }

  public async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.soonHeartbeat);
    clearTimeout(this.announceTimer);
    this.supervisor?.close();
    // Leases are kept, not released: the clusters keep serving and the next boot takes them over.
    this.leases?.close();
    this.pm2?.disconnect();
    await this.nc?.drain().catch(() => undefined);
  }

  private facts<T extends 'announce' | 'heartbeat'>(type: T) {
    return {
      v: 1 as const,
      type,
      hostId: this.config.host_id,
      instanceId: this.instanceId,
      role: this.config.role,
      ...hostFacts(this.config.cores),
      shardsPerCluster: this.config.shards_per_cluster,
      ...(this.config.pin_shards
        ? { pinShards: this.config.pin_shards.map(([first, last]) => [first, last]) }
        : {}),
      weight: this.config.weight,
      version: packageVersion(),
      publicKey: this.keys.publicKey,
      epoch: this.epoch,
      clusters: this.supervisor?.report() ?? [],
      sentAt: Date.now(),
    };
  }

  /** Asks MASTER to accept this host; retries every `retry_ms` until it answers ok (seed 003). */
  private async announce(): Promise<void> {
    if (this.closed || !this.nc) return;
    try {
      const reply = await requestReply(
        this.nc,
        this.subjects.hostAnnounce(this.config.host_id),
        this.facts('announce'),
        FleetReplySchema,
        Math.min(this.config.retry_ms, 5_000),
      );
      if (reply.ok) {
        this.logger.info('accepted by MASTER; waiting for an assignment');
        return;
      }
      if (reply.error.code === ErrorCode.DuplicateHostId)
        // Serving nothing until then: MASTER assigns a refused CONTROL nothing (issue 13 f).
        this.logger.error(
          { hostId: this.config.host_id, code: reply.error.code, retryMs: this.config.retry_ms },
          `MASTER refused this CONTROL: ${reply.error.message}`,
        );
      else this.logger.warn({ reply }, 'MASTER did not accept the announce');
    } catch (error) {
      if (error instanceof NatsRequestError && error.kind === 'malformed')
        this.logger.warn({ reply: 'invalid' }, 'MASTER did not accept the announce');
      else
        this.logger.info(
          { err: String(error) },
          `no MASTER answered; retrying in ${this.config.retry_ms} ms`,
        );
    }
    this.announceTimer = setTimeout(() => void this.announce(), this.config.retry_ms);
  }

  private publishHeartbeat(): void {
    if (!this.nc || this.nc.isClosed()) return;
    this.nc.publish(
      this.subjects.heartbeat(this.config.host_id),
      encoder.encode(JSON.stringify(this.facts('heartbeat'))),
    );
  }

  private onCommand(msg: Msg): void {
    let command: HostCommand;
    try {
      const parsed = HostCommandSchema.safeParse(JSON.parse(decoder.decode(msg.data)));
      if (!parsed.success)
        throw new Error(
          parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '),
        );
      command = parsed.data;
      // Another running CONTROL uses our host_id and MASTER accepted that one: its commands are not
      // ours, and it answers them (issue 13 f).
      if (
        'instanceId' in command &&
        command.instanceId !== undefined &&
        command.instanceId !== this.instanceId
      ) {
        this.logger.warn(
          { command: command.type, for: command.instanceId, hostId: this.config.host_id },
          'ignored a command for another CONTROL with this host_id',
        );
        return;
      }
      if (command.type !== 'rolling-restart') this.otherCommands++;
    } catch (error) {
      // Logged without the payload: it may hold anything, including secrets someone mis-sent.
      this.logger.warn({ subject: msg.subject, problem: String(error) }, 'rejected a malformed command');
      this.reply(msg, {
        v: 1,
        ok: false,
        error: { code: ErrorCode.InvalidMessage, message: 'malformed command' },
      });
      return;
    }
    void this.enqueue(async () => {
      try {
        await this.run(command);
        this.reply(msg, { v: 1, ok: true, epoch: this.epoch });
      } catch (error) {
        const wire = toWireError(error);
        this.logger.warn({ command: command.type, error: wire }, 'command refused');
        this.reply(msg, { v: 1, ok: false, error: wire });
      }
    });
  }

  /** Runs `task` after every command queued before it. */
  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(task);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private reply(msg: Msg, reply: FleetReply): void {
    respond(msg, reply);
  }

  private async run(command: HostCommand): Promise<void> {
    switch (command.type) {
      case 'assign':
        return this.assign(command);
      case 'stop-all':
        this.logger.warn({ reason: command.reason }, 'stopping every cluster');
        await this.supervisor?.stopAll();
        return;
      case 'revoke':
        this.refuseStale(command.epoch);
        await this.supervisor?.revoke(command.clusterIds);
        return;
      case 'rolling-restart': {
        this.refuseStale(command.epoch);
        const supervisor = this.supervisor;
        if (!supervisor) return;
        const seen = this.otherCommands;
        // Answered when done: MASTER waits for one host before the next (one cluster down at a time).
        await rollingRestart(supervisor, {
          logger: this.logger,
          readyTimeoutMs: ROLLING_READY_TIMEOUT_MS,
          interrupted: () => this.otherCommands !== seen || this.closed,
        });
        return;
      }
    }
  }

  private refuseStale(epoch: number): void {
    if (this.epoch !== null && epoch < this.epoch)
      throw new DisclusterError(
        ErrorCode.StaleEpoch,
        `epoch ${epoch} is older than the current epoch ${this.epoch}`,
      );
  }

  private async assign(command: AssignCommand): Promise<void> {
    if (command.hostId !== this.config.host_id)
      throw new DisclusterError(
        ErrorCode.InvalidMessage,
        `assignment for host ${command.hostId}, not this one`,
      );
    this.refuseStale(command.epoch);
    if (this.config.role === 'standby' && command.clusters.length > 0)
      this.logger.info('standby host received clusters: taking over');
    const script = this.config.script;
    if (!script || !path.isAbsolute(script))
      throw new DisclusterError(
        ErrorCode.InvalidOption,
        'script: must be set to the absolute path of the bot entry file',
      );
    const token = openSealed(
      command.token,
      this.keys,
      tokenContext(this.config.bot, this.config.host_id, command.epoch),
    );
    const supervisor = await this.ensureSupervisor(script);
    this.epoch = command.epoch;
    this.logger.info(
      {
        epoch: command.epoch,
        clusters: command.clusters.map((c) => c.clusterId),
        ...(command.next
          ? { reshardTo: command.next.shardCount, next: command.next.clusters.map((c) => c.clusterId) }
          : {}),
      },
      'assignment accepted; starting clusters',
    );
    await supervisor.apply({
      epoch: command.epoch,
      shardCount: command.shardCount,
      gateway: command.gateway,
      clusterIds: command.clusterIds,
      clusters: command.clusters,
      token,
      ...(command.next
        ? {
            next: {
              shardCount: command.next.shardCount,
              clusterIds: command.next.clusterIds,
              clusters: command.next.clusters,
            },
          }
        : {}),
    });
  }

  private async ensureSupervisor(script: string): Promise<ClusterSupervisor> {
    if (this.supervisor) return this.supervisor;
    // No cluster starts without its leases: without a lease bucket, the assignment is refused.
    this.leases ??= await LeaseKeeper.open(this.nc!, {
      bot: this.config.bot,
      hostId: this.config.host_id,
      instanceId: this.instanceId,
      logger: this.logger,
      onFence: (clusterId) => this.supervisor?.fence(clusterId),
      onLost: (clusterId, holder) => this.supervisor?.leaseLost(clusterId, holder),
      onRenewed: (clusterIds, renewedAt) => this.supervisor?.keepalive(clusterIds, renewedAt),
      onTimesChanged: () => this.supervisor?.leaseTimesChanged(),
      replicas: this.config.kv_replicas,
    });
    this.pm2 ??= await connectPm2();
    this.supervisor = new ClusterSupervisor({
      pm2: this.pm2,
      bot: this.config.bot,
      script,
      nats: natsAccessForClusters(this.config),
      sourceAddresses: this.config.source_addresses,
      leases: this.leases,
      logger: this.logger,
      policy: { ...DEFAULT_RESTART_POLICY, maxFailedStarts: this.config.max_cluster_restarts },
      onStandbyReport: () => {
        this.soonHeartbeat ??= setTimeout(() => {
          this.soonHeartbeat = undefined;
          this.publishHeartbeat();
        }, 250);
      },
      onClusterFailed: (clusterId, attempts, reason) => {
        this.logger.error({ clusterId, attempts, reason }, 'cluster failed; not restarting it');
        this.publish(this.subjects.hostClusterFailed(this.config.host_id), {
          v: 1,
          type: 'cluster.failed',
          hostId: this.config.host_id,
          clusterId,
          attempts,
          reason,
        });
      },
      onFatal: (clusterId, shardId, code, reason) => {
        this.logger.error({ clusterId, shardId, code, reason }, 'fatal gateway error reported');
        this.publish(this.subjects.hostFatal(this.config.host_id), {
          v: 1,
          type: 'fatal',
          hostId: this.config.host_id,
          clusterId,
          shardId,
          code,
          reason,
        });
      },
    });
    return this.supervisor;
  }

  private publish(subject: string, body: unknown): void {
    this.nc?.publish(subject, encoder.encode(JSON.stringify(body)));
  }

  /** Metrics and actions in pm2 (`pm2 show`, `pm2 monit`, `pm2 trigger`), only when pm2 runs us. */
  private registerPm2Surface(): void {
    try {
      const io = loadPm2Io();
      if (!io) return;
      registerPm2Surface(io, {
        clusters: () => this.supervisor?.report() ?? [],
        status: () => this.facts('heartbeat'),
        // Queued like a command: it must not interleave with an assignment's pm2 calls.
        restartCluster: (clusterId) =>
          this.enqueue(async () => {
            if (!this.supervisor)
              throw new DisclusterError(ErrorCode.InvalidOption, 'no clusters run on this host yet');
            this.logger.info({ clusterId }, 'restart-cluster requested through pm2');
            await this.supervisor.restartCluster(clusterId);
          }),
      });
    } catch (error) {
      // Metrics are a convenience: a broken @pm2/io must not keep CONTROL down.
      this.logger.warn({ err: error }, 'pm2 metrics unavailable');
    }
  }
}
