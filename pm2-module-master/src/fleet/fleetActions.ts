import { DisclusterError, ErrorCode } from 'discluster-protocol';
import { planRebalanced } from '../fleetPlans.js';
import { fetchGatewayBot } from '../gatewayBot.js';
import type { HostAssignments } from '../hosts/hostAssignments.js';
import type { Term } from '../leadership/term.js';
import { refuseDuringReshard } from '../reshard/reshardPolicy.js';
import { planWithFailuresCleared } from './failedClusterPolicy.js';

/** Fleet-wide actions of one term: rebalance, stop, restart and rolling restart. */
export class FleetActions {
  public constructor(
    private readonly term: Term,
    private readonly assignments: HostAssignments,
  ) {}

  /**
   * Moves the fewest shards so shares follow the weights again. `by: 'operator'` (`discluster
   * rebalance`) also clears every cluster failure: held clusters are planned again, under new ids
   * so their CONTROLs start them afresh. An automatic rebalance (`auto_rebalance`) waits while a
   * failure stands, so no failed cluster is moved back onto the host it gave up on.
   */
  public async rebalance(by: 'operator' | 'auto' = 'operator'): Promise<{ moved: number; epoch: number }> {
    const term = this.term;
    return term.enqueue(async () => {
      const plan = term.requirePlan();
      refuseDuringReshard(plan, 'rebalance');
      const cleared = by === 'operator' ? planWithFailuresCleared(plan, term.clock.wall()) : null;
      if (by === 'auto' && (plan.failures ?? []).length > 0) {
        term.logger.info(
          { clusters: (plan.failures ?? []).map((record) => record.clusterId) },
          'automatic rebalance skipped: a cluster failure stands until `discluster rebalance`',
        );
        return { moved: 0, epoch: plan.epoch };
      }
      const base = cleared ?? plan;
      const changed = planRebalanced(base, term.registry.online());
      if (!changed && !cleared) {
        term.logger.info({ epoch: plan.epoch }, 'rebalance: shares already follow the weights');
        return { moved: 0, epoch: plan.epoch };
      }
      const next = changed?.plan ?? { ...base, epoch: plan.epoch + 1, updatedAt: term.clock.wall() };
      await term.savePlan(next);
      if (cleared)
        term.logger.info(
          { cleared: (plan.failures ?? []).map((record) => `${record.clusterId} (${record.action})`) },
          'rebalance: cluster failures cleared; held clusters start again under new ids',
        );
      term.logger.info(
        { moved: changed?.moved ?? 0, epoch: next.epoch },
        'rebalancing: moving shards with resume',
      );
      await this.assignments.assignAll();
      return { moved: changed?.moved ?? 0, epoch: next.epoch };
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
        // Every cluster starts afresh, failed ones included: their failures no longer stand.
        failures: [],
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
