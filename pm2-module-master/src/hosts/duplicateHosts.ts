import type { HostHeartbeat } from 'discluster-protocol';
import type { Term } from '../leadership/term.js';
import { duplicateMessage } from './duplicateMessage.js';
import { liveInstances } from './instanceProbe.js';

type Facts = Omit<HostHeartbeat, 'type'>;

/** How long MASTER waits for the known instance of a host id to answer a status poll. */
const PROBE_MAX_MS = 2_000;

/** What to do with a host's message. */
export type Admission = 'accept' | 'refuse' | 'pending';

/**
 * One CONTROL per host id (issue 13 f). Two machines with one `host_id` (the default is the
 * hostname, and cloned VMs share it) would both take the host's leases as their own. A message
 * from a new instance of a host id whose known instance is still online is either a restart (the
 * old process is gone) or a second machine: MASTER asks every CONTROL to report, and if the known
 * instance answers, the newcomer is refused, and is assigned nothing while the other lives. The
 * known instance stays, unless only the newcomer runs an assignment (a MASTER that just took over
 * met the idle one first).
 */
export class DuplicateHosts {
  /** hostId → refused instanceId → when it was last heard from (monotonic). */
  private readonly refused = new Map<string, Map<string, number>>();
  /** hostId → the instance a probe found to replace the known one (a restart). */
  private readonly cleared = new Map<string, string>();
  /** `hostId/instanceId` of the newcomers being probed. */
  private readonly probing = new Map<string, Promise<void>>();

  public constructor(private readonly term: Term) {}

  /** Decides about a message from `facts.instanceId`; `pending` until {@link settled} resolves. */
  public admit(facts: Facts): Admission {
    const { registry, clock } = this.term;
    const { hostId, instanceId } = facts;
    const known = registry.get(hostId);
    const online = known !== undefined && !registry.isLost(hostId);
    const refused = this.refused.get(hostId);
    if (refused?.has(instanceId)) {
      if (online && known.facts.instanceId !== instanceId) {
        refused.set(instanceId, clock.monotonic());
        return 'refuse';
      }
      refused.delete(instanceId); // The instance it clashed with is gone: it may be the host now.
    }
    if (this.cleared.get(hostId) === instanceId) {
      this.cleared.delete(hostId);
      return 'accept';
    }
    if (!online || known.facts.instanceId === instanceId) return 'accept';
    const key = `${hostId}/${instanceId}`;
    if (!this.probing.has(key))
      this.probing.set(
        key,
        this.probe(known.facts, facts).finally(() => this.probing.delete(key)),
      );
    return 'pending';
  }

  /** Resolves once the probe about `facts`' instance (if one runs) has decided. */
  public async settled(facts: Facts): Promise<void> {
    await this.probing.get(`${facts.hostId}/${facts.instanceId}`);
  }

  /** The instances refused per host id, heard from within the host timeout (for `discluster status`). */
  public conflicts(): Map<string, string[]> {
    const now = this.term.clock.monotonic();
    const conflicts = new Map<string, string[]>();
    for (const [hostId, instances] of this.refused) {
      const live = [...instances]
        .filter(([, lastSeen]) => now - lastSeen <= this.term.config.host_timeout_ms)
        .map(([instanceId]) => instanceId);
      if (live.length > 0) conflicts.set(hostId, live);
    }
    return conflicts;
  }

  private async probe(known: Facts, newcomer: Facts): Promise<void> {
    const term = this.term;
    const waitMs = Math.min(PROBE_MAX_MS, term.config.host_timeout_ms / 2);
    const live = await liveInstances(term.nc, term.config.bot, known.hostId, known.instanceId, waitMs);
    if (term.ended) return;
    if (!live.has(known.instanceId)) {
      // The known process did not answer: it restarted (or died), and the newcomer is the host now.
      this.cleared.set(known.hostId, newcomer.instanceId);
      return;
    }
    // Two live CONTROLs with one host id. Keep the one running the plan if only one does.
    const [keep, refuse] =
      known.epoch === null && newcomer.epoch !== null ? [newcomer, known] : [known, newcomer];
    if (keep === newcomer) this.cleared.set(known.hostId, newcomer.instanceId);
    const refused = this.refused.get(known.hostId) ?? new Map<string, number>();
    refused.set(refuse.instanceId, term.clock.monotonic());
    this.refused.set(known.hostId, refused);
    term.logger.error(
      { hostId: known.hostId, kept: keep.instanceId, refused: refuse.instanceId },
      duplicateMessage(known.hostId),
    );
  }
}
