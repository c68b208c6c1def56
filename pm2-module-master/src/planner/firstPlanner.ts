import { DisclusterError, ErrorCode } from 'discluster-protocol';
import { firstPlan, pinAlignmentWarning } from '../fleetPlans.js';
import { fetchGatewayBot, resolveShardCount, type GatewayBot } from '../gatewayBot.js';
import type { HostAssignments } from '../hosts/hostAssignments.js';
import type { Term } from '../leadership/term.js';

/**
 * The first plan of a fleet, made by the term that finds none in KV: wait for CONTROLs, ask
 * Discord for the shard count and limits, split the shards over the hosts, assign them.
 */
export class FirstPlanner {
  public constructor(
    private readonly term: Term,
    private readonly assignments: HostAssignments,
  ) {}

  public async plan(): Promise<void> {
    const term = this.term;
    term.planning = true;
    try {
      await this.waitForHosts();
      const gateway = await this.fetchGateway();
      if (!gateway || term.ended) return;
      // Bad pins (overlapping, or outside the shard count) refuse the plan: wait until they are fixed.
      let refusedFor: string | null = null;
      for (;;) {
        if (term.ended) return;
        try {
          await this.makePlan(gateway);
          term.firstPlanRefused = null;
          return;
        } catch (error) {
          if (!(error instanceof DisclusterError) || error.code !== ErrorCode.PlacementRefused) throw error;
          if (refusedFor !== error.message)
            term.logger.error({ code: error.code }, `first plan refused, nothing assigned: ${error.message}`);
          refusedFor = error.message;
          term.firstPlanRefused = error.message;
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }
      }
    } catch (error) {
      if (!term.ended) term.logger.error({ err: error }, 'planning failed');
    } finally {
      term.planning = false;
    }
  }

  private async makePlan(gateway: GatewayBot): Promise<void> {
    const term = this.term;
    await term.enqueue(async () => {
      if (term.plan) return;
      const hosts = term.registry.online();
      const shardCount = resolveShardCount(term.config.shards, gateway);
      const plan = firstPlan(hosts, shardCount, gateway, 1);
      await term.savePlan(plan);
      term.logger.info(
        {
          epoch: plan.epoch,
          shardCount,
          maxConcurrency: gateway.session_start_limit.max_concurrency,
          hosts: Object.fromEntries(
            Object.entries(plan.hosts).map(([id, clusters]) => [
              id,
              clusters.flatMap((c) => c.shardIds).length,
            ]),
          ),
        },
        'first plan made: assigning shards',
      );
      const unaligned = pinAlignmentWarning(hosts, shardCount, gateway.session_start_limit.max_concurrency);
      if (unaligned) term.logger.warn(unaligned);
      await this.assignments.assignAll();
    });
  }

  /** Waits `wait_for_hosts_ms` (seed 004) or until `expected_hosts` announced, and for at least one active host. */
  private async waitForHosts(): Promise<void> {
    const term = this.term;
    const clock = term.clock;
    const started = clock.monotonic();
    let lastLog = 0;
    for (;;) {
      if (term.ended) throw new DisclusterError(ErrorCode.Closed, 'no longer the leader');
      const online = term.registry.online();
      const active = online.filter((host) => host.facts.role === 'active').length;
      const waited = clock.monotonic() - started;
      const expected = term.config.expected_hosts;
      const enough = expected !== undefined ? online.length >= expected : false;
      if (online.length > 0 && (enough || waited >= term.config.wait_for_hosts_ms)) {
        if (active === 0)
          term.logger.warn('only standby hosts announced: they take the shards, since no active host exists');
        return;
      }
      if (clock.monotonic() - lastLog >= 5_000) {
        lastLog = clock.monotonic();
        term.logger.info(
          {
            announced: online.map((host) => host.facts.hostId),
            expected: expected ?? null,
            waitedMs: Math.round(waited),
            waitForHostsMs: term.config.wait_for_hosts_ms,
          },
          'waiting for CONTROLs to announce themselves before the first plan',
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** `GET /gateway/bot`; a rejected token stops the fleet before anything identifies. */
  private async fetchGateway(): Promise<GatewayBot | null> {
    const term = this.term;
    try {
      return await fetchGatewayBot({
        api: term.config.discord_api,
        token: term.token,
        restGlobalPerSecond: term.config.rest_global_per_second,
        signal: term.abort.signal,
        onRetry: (problem, waitMs, attempt) =>
          term.logger.warn({ problem, waitMs, attempt }, 'GET /gateway/bot failed; retrying'),
      });
    } catch (error) {
      if (error instanceof DisclusterError && error.code === ErrorCode.TokenRejected) {
        term.preplanStop = { reason: error.message, code: null, at: term.clock.wall() };
        term.alerts.send({ kind: 'fleet-stopped', reason: error.message, code: null });
        term.logger.error(
          { code: error.code },
          `${error.message}. The fleet stays stopped; nothing was assigned and no identify was spent.`,
        );
        return null;
      }
      throw error;
    }
  }
}
