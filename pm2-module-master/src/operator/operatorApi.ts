import type { Msg } from '@nats-io/transport-node';
import {
  DisclusterError,
  ErrorCode,
  toWireError,
  MasterRequestSchema,
  type FleetStatus,
  type MasterReply,
  type MasterRequest,
  type WhichResult,
} from 'discluster-protocol';
import type { FleetActions } from '../fleet/fleetActions.js';
import type { DuplicateHosts } from '../hosts/duplicateHosts.js';
import { locateGuild } from '../guildLocation.js';
import type { Term } from '../leadership/term.js';
import { respond } from 'discluster-runtime';
import { parseMessage } from '../messages.js';
import type { ReshardCoordinator } from '../reshard/reshardCoordinator.js';
import type { ResplitCoordinator } from '../resplit/resplitCoordinator.js';
import { buildFleetStatus } from '../statusView.js';
import { hostsPlacementProblem } from '../fleetPlans.js';

/** Answers operator requests (`discluster status|which|rebalance|stop|restart|reshard|resplit|drain|undrain`) for one term. */
export class OperatorApi {
  public constructor(
    private readonly term: Term,
    private readonly fleet: FleetActions,
    private readonly reshard: ReshardCoordinator,
    private readonly resplit: ResplitCoordinator,
    private readonly duplicates: DuplicateHosts,
  ) {}

  public async onRequest(msg: Msg): Promise<void> {
    if (this.term.ended) return;
    let request: MasterRequest;
    try {
      request = parseMessage(msg, MasterRequestSchema, (error) =>
        error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '),
      );
    } catch (error) {
      this.term.logger.warn({ problem: String(error) }, 'rejected a malformed operator request');
      respond(msg, {
        v: 1,
        ok: false,
        error: { code: ErrorCode.InvalidMessage, message: `malformed request: ${String(error)}` },
      });
      return;
    }
    let reply: MasterReply;
    try {
      reply = { v: 1, ok: true, result: await this.answer(request) };
    } catch (error) {
      reply = { v: 1, ok: false, error: toWireError(error) };
    }
    respond(msg, reply);
  }

  /** `discluster status --json` as this term sees the fleet (also the status page's source). */
  public status(): FleetStatus {
    const term = this.term;
    return buildFleetStatus({
      bot: term.config.bot,
      plan: term.plan,
      hosts: term.registry
        .all()
        .map((host) => ({ facts: host.facts, online: !term.registry.isLost(host.facts.hostId) })),
      masterUp: true,
      source: 'master',
      stopped: term.preplanStop,
      reshard: this.reshard.progress(),
      resplit: this.resplit.progress(),
      refused: this.duplicates.conflicts(),
      placementProblem: term.plan
        ? hostsPlacementProblem(term.registry.online(), term.plan.shardCount)
        : term.firstPlanRefused,
    });
  }

  private async answer(request: MasterRequest): Promise<unknown> {
    switch (request.type) {
      case 'status':
        return this.status();
      case 'which':
        return this.which(request.guildId);
      case 'rebalance':
        return this.fleet.rebalance();
      case 'stop':
        await this.fleet.stop(request.reason ?? 'stopped by an operator (`discluster stop`)', null);
        return { stopped: true };
      case 'restart':
        return request.rolling ? this.fleet.rollingRestart() : this.fleet.restart();
      case 'reshard':
        return this.reshard.start(request.shards, 'requested by an operator (`discluster reshard`)');
      case 'resplit':
        return this.resplit.start(
          request.shardsPerCluster,
          'requested by an operator (`discluster resplit`)',
        );
      case 'drain':
        return this.fleet.drain(request.hostId);
      case 'undrain':
        return this.fleet.undrain(request.hostId);
    }
  }

  private which(guildId: string): WhichResult {
    const plan = this.term.plan;
    if (!plan) throw new DisclusterError(ErrorCode.NoPlan, 'no plan yet: no shard serves any guild');
    return locateGuild(plan, guildId);
  }
}
