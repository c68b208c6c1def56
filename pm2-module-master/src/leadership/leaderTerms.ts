import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { fleetSubjects, type MasterConfig } from 'discluster-protocol';
import { AlertWatch } from '../alerts/alertWatch.js';
import type { AlertSink } from '../alerts/webhookAlertSender.js';
import type { Clock } from '../clock.js';
import { FleetActions } from '../fleet/fleetActions.js';
import { FailedClusters } from '../fleet/failedClusters.js';
import { FleetEvents } from '../fleet/fleetEvents.js';
import type { FleetView } from '../http/statusSource.js';
import { DuplicateHosts } from '../hosts/duplicateHosts.js';
import { Failover } from '../hosts/failover.js';
import { HostAssignments } from '../hosts/hostAssignments.js';
import { HostReconciler } from '../hosts/hostReconciler.js';
import type { Logger } from '../logger.js';
import { OperatorApi } from '../operator/operatorApi.js';
import { FirstPlanner } from '../planner/firstPlanner.js';
import { ResplitCoordinator } from '../resplit/resplitCoordinator.js';
import { ReshardCoordinator } from '../reshard/reshardCoordinator.js';
import { LeaseBucketTtl } from './leaseBucketTtl.js';
import { SerialQueue } from './serialQueue.js';
import { Term, type Commander, type PlanStoreLike, type TermEnd } from './term.js';

export interface LeaderTermsOptions {
  readonly config: MasterConfig;
  readonly token: string;
  readonly logger: Logger;
  readonly nc: NatsConnection;
  readonly clock: Clock;
  /** Opens the plan store a term reads on election and writes by compare-and-set. */
  readonly openStore: () => Promise<PlanStoreLike>;
  /** Builds the term's one host commander. */
  readonly commander: () => Commander;
  /** Whether this MASTER still holds the leadership (it may have lost it while a term was starting). */
  readonly isLeader: () => boolean;
  /** Gives the leadership back (see {@link Leadership.resign}). */
  readonly resign: (reason: string) => Promise<void>;
  /** Where terms send their alerts (`alert_webhook_url`). */
  readonly alerts?: AlertSink;
}

/** A running term and the roles that act in it. */
interface Running {
  readonly term: Term;
  readonly operator: OperatorApi;
}

/**
 * Starts a term when this MASTER is elected and ends it when it is deposed or shuts down. A term
 * that fails (its plan write met a compare-and-set conflict) makes MASTER resign: a leader that
 * kept the key without a term would answer nobody and block every standby (issue 13 c).
 */
export class LeaderTerms {
  private running: Running | null = null;
  private closed = false;
  /** Shared by every term: a task of an ended term still finishes before the next term's first. */
  private readonly queue = new SerialQueue();

  public constructor(private readonly options: LeaderTermsOptions) {}

  /** Takes over as leader: reads the plan and starts acting on it. Throws if it cannot. */
  public async begin(): Promise<void> {
    const { config, logger, nc } = this.options;
    if (this.closed) return;
    const store = await this.options.openStore();
    // MASTER owns the shard lease bucket's TTL (`lease_ms`); CONTROLs renew their leases in it.
    const leaseTtl = await LeaseBucketTtl.start({
      nc,
      bot: config.bot,
      ttlMs: config.lease_ms,
      logger,
      replicas: config.kv_replicas,
    });
    const stored = await store.load().catch((error: unknown) => {
      leaseTtl.stop();
      throw error;
    });
    if (!this.options.isLeader() || this.closed) {
      leaseTtl.stop();
      return;
    }
    this.end({ kind: 'deposed', reason: 'a new term begins' });
    const term: Term = new Term(
      { ...this.options, store, commander: this.options.commander(), queue: this.queue },
      stored,
      (end) => this.ended(term, end),
    );
    const assignments = new HostAssignments(term);
    const reshard = new ReshardCoordinator(term, assignments);
    const fleet = new FleetActions(term, assignments);
    const duplicates = new DuplicateHosts(term);
    const hosts = new HostReconciler(term, assignments, fleet, reshard, duplicates);
    const failover = new Failover(term, assignments, reshard);
    const failed = new FailedClusters(term, assignments);
    const events = new FleetEvents(term, fleet, reshard, failed);
    const resplit = new ResplitCoordinator(term, assignments);
    const operator = new OperatorApi(term, fleet, reshard, resplit, duplicates);
    const watch = new AlertWatch(term);
    this.running = { term, operator };
    term.onEnded(() => leaseTtl.stop());

    const subjects = fleetSubjects(config.bot);
    const listen = (subject: string, handler: (msg: Msg) => void) => {
      const subscription = nc.subscribe(subject, { callback: (_error, msg) => handler(msg) });
      term.onEnded(() => subscription.unsubscribe());
    };
    listen(subjects.allHostAnnounces, (msg) => hosts.onHostMessage(msg, 'announce'));
    listen(subjects.announce, (msg) => hosts.onHostMessage(msg, 'announce'));
    listen(subjects.allHeartbeats, (msg) => hosts.onHostMessage(msg, 'heartbeat'));
    listen(subjects.allEvents, (msg) => events.onEvent(msg));
    listen(subjects.master, (msg) => void operator.onRequest(msg));
    const monitor = setInterval(
      () =>
        // After a stall (no CPU for a while) this timer runs before the messages that waited in
        // the socket are read: judge hosts after them, in the same turn of the event loop, or every
        // host that kept heartbeating looks silent and is failed over.
        setImmediate(() => {
          if (term.ended) return;
          failover.check();
          failed.check();
          reshard.check();
          resplit.check();
          watch.check();
        }),
      Math.min(1_000, config.host_timeout_ms / 4),
    );
    term.onEnded(() => clearInterval(monitor));
    if (config.auto_reshard) {
      const reshardTimer = setInterval(() => void reshard.autoReshard(), config.reshard_check_ms);
      term.onEnded(() => clearInterval(reshardTimer));
    }
    if (term.plan) {
      logger.info(
        {
          epoch: term.plan.epoch,
          shardCount: term.plan.shardCount,
          stopped: term.plan.stopped?.reason ?? null,
        },
        'took over the running plan: no shard moves',
      );
    } else {
      void new FirstPlanner(term, assignments).plan();
    }
  }

  /** Ends the running term, if any (deposed: the leadership already knows; shutdown: it is closing). */
  public end(end: TermEnd): void {
    this.running?.term.end(end);
  }

  /** Ends the running term for good: no term begins after this. */
  public close(): void {
    this.closed = true;
    this.end({ kind: 'shutdown' });
  }

  /** What the status page and `/metrics` show; null while no term runs. */
  public fleetView(): FleetView | null {
    const running = this.running;
    if (!running) return null;
    return {
      status: running.operator.status(),
      plan: running.term.plan,
      hosts: running.term.registry.all().map((host) => host.facts),
    };
  }

  private ended(term: Term, end: TermEnd): void {
    if (this.running?.term === term) this.running = null;
    if (end.kind !== 'failed' || this.closed) return;
    // The term cannot act on what it knows any more: give the key back, so a standby (or this
    // MASTER, after re-reading the plan) leads in a fresh term.
    void this.options
      .resign(end.reason)
      .catch((error: unknown) => this.options.logger.error({ err: error }, 'stepping down failed'));
  }
}
