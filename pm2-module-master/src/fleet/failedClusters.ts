import { planHostOf } from '../fleetPlans.js';
import type { HostAssignments } from '../hosts/hostAssignments.js';
import type { Term } from '../leadership/term.js';
import { decideOnGiveUp, failureOf, planAfterGiveUp, type GiveUp } from './failedClusterPolicy.js';

/**
 * The term's side of `failed_cluster_action` (issue 17 §1; the decisions are
 * failedClusterPolicy.ts): a give-up, from CONTROL's `cluster.failed` event or, if the event was
 * missed (MASTER down or changing leader then), from a heartbeat that reports the cluster failed
 * under the running epoch, moves the cluster's shards to another host or holds them, records that
 * in the plan (KV) and alerts on a hold.
 */
export class FailedClusters {
  /** Give-ups seen in heartbeats, `<epoch>:<host>:<cluster>`: each is handled once. */
  private readonly seen = new Set<string>();

  public constructor(
    private readonly term: Term,
    private readonly assignments: HostAssignments,
  ) {}

  /** A `cluster.failed` event the plan backs (FleetEvents checked it). */
  public onGiveUp(giveUp: GiveUp): void {
    const term = this.term;
    if (term.plan) this.seen.add(`${term.plan.epoch}:${giveUp.hostId}:${giveUp.clusterId}`);
    void term
      .enqueue(() => this.handle(giveUp))
      .catch((error: unknown) =>
        term.logger.error({ err: error, clusterId: giveUp.clusterId }, 'handling a failed cluster failed'),
      );
  }

  /**
   * On the monitor tick: a planned cluster its host reports `failed` under the running epoch, with
   * no failure recorded for that host, gave up without MASTER hearing of it.
   */
  public check(): void {
    const term = this.term;
    const plan = term.plan;
    if (term.ended || !plan || plan.stopped) return;
    for (const host of term.registry.online()) {
      const { hostId, epoch } = host.facts;
      if (epoch !== plan.epoch) continue;
      for (const report of host.facts.clusters) {
        if (report.state !== 'failed') continue;
        if (!(plan.hosts[hostId] ?? []).some((cluster) => cluster.clusterId === report.clusterId)) continue;
        const known = failureOf(plan, report.clusterId);
        const key = `${plan.epoch}:${hostId}:${report.clusterId}`;
        if (known?.hostId === hostId || this.seen.has(key)) continue;
        this.seen.add(key);
        const giveUp = {
          hostId,
          clusterId: report.clusterId,
          attempts: Math.max(1, report.restarts),
          reason: 'its CONTROL reports it failed (MASTER missed the give-up event)',
          at: term.clock.wall(),
        };
        term.alerts.send({ kind: 'cluster-failed', ...giveUp });
        this.onGiveUp(giveUp);
      }
    }
  }

  private async handle(giveUp: GiveUp): Promise<void> {
    const term = this.term;
    const plan = term.plan;
    if (!plan) return;
    const online = term.registry.online().map(planHostOf);
    const decision = decideOnGiveUp(plan, giveUp, online, term.config.failed_cluster_action);
    const { hostId, clusterId } = giveUp;
    if (decision.kind === 'ignore') {
      term.logger.info({ hostId, clusterId, why: decision.why }, 'failed cluster: nothing to do');
      return;
    }
    const next = planAfterGiveUp(plan, decision, term.clock.wall());
    await term.savePlan(next);
    const { record } = decision;
    if (decision.kind === 'hold') {
      term.logger.error(
        { hostId, clusterId, shards: record.shardIds, failedOn: record.failedOn, why: record.why },
        'failed cluster held: its shards stay down until `discluster rebalance`',
      );
      term.alerts.send({
        kind: 'shards-held',
        hostId,
        clusterId,
        shards: record.shardIds.length,
        failedOn: record.failedOn,
        why: record.why,
      });
      return;
    }
    term.logger.warn(
      { clusterId, from: hostId, to: decision.to, shards: record.shardIds, epoch: next.epoch },
      'failed cluster moved: its new host takes the leases and resumes the sessions',
    );
    await this.assignments.assignAll();
  }
}
