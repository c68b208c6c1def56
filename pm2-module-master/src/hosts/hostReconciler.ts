import type { Msg } from '@nats-io/transport-node';
import {
  ErrorCode,
  HostAnnounceSchema,
  HostHeartbeatSchema,
  subjectHostId,
  type HostHeartbeat,
} from 'discluster-protocol';
import type { FleetActions } from '../fleet/fleetActions.js';
import { pinAlignmentWarning } from '../fleetPlans.js';
import type { Term } from '../leadership/term.js';
import { respond } from 'discluster-runtime';
import { parseMessage } from '../messages.js';
import type { ReshardCoordinator } from '../reshard/reshardCoordinator.js';
import type { DuplicateHosts } from './duplicateHosts.js';
import { duplicateMessage } from './duplicateMessage.js';
import type { HostAssignments } from './hostAssignments.js';

/** A host that does not follow its assignment is reminded at most this often. */
const REASSIGN_INTERVAL_MS = 5_000;

/**
 * Takes in the hosts' announces and heartbeats and brings each host in line with the plan: its
 * assignment, or a stop while the fleet is stopped.
 */
export class HostReconciler {
  public constructor(
    private readonly term: Term,
    private readonly assignments: HostAssignments,
    private readonly fleet: FleetActions,
    private readonly reshard: ReshardCoordinator,
    private readonly duplicates: DuplicateHosts,
  ) {}

  public onHostMessage(msg: Msg, kind: 'announce' | 'heartbeat'): void {
    const term = this.term;
    if (term.ended) return;
    let facts: Omit<HostHeartbeat, 'type'>;
    try {
      const { type: _type, ...rest } = parseMessage(
        msg,
        kind === 'announce' ? HostAnnounceSchema : HostHeartbeatSchema,
      );
      facts = rest;
    } catch (error) {
      term.logger.warn({ subject: msg.subject, problem: String(error) }, `rejected a malformed ${kind}`);
      respond(msg, {
        v: 1,
        ok: false,
        error: { code: ErrorCode.InvalidMessage, message: `malformed ${kind}` },
      });
      return;
    }
    // Heartbeats, and announces on the per-host subject, must come from the host the subject
    // names: NATS permissions can tie that subject to one host's credentials (issue 13 h).
    const named = subjectHostId(term.config.bot, msg.subject);
    if ((kind === 'heartbeat' || named !== null) && named !== facts.hostId) {
      term.logger.warn(
        { subject: msg.subject, hostId: facts.hostId },
        `rejected ${kind === 'heartbeat' ? 'a heartbeat' : 'an announce'} on another host subject`,
      );
      respond(msg, {
        v: 1,
        ok: false,
        error: {
          code: ErrorCode.InvalidMessage,
          message: `${kind} for host ${facts.hostId} on another host's subject`,
        },
      });
      return;
    }
    // One running CONTROL per host id (issue 13 f): a second one is refused and assigned nothing.
    const admission = this.duplicates.admit(facts);
    if (admission === 'pending') {
      // Decided by a status poll; the announce is answered then (a heartbeat just waits for the next).
      if (kind === 'announce') void this.duplicates.settled(facts).then(() => this.onHostMessage(msg, kind));
      return;
    }
    if (admission === 'refuse') {
      respond(msg, {
        v: 1,
        ok: false,
        error: { code: ErrorCode.DuplicateHostId, message: duplicateMessage(facts.hostId) },
      });
      return;
    }
    const newBoot = term.registry.see(facts);
    if (kind === 'announce') {
      if (newBoot)
        term.logger.info(
          { hostId: facts.hostId, role: facts.role, cores: facts.cores, load15: facts.load15 },
          'host announced',
        );
      const plan = term.plan;
      const known = term.registry.get(facts.hostId);
      if (newBoot && plan && known && facts.pinShards) {
        const unaligned = pinAlignmentWarning(
          [known],
          plan.shardCount,
          plan.gateway.session_start_limit.max_concurrency,
        );
        if (unaligned) term.logger.warn({ hostId: facts.hostId }, unaligned);
      }
      respond(msg, { v: 1, ok: true, epoch: term.plan?.epoch ?? null });
    }
    this.reconcile(facts.hostId, newBoot);
    // A reshard switches over as soon as the last new shard reports ready, not at the next tick.
    if (term.plan?.reshard) this.reshard.check();
  }

  /** Brings one host in line with the plan: its assignment, or a stop when the fleet is stopped. */
  private reconcile(hostId: string, newBoot: boolean): void {
    const term = this.term;
    const plan = term.plan;
    const host = term.registry.get(hostId);
    if (!plan || !host) return;
    const now = term.clock.monotonic();
    if (plan.stopped) {
      const running = host.facts.clusters.some(
        (cluster) => cluster.state !== 'stopped' && cluster.state !== 'failed',
      );
      if (running && now - (term.stopSent.get(hostId) ?? -Infinity) > REASSIGN_INTERVAL_MS) {
        term.stopSent.set(hostId, now);
        void term
          .enqueue(() => this.assignments.stopHost(hostId, plan.stopped?.reason ?? 'fleet stopped'))
          .catch(() => undefined);
      }
      return;
    }
    // A CONTROL that restarted reports no epoch, one that missed a plan change an older one; a
    // host outside the plan that still runs clusters (it was cut off and replaced) gets an empty
    // assignment, which stops them.
    const planned = plan.hosts[hostId] !== undefined;
    const needsAssignment = planned ? host.facts.epoch !== plan.epoch : host.facts.clusters.length > 0;
    if (!needsAssignment) {
      if (!planned && newBoot && term.config.auto_rebalance)
        void this.fleet
          .rebalance('auto')
          .catch((error: unknown) => term.logger.warn({ err: String(error) }, 'automatic rebalance failed'));
      return;
    }
    const sent = term.assigned.get(hostId);
    if (
      sent &&
      sent.instanceId === host.facts.instanceId &&
      sent.epoch === plan.epoch &&
      now - sent.at < REASSIGN_INTERVAL_MS
    )
      return;
    term.assigned.set(hostId, { instanceId: host.facts.instanceId, epoch: plan.epoch, at: now });
    void term
      .enqueue(() => this.assignments.assignHost(term.registry.get(hostId) ?? host))
      .catch(() => undefined);
  }
}
