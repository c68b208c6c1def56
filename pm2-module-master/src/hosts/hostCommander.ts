import type { NatsConnection } from '@nats-io/transport-node';
import {
  DisclusterError,
  ErrorCode,
  FleetReplySchema,
  fleetSubjects,
  sealForHost,
  tokenContext,
  type AssignCommand,
  type FleetReply,
  type HostCommand,
  type PlanRecord,
} from 'discluster-protocol';
import { NatsRequestError, requestReply } from 'discluster-runtime';
import type { KnownHost } from './hostRegistry.js';
import type { Logger } from '../logger.js';
import { generationClusterIds } from '../reshard/newGeneration.js';

const encoder = new TextEncoder();

/** Every cluster id of a plan, ascending (each cluster's IPC peers). */
export function planClusterIds(plan: PlanRecord): number[] {
  return generationClusterIds(plan.hosts);
}

/**
 * Sends MASTER's commands to CONTROLs (request/reply on `fleet.host.<id>.cmd`) and checks their
 * answers. The bot token leaves MASTER only sealed for the receiving host's announced key and
 * bound to (bot, host, epoch).
 */
export class HostCommander {
  private readonly subjects;

  public constructor(
    private readonly nc: NatsConnection,
    private readonly bot: string,
    private readonly token: () => string,
    private readonly logger: Logger,
  ) {
    this.subjects = fleetSubjects(bot);
  }

  /** The assignment of `host` under `plan` (its clusters, possibly none), token sealed for it. */
  public assignment(plan: PlanRecord, host: KnownHost): AssignCommand {
    const hostId = host.facts.hostId;
    const clusterIds = planClusterIds(plan);
    return {
      v: 1,
      type: 'assign',
      epoch: plan.epoch,
      hostId,
      // Only this boot acts on it: another CONTROL with the same host id ignores it (issue 13 f).
      instanceId: host.facts.instanceId,
      shardCount: plan.shardCount,
      gateway: plan.gateway,
      clusters: (plan.hosts[hostId] ?? []).map((cluster) => ({
        clusterId: cluster.clusterId,
        shardIds: [...cluster.shardIds],
      })),
      clusterIds: clusterIds.length > 0 ? clusterIds : [0],
      token: sealForHost(this.token(), host.facts.publicKey, tokenContext(this.bot, hostId, plan.epoch)),
      ...this.nextGeneration(plan, hostId),
    };
  }

  /** During a reshard: the host's clusters of the new generation (run in standby until the handover). */
  private nextGeneration(plan: PlanRecord, hostId: string): Pick<AssignCommand, 'next'> {
    const reshard = plan.reshard;
    const clusters = reshard?.hosts[hostId] ?? [];
    if (!reshard || clusters.length === 0) return {};
    return {
      next: {
        reshardId: reshard.id,
        shardCount: reshard.shardCount,
        clusters: clusters.map((cluster) => ({
          clusterId: cluster.clusterId,
          shardIds: [...cluster.shardIds],
        })),
        clusterIds: generationClusterIds(reshard.hosts),
      },
    };
  }

  /** Sends one command and resolves with the host's reply; rejects if it refused or did not answer. */
  public async send(hostId: string, command: HostCommand, timeoutMs: number): Promise<FleetReply> {
    let reply: FleetReply;
    try {
      reply = await requestReply(
        this.nc,
        this.subjects.commands(hostId),
        command,
        FleetReplySchema,
        timeoutMs,
      );
    } catch (error) {
      if (error instanceof NatsRequestError && error.kind === 'malformed')
        throw new DisclusterError(
          ErrorCode.InvalidMessage,
          `host ${hostId} answered ${command.type} with an invalid reply`,
        );
      throw new DisclusterError(
        ErrorCode.HostCommandFailed,
        `host ${hostId} did not answer ${command.type} within ${timeoutMs} ms (${error instanceof Error ? error.message : String(error)})`,
      );
    }
    if (!reply.ok)
      throw new DisclusterError(
        ErrorCode.HostCommandFailed,
        `host ${hostId} refused ${command.type}: ${reply.error.code}: ${reply.error.message}`,
      );
    return reply;
  }

  /** `stop-all` to every CONTROL at once (publish: also reaches hosts MASTER does not know yet). */
  public broadcastStopAll(reason: string): void {
    this.nc.publish(
      this.subjects.broadcast,
      encoder.encode(JSON.stringify({ v: 1, type: 'stop-all', reason })),
    );
    this.logger.debug({ reason }, 'stop-all broadcast');
  }
}
