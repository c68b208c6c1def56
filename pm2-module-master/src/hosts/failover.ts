import { DisclusterError, ErrorCode, type PlanRecord } from 'discluster-protocol';
import { drainedOf, planAfterLoss, planHostOf } from '../fleetPlans.js';
import type { Term } from '../leadership/term.js';
import type { ReshardCoordinator } from '../reshard/reshardCoordinator.js';
import type { HostAssignments } from './hostAssignments.js';

/**
 * Fails over hosts that stopped heartbeating (issue 5 §4): their shards move to the hosts still
 * online. Also gives a pinned host that is back (after a loss, or with changed `pin_shards`) its
 * pinned shards again: pins are exact, so they return without waiting for a rebalance.
 */
export class Failover {
  /** The last placement refusal logged (logged once, not every tick). */
  private placementLogged: string | null = null;
  private restoring = false;

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
    for (const hostId of term.lostLogged) if (!term.registry.isLost(hostId)) term.lostLogged.delete(hostId);
    const lost = Object.entries(plan.hosts)
      .filter(([hostId, clusters]) => clusters.length > 0 && term.registry.isLost(hostId))
      .map(([hostId]) => hostId);
    if (lost.length === 0) {
      this.checkPins(plan);
      return;
    }
    void term
      .enqueue(() => this.failOver(lost))
      .catch((error: unknown) => term.logger.error({ err: error }, 'failover failed'));
  }

  /** Queues a pin restore when an online, undrained pinned host does not hold exactly its pins. */
  private checkPins(plan: PlanRecord): void {
    if (this.restoring || plan.reshard) return;
    const drained = drainedOf(plan);
    const misplaced = this.term.registry.online().some((host) => {
      const pins = host.facts.pinShards;
      if (!pins || drained.has(host.facts.hostId)) return false;
      const held = (plan.hosts[host.facts.hostId] ?? []).flatMap((cluster) => cluster.shardIds);
      const size = pins.reduce((sum, [first, last]) => sum + last - first + 1, 0);
      return (
        held.length !== size ||
        held.some((shard) => !pins.some(([first, last]) => shard >= first && shard <= last))
      );
    });
    if (!misplaced) return;
    this.restoring = true;
    void this.term
      .enqueue(() => this.restorePins())
      .catch((error: unknown) => this.term.logger.error({ err: error }, 'restoring pinned shards failed'))
      .finally(() => {
        this.restoring = false;
      });
  }

  private async restorePins(): Promise<void> {
    const term = this.term;
    const plan = term.plan;
    if (!plan || plan.stopped || plan.reshard) return;
    const placed = this.place(() => planAfterLoss(plan, [], term.registry.online()));
    if (!placed || placed.moved === 0) return;
    await term.savePlan(placed.plan);
    term.logger.warn(
      { moved: placed.moved, epoch: placed.plan.epoch },
      `pinned shards return to their pinned host(s): ${placed.moved} shards move, each resuming its session`,
    );
    await this.assignments.assignAll();
  }

  /** Runs a placement; a refusal (bad pins) is logged once per problem and changes nothing. */
  private place<T>(plan: () => T): T | null {
    try {
      const result = plan();
      if (this.placementLogged !== null)
        this.term.logger.info('placement accepted again: the pins no longer conflict');
      this.placementLogged = null;
      return result;
    } catch (error) {
      if (!(error instanceof DisclusterError) || error.code !== ErrorCode.PlacementRefused) throw error;
      if (this.placementLogged !== error.message)
        this.term.logger.error(
          { code: error.code, hosts: this.term.registry.online().map(planHostOf) },
          `placement refused, the plan stays as it is: ${error.message}`,
        );
      this.placementLogged = error.message;
      return null;
    }
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
    const current = plan;
    const placed = this.place(() => planAfterLoss(current, stillLost, remaining));
    if (!placed) return;
    const { plan: afterLoss, moved, unplaced } = placed;
    if (unplaced.length > 0)
      for (const hostId of stillLost)
        if (!term.lostLogged.has(hostId)) {
          term.lostLogged.add(hostId);
          term.logger.error(
            { hostId, waiting: unplaced.length },
            'host lost: shards no other host may take (its pins, with only pinned or drained hosts left) wait for it; add a host without pin_shards or a standby to take them',
          );
        }
    if (moved === 0) return;
    // A reshard whose new generation lives on the remaining hosts goes on.
    // Cluster failures stand across a failover (a cluster moved whole keeps its id and record).
    const next: PlanRecord = { ...afterLoss, reshard: plan.reshard ?? null, failures: plan.failures ?? [] };
    await term.savePlan(next);
    if (unplaced.length === 0) for (const hostId of stillLost) term.lostLogged.delete(hostId);
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
