import type { Term } from '../leadership/term.js';
import type { KnownHost } from './hostRegistry.js';

/** Sends hosts what the plan gives them (an assignment) or a stop, through the term's commander. */
export class HostAssignments {
  public constructor(private readonly term: Term) {}

  /** `force`: send even if the host already reports the plan's epoch (after a plan change). */
  public async assignHost(host: KnownHost, force = false): Promise<void> {
    const term = this.term;
    const plan = term.plan;
    if (!plan || plan.stopped) return;
    const hostId = host.facts.hostId;
    const latest = term.registry.get(hostId)?.facts;
    if (!force && latest && latest.instanceId === host.facts.instanceId && latest.epoch === plan.epoch)
      return;
    term.assigned.set(hostId, {
      instanceId: host.facts.instanceId,
      epoch: plan.epoch,
      at: term.clock.monotonic(),
    });
    try {
      // CONTROL answers once it applied the assignment, which can include waiting for a lost
      // host's leases to expire.
      await term.commander.send(hostId, term.commander.assignment(plan, host), term.config.lease_ms + 30_000);
      term.logger.info(
        { hostId, epoch: plan.epoch, clusters: (plan.hosts[hostId] ?? []).map((c) => c.clusterId) },
        'host runs its assignment',
      );
    } catch (error) {
      term.logger.warn(
        { hostId, err: error instanceof Error ? error.message : String(error) },
        'assignment not applied',
      );
    }
  }

  /** Sends every online host its assignment (after a plan change), concurrently. */
  public async assignAll(): Promise<void> {
    await Promise.all(this.term.registry.online().map((host) => this.assignHost(host, true)));
  }

  public async stopHost(hostId: string, reason: string): Promise<void> {
    this.term.stopSent.set(hostId, this.term.clock.monotonic());
    await this.term.commander.send(hostId, { v: 1, type: 'stop-all', reason }, 60_000);
  }
}
