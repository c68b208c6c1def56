import { DisclusterError, ErrorCode } from 'discluster-protocol';
import { drainedOf, planAfterLoss, planRebalanced } from '../fleetPlans.js';
import { formatShardRanges } from 'discluster-protocol';
import { toRanges } from '../plan/index.js';
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

  /**
   * `discluster restart --rolling`: one host after the other, each restarting its clusters in turn.
   * A host that is lost when its turn comes (a missed heartbeat while another host's clusters
   * restart and take the CPU) is waited for a while, then skipped and named in `skipped`.
   */
  public async rollingRestart(): Promise<{ hosts: string[]; skipped?: string[] }> {
    const term = this.term;
    return term.enqueue(async () => {
      const plan = term.requirePlan();
      refuseDuringReshard(plan, 'a rolling restart');
      const done: string[] = [];
      const skipped: string[] = [];
      for (const [hostId, clusters] of Object.entries(plan.hosts).sort(([a], [b]) => a.localeCompare(b))) {
        if (clusters.length === 0) continue;
        if (!(await this.online(hostId, Math.max(10_000, 3 * term.config.host_timeout_ms)))) {
          term.logger.warn(
            { hostId },
            'rolling restart: host lost, skipped (its clusters were not restarted)',
          );
          skipped.push(hostId);
          continue;
        }
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
      term.logger.info({ hosts: done, skipped }, 'rolling restart finished');
      return skipped.length > 0 ? { hosts: done, skipped } : { hosts: done };
    });
  }

  /** True once `hostId` heartbeats (at once if it does), false if it stays lost for `waitMs`. */
  private async online(hostId: string, waitMs: number): Promise<boolean> {
    const term = this.term;
    const until = term.clock.monotonic() + waitMs;
    while (term.registry.isLost(hostId)) {
      if (term.ended || term.clock.monotonic() >= until) return false;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    return true;
  }

  /**
   * `discluster drain <host>`: moves every shard off the host (only its shards move, as on a
   * failover: to an empty standby, else spread by weight; each resumes through the lease handoff),
   * then holds it empty until `undrain`. The drain is kept in the plan record, so a MASTER that
   * takes over keeps it. Refused, with nothing changed: an unknown host, or shards with nowhere
   * to go (the last active host, a pinned host with no unpinned host to take its pins).
   */
  public async drain(hostId: string): Promise<{ hostId: string; moved: number; epoch: number }> {
    const term = this.term;
    return term.enqueue(async () => {
      const plan = term.requirePlan();
      refuseDuringReshard(plan, 'a drain');
      this.requireKnown(plan, hostId);
      const drained = drainedOf(plan);
      if (drained.has(hostId)) return { hostId, moved: 0, epoch: plan.epoch };
      const online = term.registry.online();
      const next = new Set([...drained, hostId]);
      const { plan: after, moved, unplaced } = planAfterLoss(plan, [], online, next);
      if (unplaced.length > 0)
        throw new DisclusterError(
          ErrorCode.PlacementRefused,
          `cannot drain ${hostId}: shards ${formatShardRanges(toRanges(unplaced))} would have nowhere to go ` +
            '(no other online host without pin_shards that is not drained); nothing changed',
        );
      await term.savePlan({ ...after, reshard: plan.reshard ?? null });
      term.logger.warn(
        { hostId, moved, epoch: after.epoch },
        `host drained: ${moved} shards move off it, each resuming its session; it stays empty until \`discluster undrain ${hostId}\``,
      );
      await this.assignments.assignAll();
      return { hostId, moved, epoch: after.epoch };
    });
  }

  /**
   * `discluster undrain <host>`: the host may hold shards again, and MASTER rebalances at once
   * (fewest moves, resumes only), which gives it its share by weight, or its pins. Refused, with
   * nothing changed: an unknown host, or a rebalance that placement refuses (see `drain`).
   */
  public async undrain(hostId: string): Promise<{ hostId: string; moved: number; epoch: number }> {
    const term = this.term;
    return term.enqueue(async () => {
      const plan = term.requirePlan();
      refuseDuringReshard(plan, 'an undrain');
      this.requireKnown(plan, hostId);
      const drained = drainedOf(plan);
      if (!drained.has(hostId)) return { hostId, moved: 0, epoch: plan.epoch };
      const rest = [...drained].filter((id) => id !== hostId).sort();
      const undrained = { ...plan, drained: rest };
      const changed = planRebalanced(undrained, term.registry.online());
      const next = changed?.plan ?? { ...undrained, epoch: plan.epoch + 1, updatedAt: term.clock.wall() };
      if (rest.length === 0) delete next.drained;
      await term.savePlan(next);
      const moved = changed?.moved ?? 0;
      term.logger.info(
        { hostId, moved, epoch: next.epoch },
        'host undrained: rebalanced, shards resume on it',
      );
      await this.assignments.assignAll();
      return { hostId, moved, epoch: next.epoch };
    });
  }

  /** A host the plan or the registry knows; anything else is a typo, refused. */
  private requireKnown(plan: { hosts: Record<string, unknown> }, hostId: string): void {
    if (plan.hosts[hostId] !== undefined || this.term.registry.get(hostId) !== undefined) return;
    const known = [
      ...new Set([...Object.keys(plan.hosts), ...this.term.registry.all().map((h) => h.facts.hostId)]),
    ].sort();
    throw new DisclusterError(
      ErrorCode.PlacementRefused,
      `unknown host ${hostId}: no CONTROL with this host_id is known (known: ${known.join(', ') || 'none'}); nothing changed`,
    );
  }
}
