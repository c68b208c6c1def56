import { DisclusterError, ErrorCode } from 'discluster-protocol';
import { planRebalanced } from '../fleetPlans.js';
import { fetchGatewayBot } from '../gatewayBot.js';
import type { HostAssignments } from '../hosts/hostAssignments.js';
import type { Term } from '../leadership/term.js';
import { refuseDuringReshard } from '../reshard/reshardPolicy.js';

/** Fleet-wide actions of one term: rebalance, stop, restart and rolling restart. */
export class FleetActions {
  public constructor(
    private readonly term: Term,
    private readonly assignments: HostAssignments,
  ) {}

  public async rebalance(): Promise<{ moved: number; epoch: number }> {
    const term = this.term;
    return term.enqueue(async () => {
      const plan = term.requirePlan();
      refuseDuringReshard(plan, 'rebalance');
      const changed = planRebalanced(plan, term.registry.online());
      if (!changed) {
        term.logger.info({ epoch: plan.epoch }, 'rebalance: shares already follow the weights');
        return { moved: 0, epoch: plan.epoch };
      }
      await term.savePlan(changed.plan);
      term.logger.info(
        { moved: changed.moved, epoch: changed.plan.epoch },
        'rebalancing: moving shards with resume',
      );
      await this.assignments.assignAll();
      return { moved: changed.moved, epoch: changed.plan.epoch };
    });
  }

  /** Stops every cluster of the fleet once (fatal gateway error or `discluster stop`). */
  public async stop(reason: string, code: number | null): Promise<void> {
    const term = this.term;
    await term.enqueue(async () => {
      const plan = term.plan;
      if (!plan) {
        if (!term.preplanStop && code !== null) term.alerts.send({ kind: 'fleet-stopped', reason, code });
        term.preplanStop ??= { reason, code, at: term.clock.wall() };
        term.commander.broadcastStopAll(reason);
        return;
      }
      if (plan.stopped) return;
      await term.savePlan({
        ...plan,
        // A stopped fleet reshards no more: the new generation stops with the rest.
        reshard: null,
        stopped: { reason, code, at: term.clock.wall() },
        updatedAt: term.clock.wall(),
      });
      term.logger.error(
        { reason, code },
        'fleet stopped: every cluster is being stopped; nothing restarts until `discluster restart`',
      );
      // A fatal close alerts; `discluster stop` (no code) was someone's own decision.
      if (code !== null) term.alerts.send({ kind: 'fleet-stopped', reason, code });
      term.commander.broadcastStopAll(reason);
      await Promise.all(
        term.registry
          .online()
          .map((host) => this.assignments.stopHost(host.facts.hostId, reason).catch(() => undefined)),
      );
    });
  }

  /** `discluster restart`: clear a stop (re-checking the token) or restart every cluster; sessions resume. */
  public async restart(): Promise<{ epoch: number }> {
    const term = this.term;
    return term.enqueue(async () => {
      const plan = term.plan;
      if (!plan) throw new DisclusterError(ErrorCode.NoPlan, 'no plan to restart yet');
      if (!plan.stopped) {
        term.logger.info('restart: stopping every cluster, then starting them again (they resume)');
        await Promise.all(
          term.registry
            .online()
            .map((host) => this.assignments.stopHost(host.facts.hostId, 'discluster restart')),
        );
      }
      const gateway = await fetchGatewayBot({
        api: term.config.discord_api,
        token: term.token,
        restGlobalPerSecond: term.config.rest_global_per_second,
        signal: term.abort.signal,
      });
      await term.savePlan({
        ...plan,
        gateway,
        epoch: plan.epoch + 1,
        stopped: null,
        updatedAt: term.clock.wall(),
      });
      term.logger.info({ epoch: plan.epoch + 1 }, 'fleet restarting');
      await this.assignments.assignAll();
      return { epoch: plan.epoch + 1 };
    });
  }

  /** `discluster restart --rolling`: one host after the other, each restarting its clusters in turn. */
  public async rollingRestart(): Promise<{ hosts: string[] }> {
    const term = this.term;
    return term.enqueue(async () => {
      const plan = term.requirePlan();
      refuseDuringReshard(plan, 'a rolling restart');
      const done: string[] = [];
      for (const [hostId, clusters] of Object.entries(plan.hosts).sort(([a], [b]) => a.localeCompare(b))) {
        if (clusters.length === 0 || term.registry.isLost(hostId)) continue;
        term.logger.info({ hostId, clusters: clusters.length }, 'rolling restart: host starting');
        await term.commander.send(
          hostId,
          {
            v: 1,
            type: 'rolling-restart',
            epoch: plan.epoch,
            instanceId: term.registry.get(hostId)?.facts.instanceId,
          },
          clusters.length * 180_000,
        );
        done.push(hostId);
      }
      term.logger.info({ hosts: done }, 'rolling restart finished');
      return { hosts: done };
    });
  }
}
