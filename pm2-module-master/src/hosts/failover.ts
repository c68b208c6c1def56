import type { PlanRecord } from 'discluster-protocol';
import { planAfterLoss } from '../fleetPlans.js';
import type { Term } from '../leadership/term.js';
import type { ReshardCoordinator } from '../reshard/reshardCoordinator.js';
import type { HostAssignments } from './hostAssignments.js';

/** Fails over hosts that stopped heartbeating (issue 5 §4): their shards move to the hosts still online. */
export class Failover {
  public constructor(
    private readonly term: Term,
    private readonly assignments: HostAssignments,
    private readonly reshard: ReshardCoordinator,
  ) {}

  /** Runs on every monitor tick: queues a failover when a planned host is lost. */
  public check(): void {
    const term = this.term;
    const plan = term.plan;
    if (term.ended || !plan || plan.stopped) return;
    const lost = Object.entries(plan.hosts)
      .filter(([hostId, clusters]) => clusters.length > 0 && term.registry.isLost(hostId))
      .map(([hostId]) => hostId);
    if (lost.length === 0) return;
    void term
      .enqueue(() => this.failOver(lost))
      .catch((error: unknown) => term.logger.error({ err: error }, 'failover failed'));
  }

  private async failOver(lost: readonly string[]): Promise<void> {
    const term = this.term;
    let plan = term.plan;
    if (!plan || plan.stopped) return;
    const reshard = plan.reshard;
    if (reshard && lost.some((hostId) => (reshard.hosts[hostId]?.length ?? 0) > 0)) {
      // Part of the new generation is gone with the host: roll the reshard back (the old generation
      // still serves everything); the operator can start it again.
      await this.reshard.rollBack(`host(s) ${lost.join(', ')} lost during the reshard`);
      plan = term.plan;
      if (!plan) return;
    }
    const stillLost = lost.filter(
      (hostId) => (plan.hosts[hostId]?.length ?? 0) > 0 && term.registry.isLost(hostId),
    );
    if (stillLost.length === 0) return;
    const remaining = term.registry.online().filter((host) => !stillLost.includes(host.facts.hostId));
    if (remaining.length === 0) {
      for (const hostId of stillLost)
        if (!term.lostLogged.has(hostId)) {
          term.lostLogged.add(hostId);
          term.logger.error({ hostId }, 'host lost and no other host is online to take its shards over');
        }
      return;
    }
    const { plan: afterLoss, moved } = planAfterLoss(plan, stillLost, remaining);
    // A reshard whose new generation lives on the remaining hosts goes on.
    // Cluster failures stand across a failover (a cluster moved whole keeps its id and record).
    const next: PlanRecord = { ...afterLoss, reshard: plan.reshard ?? null, failures: plan.failures ?? [] };
    await term.savePlan(next);
    for (const hostId of stillLost) term.lostLogged.delete(hostId);
    term.logger.warn(
      {
        lost: stillLost,
        moved,
        epoch: next.epoch,
        to: Object.fromEntries(
          Object.entries(next.hosts).map(([id, clusters]) => [id, clusters.map((c) => c.clusterId)]),
        ),
      },
      `host(s) lost: ${moved} shards move; each new owner starts them once the lost host's leases expire, resuming their sessions`,
    );
    await this.assignments.assignAll();
  }
}
