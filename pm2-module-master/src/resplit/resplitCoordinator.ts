import { randomBytes } from 'node:crypto';
import {
  DisclusterError,
  ErrorCode,
  clusterSizeProblem,
  type PlanRecord,
  type ResplitProgress,
} from 'discluster-protocol';
import type { HostAssignments } from '../hosts/hostAssignments.js';
import type { Term } from '../leadership/term.js';
import { resplitCounts, resplitSize, resplitStep } from './resplitPlan.js';

type Resplit = NonNullable<PlanRecord['resplit']>;

/**
 * The rolling re-split (`discluster resplit`, issue 17 §5) for one term: changes the fleet's shards
 * per cluster one group of clusters per host at a time, each step once the previous step's new
 * clusters reported every shard ready. Its state is in the plan record, so a MASTER that takes
 * over mid-way carries on; the steps follow from the plan as it is then, so failovers, drains and
 * rebalances meanwhile need no special case.
 */
export class ResplitCoordinator {
  private advancing = false;

  public constructor(
    private readonly term: Term,
    private readonly assignments: HostAssignments,
  ) {}

  /** Starts a re-split to `shardsPerCluster`; refused with nothing changed when it cannot run. */
  public async start(shardsPerCluster: number, reason: string): Promise<ResplitProgress> {
    const term = this.term;
    return term.enqueue(async () => {
      const plan = term.requirePlan();
      const refuse = (why: string) =>
        new DisclusterError(ErrorCode.ResplitRefused, `resplit refused, nothing changed: ${why}`);
      if (plan.stopped) throw refuse('the fleet is stopped; `discluster restart` it first');
      if (plan.reshard) throw refuse('a reshard is running; wait until it finished (`discluster status`)');
      if (plan.resplit)
        throw refuse(
          `a re-split to ${plan.resplit.shardsPerCluster} shards per cluster is already running; wait until it finished (\`discluster status\`)`,
        );
      const problem = clusterSizeProblem(shardsPerCluster, plan.gateway.session_start_limit.max_concurrency);
      if (problem) throw refuse(problem);
      const now = term.clock.wall();
      const resplit: Resplit = {
        id: randomBytes(9).toString('base64url'),
        shardsPerCluster,
        reason,
        startedAt: now,
        waitingFor: [],
        stepStartedAt: now,
        steps: 0,
      };
      const counts = resplitCounts(plan, resplitSize(plan, shardsPerCluster));
      await term.savePlan({
        ...plan,
        epoch: plan.epoch + 1,
        clusterSize: shardsPerCluster,
        resplit,
        updatedAt: now,
      });
      term.logger.warn(
        { id: resplit.id, shardsPerCluster, clusters: counts.total, alreadyDone: counts.done, reason },
        'resplit started: clusters are replaced one group per host at a time, every shard resuming',
      );
      await this.advance();
      const progress = this.progress();
      if (progress) return progress;
      // Nothing to swap: it ended at once.
      return {
        id: resplit.id,
        shardsPerCluster,
        reason,
        clustersDone: counts.done,
        clustersTotal: counts.total,
        waitingFor: [],
        steps: 0,
        startedAt: now,
        stepStartedAt: now,
      };
    });
  }

  /** Where a running re-split stands (status, page, metrics); null when none runs. */
  public progress(): ResplitProgress | null {
    const plan = this.term.plan;
    const resplit = plan?.resplit;
    if (!plan || !resplit) return null;
    const counts = resplitCounts(plan, resplitSize(plan, resplit.shardsPerCluster));
    const waiting = this.notReady(plan, resplit.waitingFor);
    return {
      id: resplit.id,
      shardsPerCluster: resplit.shardsPerCluster,
      reason: resplit.reason,
      // A cluster of the running step counts once its shards are ready.
      clustersDone: Math.max(0, counts.done - waiting.length),
      clustersTotal: counts.total,
      waitingFor: waiting,
      steps: resplit.steps,
      startedAt: resplit.startedAt,
      stepStartedAt: resplit.stepStartedAt,
    };
  }

  /** Takes the next step once the last one's clusters are ready (MASTER's monitor tick). */
  public check(): void {
    const term = this.term;
    const plan = term.plan;
    const resplit = plan?.resplit;
    if (!plan || !resplit || plan.stopped || plan.reshard || this.advancing || term.ended) return;
    if (this.notReady(plan, resplit.waitingFor).length > 0) return;
    this.advancing = true;
    void term
      .enqueue(() => this.advance())
      .catch((error: unknown) => term.logger.error({ err: error }, 'resplit step failed; retrying'))
      .finally(() => (this.advancing = false));
  }

  /** Saves and assigns the next step, or ends the re-split when none is left. Run it queued. */
  private async advance(): Promise<void> {
    const term = this.term;
    const plan = term.plan;
    const resplit = plan?.resplit;
    if (!plan || !resplit || plan.stopped || plan.reshard) return;
    if (this.notReady(plan, resplit.waitingFor).length > 0) return;
    // Lost hosts that still hold clusters wait for their failover; an empty one (a dead standby)
    // holds nothing to re-split and must not hold the end back.
    const lost = new Set(
      Object.entries(plan.hosts)
        .filter(([hostId, clusters]) => clusters.length > 0 && term.registry.isLost(hostId))
        .map(([hostId]) => hostId),
    );
    const now = term.clock.wall();
    const step = resplitStep(plan, resplitSize(plan, resplit.shardsPerCluster), lost, now);
    if (!step) {
      if (lost.size > 0) return; // a lost host's clusters are re-split once failover moved them
      const counts = resplitCounts(plan, resplitSize(plan, resplit.shardsPerCluster));
      await term.savePlan({ ...plan, epoch: plan.epoch + 1, resplit: null, updatedAt: now });
      term.logger.warn(
        {
          id: resplit.id,
          shardsPerCluster: resplit.shardsPerCluster,
          steps: resplit.steps,
          clusters: counts.total,
          leftAsTheyAre: counts.skipped,
          totalMs: now - resplit.startedAt,
        },
        counts.skipped > 0
          ? 'resplit finished, except groups holding a failed cluster (they re-split after `discluster rebalance` clears the failure)'
          : 'resplit finished: every cluster has the new size',
      );
      await this.assignments.assignAll();
      return;
    }
    await term.savePlan({
      ...step.plan,
      resplit: {
        ...resplit,
        waitingFor: [...step.started],
        stepStartedAt: now,
        steps: resplit.steps + 1,
      },
    });
    term.logger.info(
      { id: resplit.id, step: resplit.steps + 1, stopping: step.stopped, starting: step.started },
      'resplit step: these clusters stop (saving their sessions), the new ones resume their shards',
    );
    await this.assignments.assignAll();
  }

  /**
   * The clusters of `ids` still in the plan whose shards are not all READY per their host's latest
   * report. A cluster gone from the plan (a failover re-planned it) or with a standing failure
   * (failed_cluster_action handles it) is not waited for.
   */
  private notReady(plan: PlanRecord, ids: readonly number[]): number[] {
    const term = this.term;
    const failed = new Set((plan.failures ?? []).map((record) => record.clusterId));
    const waiting: number[] = [];
    for (const [hostId, clusters] of Object.entries(plan.hosts)) {
      const reports = term.registry.get(hostId)?.facts.clusters ?? [];
      for (const cluster of clusters) {
        if (!ids.includes(cluster.clusterId) || failed.has(cluster.clusterId)) continue;
        const report = reports.find((entry) => entry.clusterId === cluster.clusterId);
        const ready = cluster.shardIds.every((shardId) =>
          report?.shards?.some((shard) => shard.id === shardId && shard.state === 'ready'),
        );
        if (!ready) waiting.push(cluster.clusterId);
      }
    }
    return waiting.sort((a, b) => a - b);
  }
}
