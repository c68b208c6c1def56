import type { Msg } from '@nats-io/transport-node';
import {
  DisclusterError,
  ErrorCode,
  FleetEventSchema,
  subjectHostId,
  type FleetEvent,
} from 'discluster-protocol';
import type { Term } from '../leadership/term.js';
import { parseMessage } from '../messages.js';
import type { ReshardCoordinator } from '../reshard/reshardCoordinator.js';
import { eventMismatch } from './eventOrigin.js';
import type { FleetActions } from './fleetActions.js';
import type { FailedClusters } from './failedClusters.js';
import { redactSecrets } from '../alerts/alertPolicy.js';

/** Discord's close code "sharding required": a shard would carry too many guilds. */
const SHARDING_REQUIRED = 4011;

/**
 * What MASTER does about the fleet events CONTROLs publish: a cluster that gave up is logged,
 * alerted on, and its shards moved or held (`failed_cluster_action`, {@link FailedClusters}); a
 * fatal close rolls a reshard back (new generation), reshards (4011) or stops the fleet.
 */
export class FleetEvents {
  public constructor(
    private readonly term: Term,
    private readonly fleet: FleetActions,
    private readonly reshard: ReshardCoordinator,
    private readonly failed: FailedClusters,
  ) {}

  public onEvent(msg: Msg): void {
    const term = this.term;
    if (term.ended) return;
    let event: FleetEvent;
    try {
      event = parseMessage(msg, FleetEventSchema);
    } catch (error) {
      term.logger.warn({ subject: msg.subject, problem: String(error) }, 'rejected a malformed fleet event');
      return;
    }
    // A per-host subject is what NATS permissions tie to one host's credentials: it must match.
    const named = subjectHostId(term.config.bot, msg.subject);
    const mismatch =
      named !== null && named !== event.hostId
        ? `it names host ${event.hostId} on host ${named}'s subject`
        : eventMismatch(term.plan, event);
    if (mismatch) {
      term.logger.warn(
        {
          subject: msg.subject,
          type: event.type,
          hostId: event.hostId,
          clusterId: event.clusterId,
          mismatch,
        },
        'ignored a fleet event the plan does not back',
      );
      return;
    }
    if (event.type === 'cluster.failed') {
      term.logger.error(
        {
          hostId: event.hostId,
          clusterId: event.clusterId,
          attempts: event.attempts,
          // A reason is a process's own output: a token-shaped string in it never reaches the log.
          reason: redactSecrets(event.reason, [term.token]),
        },
        'cluster failed and will not be restarted by its CONTROL',
      );
      const { hostId, clusterId, attempts, reason } = event;
      term.alerts.send({ kind: 'cluster-failed', hostId, clusterId, attempts, reason });
      this.failed.onGiveUp({
        hostId,
        clusterId,
        attempts,
        reason: redactSecrets(reason, [term.token]),
        at: term.clock.wall(),
      });
      return;
    }
    const reason = `shard ${event.shardId} (cluster ${event.clusterId} on host ${event.hostId}) closed with fatal code ${event.code}: ${event.reason}`;
    const reshard = term.plan?.reshard;
    if (
      reshard &&
      Object.values(reshard.hosts).some((clusters) => clusters.some((c) => c.clusterId === event.clusterId))
    ) {
      // The new generation cannot serve (a fatal close of one of its shards): the old one still
      // does. Roll back rather than stop the fleet; the reason is in the log.
      void term
        .enqueue(() => this.reshard.rollBack(reason))
        .catch((error: unknown) => term.logger.error({ err: error }, 'rolling the reshard back failed'));
      return;
    }
    if (event.code === SHARDING_REQUIRED) {
      // 4011: a shard has too many guilds. Reshard instead of stopping; the other shards keep serving.
      void this.reshard.start(undefined, `4011 (sharding required) from ${reason}`).then(
        (progress) =>
          term.logger.warn(
            { to: progress.to, id: progress.id },
            'resharding because Discord closed a shard with 4011',
          ),
        (error: unknown) => {
          if (error instanceof DisclusterError && error.code === ErrorCode.ReshardRefused)
            term.logger.error(
              { err: error.message },
              'Discord asks for more shards (4011) but the reshard was refused',
            );
          else term.logger.error({ err: error }, 'reshard after 4011 failed');
        },
      );
      return;
    }
    void this.fleet
      .stop(reason, event.code)
      .catch((error: unknown) => term.logger.error({ err: error }, 'stopping the fleet failed'));
  }
}
