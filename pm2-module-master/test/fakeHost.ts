import { randomUUID } from 'node:crypto';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  AssignCommandSchema,
  HostCommandSchema,
  fleetSubjects,
  generateHostKeyPair,
  openSealed,
  tokenContext,
  type AssignCommand,
  type ClusterReport,
  type HostCommand,
} from 'discluster-protocol';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface FakeHostOptions {
  readonly bot: string;
  readonly id: string;
  readonly role?: 'active' | 'standby';
  readonly cores: number;
  readonly load15?: number;
  readonly heartbeatMs?: number;
  /** Answer status polls (`fleet.status`) with its heartbeat, as a real CONTROL does. */
  readonly answersStatusPolls?: boolean;
  /** The host's `pin_shards` as CONTROL announces them (absent: an unpinned host, or an old CONTROL). */
  readonly pinShards?: [number, number][];
  /** The host's `weight` (absent: as an old CONTROL, weight 1). */
  readonly weight?: number;
  /** Answers `rolling-restart` this much later (a real CONTROL takes a while); default at once. */
  readonly rollingRestartMs?: number;
}

/**
 * The CONTROL side of the MASTER ↔ CONTROL protocol (protocol/src/fleet.ts), played by the test so
 * MASTER's decisions can be checked message by message: it announces, heartbeats the epoch and
 * clusters it was last assigned, answers every command ok and records it.
 */
export class FakeHost {
  public readonly keys = generateHostKeyPair();
  public readonly instanceId = randomUUID();
  public readonly commands: HostCommand[] = [];
  public epoch: number | null = null;
  public clusters: ClusterReport[] = [];
  /**
   * While true, clusters assigned for the first time report their shards `resuming` until
   * {@link release} (a cluster still starting); otherwise every assigned shard reports ready.
   */
  public holdNewClusters = false;
  private readonly held = new Set<number>();
  private readonly seen = new Set<number>();
  /** Tokens opened from assignments (proves the seal works for this host only). */
  public readonly tokens: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private subscription: Subscription | undefined;
  private statusSubscription: Subscription | undefined;
  private readonly subjects;

  public constructor(
    private readonly nc: NatsConnection,
    public readonly options: FakeHostOptions,
  ) {
    this.subjects = fleetSubjects(options.bot);
  }

  public facts(type: 'announce' | 'heartbeat') {
    return {
      v: 1,
      type,
      hostId: this.options.id,
      instanceId: this.instanceId,
      role: this.options.role ?? 'active',
      cores: this.options.cores,
      load15: this.options.load15 ?? 0.5,
      memory: { total: 8e9, free: 4e9 },
      shardsPerCluster: 10,
      ...(this.options.pinShards ? { pinShards: this.options.pinShards } : {}),
      ...(this.options.weight !== undefined ? { weight: this.options.weight } : {}),
      version: '0.1.0',
      publicKey: this.keys.publicKey,
      epoch: this.epoch,
      clusters: this.clusters.map((cluster) =>
        this.held.has(cluster.clusterId)
          ? { ...cluster, shards: cluster.shards?.map((shard) => ({ ...shard, state: 'resuming' as const })) }
          : cluster,
      ),
      sentAt: Date.now(),
    };
  }

  public async start(): Promise<void> {
    this.subscription = this.nc.subscribe(this.subjects.commands(this.options.id), {
      callback: (_error, msg) => {
        const command = HostCommandSchema.parse(JSON.parse(decoder.decode(msg.data)));
        this.commands.push(command);
        if (command.type === 'assign') this.apply(command);
        if (command.type === 'stop-all')
          this.clusters = this.clusters.map((c) => ({ ...c, state: 'stopped' }));
        const answer = () =>
          msg.respond(encoder.encode(JSON.stringify({ v: 1, ok: true, epoch: this.epoch })));
        if (command.type === 'rolling-restart' && this.options.rollingRestartMs)
          setTimeout(answer, this.options.rollingRestartMs);
        else answer();
      },
    });
    if (this.options.answersStatusPolls)
      this.statusSubscription = this.nc.subscribe(this.subjects.hostStatus, {
        callback: (_error, msg) => void msg.respond(encoder.encode(JSON.stringify(this.facts('heartbeat')))),
      });
    await this.nc.flush();
    await this.nc
      .request(this.subjects.announce, encoder.encode(JSON.stringify(this.facts('announce'))), {
        timeout: 5_000,
      })
      .catch(() => undefined);
    this.timer = setInterval(() => this.heartbeat(), this.options.heartbeatMs ?? 100);
  }

  public heartbeat(): void {
    this.nc.publish(
      this.subjects.heartbeat(this.options.id),
      encoder.encode(JSON.stringify(this.facts('heartbeat'))),
    );
  }

  /** Stops heartbeating and answering: a dead machine. */
  public stop(): void {
    clearInterval(this.timer);
    this.subscription?.unsubscribe();
    this.statusSubscription?.unsubscribe();
  }

  /** Held clusters report ready from now on. */
  public release(): void {
    this.held.clear();
  }

  /** Ids of the clusters held back (see {@link holdNewClusters}). */
  public heldClusterIds(): number[] {
    return [...this.held].sort((a, b) => a - b);
  }

  public assigns(): AssignCommand[] {
    return this.commands.filter((command): command is AssignCommand => command.type === 'assign');
  }

  public lastAssign(): AssignCommand | undefined {
    return this.assigns().at(-1);
  }

  public shardIds(): number[] {
    return (this.lastAssign()?.clusters ?? []).flatMap((cluster) => cluster.shardIds).sort((a, b) => a - b);
  }

  private apply(command: AssignCommand): void {
    AssignCommandSchema.parse(command);
    this.tokens.push(
      openSealed(command.token, this.keys, tokenContext(this.options.bot, this.options.id, command.epoch)),
    );
    this.epoch = command.epoch;
    for (const cluster of command.clusters) {
      if (!this.seen.has(cluster.clusterId) && this.holdNewClusters) this.held.add(cluster.clusterId);
      this.seen.add(cluster.clusterId);
    }
    this.clusters = command.clusters.map((cluster) => ({
      clusterId: cluster.clusterId,
      state: 'online',
      restarts: 0,
      shardIds: cluster.shardIds,
      shards: cluster.shardIds.map((id) => ({
        id,
        state: 'ready',
        ping: 20,
        guilds: 5,
        events: 0,
        waitingReason: null,
        lastCloseCode: null,
      })),
    }));
  }
}
