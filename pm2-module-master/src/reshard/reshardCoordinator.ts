import { DisclusterError, ErrorCode, type PlanRecord, type ReshardProgress } from 'discluster-protocol';
import { fetchGatewayBot } from '../gatewayBot.js';
import type { HostAssignments } from '../hosts/hostAssignments.js';
import type { Term } from '../leadership/term.js';
import { abortHandover, runHandover } from './handoverDriver.js';
import { hostsNotHeardFrom } from './handoverHosts.js';
import {
  generationClusterIds,
  planAfterReshard,
  planWithReshard,
  planWithoutReshard,
} from './newGeneration.js';
import { autoReshardReason, checkReshardBudget, chooseShardCount, identifyTimeMs } from './reshardPolicy.js';

/** Discord's identify window: the reshard ETA assumes it (the simulator may use a shorter one). */
const DISCORD_IDENTIFY_WINDOW_MS = 5_000;

/**
 * Resharding (issue 7) for one term: starts a new generation beside the running one, follows its
 * progress, switches over once every new shard is ready, and rolls back when it cannot finish.
 * Its state lives in the plan record, so a MASTER that takes over mid-reshard carries on.
 */
export class ReshardCoordinator {
  public constructor(
    private readonly term: Term,
    private readonly assignments: HostAssignments,
  ) {}

  /**
   * Starts a reshard: checks the target and the day's session starts, plans the new generation
   * beside the running one and assigns it (standby). Nothing changes when it is refused.
   */
  public async start(requested: number | undefined, reason: string): Promise<ReshardProgress> {
    const term = this.term;
    return term.enqueue(async () => {
      const plan = term.requirePlan();
      if (plan.reshard)
        throw new DisclusterError(
          ErrorCode.ReshardRefused,
          `a reshard to ${plan.reshard.shardCount} shards is already running (started ${new Date(plan.reshard.startedAt).toISOString()})`,
        );
      if (plan.resplit)
        throw new DisclusterError(
          ErrorCode.ReshardRefused,
          `a re-split to ${plan.resplit.shardsPerCluster} shards per cluster is running; reshard once it finished (\`discluster status\`)`,
        );
      const hosts = term.registry.online();
      if (hosts.length === 0)
        throw new DisclusterError(ErrorCode.ReshardRefused, 'no host is online to run the new generation');
      const gateway = await fetchGatewayBot({
        api: term.config.discord_api,
        token: term.token,
        restGlobalPerSecond: term.config.rest_global_per_second,
        signal: term.abort.signal,
      });
      const guilds = hosts
        .flatMap((host) => host.facts.clusters)
        .flatMap((cluster) => cluster.shards ?? [])
        .reduce((total, shard) => total + shard.guilds, 0);
      const target = chooseShardCount({
        current: plan.shardCount,
        requested,
        gateway,
        guilds,
        guildsPerShard: term.config.reshard_guilds_per_shard,
      });
      if (!target.ok)
        throw new DisclusterError(ErrorCode.ReshardRefused, `reshard refused: ${target.reason}`);
      const budget = checkReshardBudget({
        shardCount: target.shardCount,
        remaining: gateway.session_start_limit.remaining,
        resetAfterMs: gateway.session_start_limit.reset_after,
        floor: term.config.reshard_budget_floor,
      });
      if (!budget.ok)
        throw new DisclusterError(ErrorCode.ReshardRefused, `reshard refused: ${budget.reason}`);
      const next = planWithReshard(plan, hosts, target.shardCount, gateway, reason);
      await term.savePlan(next);
      term.logger.warn(
        {
          id: next.reshard?.id,
          from: plan.shardCount,
          to: target.shardCount,
          reason,
          epoch: next.epoch,
          etaMs: identifyTimeMs(
            target.shardCount,
            gateway.session_start_limit.max_concurrency,
            DISCORD_IDENTIFY_WINDOW_MS,
          ),
        },
        'reshard started: the new generation identifies beside the old one, which keeps serving',
      );
      await this.assignments.assignAll();
      const progress = this.progress();
      if (!progress) throw new DisclusterError(ErrorCode.ReshardRefused, 'the reshard ended at once');
      return progress;
    });
  }

  /** Where a running reshard stands (status, page, metrics); null when none runs. */
  public progress(): ReshardProgress | null {
    const plan = this.term.plan;
    const reshard = plan?.reshard;
    if (!plan || !reshard) return null;
    const ready = this.readyShards();
    return {
      id: reshard.id,
      from: plan.shardCount,
      to: reshard.shardCount,
      phase: reshard.phase,
      reason: reshard.reason,
      ready,
      total: reshard.shardCount,
      startedAt: reshard.startedAt,
      etaMs: identifyTimeMs(
        reshard.shardCount - ready,
        plan.gateway.session_start_limit.max_concurrency,
        DISCORD_IDENTIFY_WINDOW_MS,
      ),
    };
  }

  /** Switches over once every new shard is ready (or resumes a switch a previous MASTER began). */
  public check(): void {
    const term = this.term;
    const plan = term.plan;
    const reshard = plan?.reshard;
    if (!plan || !reshard || term.switching || plan.stopped) return;
    const lost = Object.entries(reshard.hosts)
      .filter(([hostId, clusters]) => clusters.length > 0 && term.registry.isLost(hostId))
      .map(([hostId]) => hostId);
    if (lost.length > 0 && reshard.phase !== 'switching') {
      // A host of the new generation is gone (it may run none of the old one, so no failover
      // notices): roll back, the old generation serves on.
      term.switching = true;
      void term
        .enqueue(() => this.rollBack(`host(s) ${lost.join(', ')} lost during the reshard`))
        .catch((error: unknown) => term.logger.error({ err: error }, 'rolling the reshard back failed'))
        .finally(() => (term.switching = false));
      return;
    }
    if (reshard.phase !== 'switching' && this.readyShards() < reshard.shardCount) return;
    // A MASTER that took over mid-switch hears its hosts one heartbeat at a time: a handover begun
    // before one reported would leave that host's old clusters out of it (never told to cut over,
    // they deliver on beside the new generation: every event twice).
    if (hostsNotHeardFrom(term.registry, [plan.hosts, reshard.hosts]).length > 0) return;
    term.switching = true;
    void term
      .enqueue(() => this.switchOver())
      .catch((error: unknown) => term.logger.error({ err: error }, 'reshard switch-over failed; retrying'))
      .finally(() => (term.switching = false));
  }

  /** Stops the new generation and forgets the reshard; the old generation serves on. Run it queued. */
  public async rollBack(why: string): Promise<void> {
    const term = this.term;
    const plan = term.plan;
    const reshard = plan?.reshard;
    if (!plan || !reshard) return;
    if (reshard.phase === 'switching')
      await abortHandover({
        nc: term.nc,
        bot: term.config.bot,
        reshardId: reshard.id,
        oldClusterIds: generationClusterIds(plan.hosts),
        newClusterIds: generationClusterIds(reshard.hosts),
        logger: term.logger,
        requestTimeoutMs: 2_000,
      });
    await term.savePlan(planWithoutReshard(plan));
    term.logger.error(
      { id: reshard.id, to: reshard.shardCount, why },
      'reshard rolled back: the old generation keeps serving',
    );
    term.alerts.send({
      kind: 'reshard-rolled-back',
      reshardId: reshard.id,
      from: plan.shardCount,
      to: reshard.shardCount,
      why,
    });
  }

  /** `auto_reshard`: Discord recommends more shards, or a shard carries too many guilds. */
  public async autoReshard(): Promise<void> {
    const term = this.term;
    const plan = term.plan;
    if (!plan || plan.stopped || plan.reshard || term.ended) return;
    try {
      const gateway = await fetchGatewayBot({
        api: term.config.discord_api,
        token: term.token,
        restGlobalPerSecond: term.config.rest_global_per_second,
        signal: term.abort.signal,
      });
      const busiest = Math.max(
        0,
        ...term.registry
          .online()
          .flatMap((host) => host.facts.clusters)
          .flatMap((cluster) => cluster.shards ?? [])
          .map((shard) => shard.guilds),
      );
      const reason = autoReshardReason({
        current: plan.shardCount,
        gateway,
        busiestShardGuilds: busiest,
        guildsPerShard: term.config.reshard_guilds_per_shard,
      });
      if (reason) await this.start(undefined, `auto_reshard: ${reason}`);
    } catch (error) {
      term.logger.warn(
        { err: error instanceof Error ? error.message : String(error) },
        'automatic reshard check failed',
      );
    }
  }

  /** New-generation shards READY with every guild received, per the hosts' latest reports. */
  private readyShards(): number {
    const term = this.term;
    const reshard = term.plan?.reshard;
    if (!reshard) return 0;
    let ready = 0;
    for (const [hostId, clusters] of Object.entries(reshard.hosts)) {
      const host = term.registry.get(hostId);
      if (!host || term.registry.isLost(hostId)) continue;
      for (const cluster of clusters) {
        const report = host.facts.clusters.find((entry) => entry.clusterId === cluster.clusterId);
        for (const shard of report?.shards ?? [])
          if (
            shard.state === 'ready' &&
            (shard.loadingGuilds ?? 0) === 0 &&
            cluster.shardIds.includes(shard.id)
          )
            ready++;
      }
    }
    return ready;
  }

  private async switchOver(): Promise<void> {
    const term = this.term;
    const plan = term.plan;
    const reshard = plan?.reshard;
    if (!plan || !reshard) return;
    if (reshard.phase !== 'switching') {
      await term.savePlan({
        ...plan,
        reshard: { ...reshard, phase: 'switching' },
        updatedAt: term.clock.wall(),
      });
      term.logger.info({ id: reshard.id }, 'every new shard is ready: handing over to the new generation');
    }
    const started = term.clock.monotonic();
    const summary = await runHandover({
      nc: term.nc,
      bot: term.config.bot,
      reshardId: reshard.id,
      // A dead old cluster (fatal close, given up) delivers nothing: no handover with it.
      oldClusterIds: this.runningClusterIds(plan.hosts),
      newClusterIds: generationClusterIds(reshard.hosts),
      logger: term.logger,
      signal: term.abort.signal,
    });
    if (term.ended || !term.plan?.reshard) return;
    const final = planAfterReshard(term.plan);
    await term.savePlan(final);
    term.logger.warn(
      {
        id: reshard.id,
        shardCount: final.shardCount,
        epoch: final.epoch,
        handoverMs: Math.round(term.clock.monotonic() - started),
        totalMs: term.clock.wall() - reshard.startedAt,
        ...summary,
      },
      'reshard finished: the new generation serves; the old one closes',
    );
    term.alerts.send({
      kind: 'reshard-finished',
      reshardId: reshard.id,
      from: plan.shardCount,
      shardCount: final.shardCount,
    });
    await this.assignments.assignAll();
  }

  /** Cluster ids of `hosts` whose host is online and reports them running (not stopped or failed). */
  private runningClusterIds(hosts: PlanRecord['hosts']): number[] {
    const term = this.term;
    const ids: number[] = [];
    for (const [hostId, clusters] of Object.entries(hosts)) {
      const host = term.registry.get(hostId);
      if (!host || term.registry.isLost(hostId)) continue;
      for (const cluster of clusters) {
        const report = host.facts.clusters.find((entry) => entry.clusterId === cluster.clusterId);
        if (report && report.state !== 'stopped' && report.state !== 'failed') ids.push(cluster.clusterId);
      }
    }
    return ids.sort((a, b) => a - b);
  }
}
