/**
 * MASTER as CONTROL's integration tests play it (not a test file): accepts announces, collects
 * heartbeats and events, sends sealed assignments and commands, creates the lease bucket with its
 * lease time, and reads the leases back.
 */
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  FleetEventSchema,
  FleetReplySchema,
  HostHeartbeatSchema,
  ShardLeaseRecordSchema,
  decodeRecord,
  fleetSubjects,
  leaseBucket,
  leaseKey,
  sealForHost,
  tokenContext,
  type FleetEvent,
  type FleetReply,
  type HostHeartbeat,
  type ShardLeaseRecord,
} from 'discluster-protocol';
import { waitFor } from 'discluster-testing';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- GET /gateway/bot as JSON
export type Gateway = Record<string, any>;

export interface PlannedCluster {
  readonly clusterId: number;
  readonly shardIds: readonly number[];
}

export class FakeMaster {
  public readonly heartbeats: HostHeartbeat[] = [];
  public readonly events: FleetEvent[] = [];
  public announces = 0;
  private leases: KV | undefined;

  private constructor(
    public readonly nc: NatsConnection,
    public readonly bot: string,
  ) {}

  public static async start(natsUrl: string, bot: string): Promise<FakeMaster> {
    const nc = await connect({ servers: natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    const master = new FakeMaster(nc, bot);
    const subjects = fleetSubjects(bot);
    nc.subscribe(subjects.allHostAnnounces, {
      callback: (_error, msg) => {
        master.announces++;
        msg.respond(encoder.encode(JSON.stringify({ v: 1, ok: true })));
      },
    });
    nc.subscribe(subjects.allHeartbeats, {
      callback: (_error, msg) => {
        master.heartbeats.push(HostHeartbeatSchema.parse(JSON.parse(decoder.decode(msg.data))));
      },
    });
    nc.subscribe(subjects.allEvents, {
      callback: (_error, msg) => {
        master.events.push(FleetEventSchema.parse(JSON.parse(decoder.decode(msg.data))));
      },
    });
    return master;
  }

  /** Creates the lease bucket as MASTER does, with its `lease_ms`. */
  public async createLeaseBucket(ttlMs: number): Promise<void> {
    this.leases = await new Kvm(jetstream(this.nc)).create(leaseBucket(this.bot), { history: 1, ttl: ttlMs });
  }

  /** The lease bucket (created with a default TTL by CONTROL if the test did not create it). */
  public async leaseKv(): Promise<KV> {
    this.leases ??= await new Kvm(jetstream(this.nc)).open(leaseBucket(this.bot));
    return this.leases;
  }

  public async leaseOf(shardCount: number, shardId: number): Promise<ShardLeaseRecord | null> {
    const entry = await (await this.leaseKv()).get(leaseKey(shardCount, shardId));
    if (!entry || entry.operation !== 'PUT') return null;
    const decoded = decodeRecord(ShardLeaseRecordSchema, entry.value);
    return decoded.ok ? decoded.value : null;
  }

  public lastHeartbeat(hostId: string): HostHeartbeat | undefined {
    for (let i = this.heartbeats.length - 1; i >= 0; i--)
      if (this.heartbeats[i]!.hostId === hostId) return this.heartbeats[i];
    return undefined;
  }

  /** Waits for a heartbeat of `hostId` that satisfies `predicate` (from now on when `fresh`). */
  public async waitForHeartbeat(
    hostId: string,
    predicate: (beat: HostHeartbeat) => boolean,
    options: { description: string; timeoutMs?: number },
  ): Promise<HostHeartbeat> {
    await waitFor(
      () => {
        const beat = this.lastHeartbeat(hostId);
        return beat !== undefined && predicate(beat);
      },
      { timeoutMs: 60_000, ...options },
    );
    return this.lastHeartbeat(hostId)!;
  }

  public async command(hostId: string, body: unknown, timeoutMs = 30_000): Promise<FleetReply> {
    const reply = await this.nc.request(
      fleetSubjects(this.bot).commands(hostId),
      encoder.encode(JSON.stringify(body)),
      { timeout: timeoutMs },
    );
    return FleetReplySchema.parse(JSON.parse(decoder.decode(reply.data)));
  }

  /** An assign command, the token sealed for the key `hostId` announced last. */
  public assign(
    hostId: string,
    options: {
      epoch: number;
      shardCount: number;
      gateway: Gateway;
      clusters: readonly PlannedCluster[];
      clusterIds?: readonly number[];
      token: string;
    },
  ) {
    const publicKey = this.lastHeartbeat(hostId)?.publicKey;
    if (!publicKey) throw new Error(`no heartbeat from ${hostId} yet`);
    return {
      v: 1,
      type: 'assign',
      epoch: options.epoch,
      hostId,
      shardCount: options.shardCount,
      gateway: options.gateway,
      clusters: options.clusters.map((c) => ({ clusterId: c.clusterId, shardIds: [...c.shardIds] })),
      clusterIds: [...(options.clusterIds ?? options.clusters.map((c) => c.clusterId))],
      token: sealForHost(options.token, publicKey, tokenContext(this.bot, hostId, options.epoch)),
    };
  }

  public async close(): Promise<void> {
    await this.nc.drain().catch(() => undefined);
  }
}
