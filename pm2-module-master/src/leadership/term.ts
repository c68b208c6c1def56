import type { NatsConnection } from '@nats-io/transport-node';
import { DisclusterError, ErrorCode, type MasterConfig, type PlanRecord } from 'discluster-protocol';
import { NO_ALERTS, type AlertSink } from '../alerts/webhookAlertSender.js';
import type { Clock } from '../clock.js';
import type { HostCommander } from '../hosts/hostCommander.js';
import { HostRegistry } from '../hosts/hostRegistry.js';
import type { Logger } from '../logger.js';
import type { PlanStore, StoredPlan } from '../planStore.js';
import type { SerialQueue } from './serialQueue.js';

/** What a term needs of the plan store and of the host commander (tests may pass their own). */
export type PlanStoreLike = Pick<PlanStore, 'load' | 'save'>;
export type Commander = Pick<HostCommander, 'assignment' | 'send' | 'broadcastStopAll'>;

export type Stopped = NonNullable<PlanRecord['stopped']>;

/** Why a term ended: only a `failed` term makes MASTER give the leadership back (issue 13 c). */
export type TermEnd =
  | { readonly kind: 'shutdown' }
  | { readonly kind: 'deposed'; readonly reason: string }
  | { readonly kind: 'failed'; readonly reason: string };

/** What a term works with; {@link LeaderTerms} builds it from MASTER's options. */
export interface TermServices {
  readonly config: MasterConfig;
  readonly token: string;
  readonly logger: Logger;
  /** For the reshard handover, which talks to clusters directly. */
  readonly nc: NatsConnection;
  readonly store: PlanStoreLike;
  /** One per term: every command of the term goes through it. */
  readonly commander: Commander;
  readonly clock: Clock;
  /** Plan changes and host commands run one at a time (shared by every term of the process). */
  readonly queue: SerialQueue;
  /** Where the term's alerts go (`alert_webhook_url`); default: nowhere. */
  readonly alerts?: AlertSink;
}

/**
 * One leadership term: the context every role of a leading MASTER shares (the plan and the
 * revision it was read at, the hosts heard from, what was sent to whom). It ends once, on
 * deposition, shutdown or failure; everything it queued afterwards is dropped.
 */
export class Term {
  public readonly config: MasterConfig;
  public readonly token: string;
  public readonly logger: Logger;
  public readonly nc: NatsConnection;
  public readonly commander: Commander;
  public readonly clock: Clock;
  public readonly registry: HostRegistry;
  /** Alerts (`alert_webhook_url`): only a term sends them, so only the leader does. */
  public readonly alerts: AlertSink;
  /** Aborted when the term ends: cancels its waits and requests. */
  public readonly abort = new AbortController();
  public plan: PlanRecord | null;
  public revision: number;
  /** A stop known before any plan exists (the token was rejected). */
  public preplanStop: Stopped | null = null;
  public planning = false;
  /** hostId → when MASTER last sent it its assignment, for which boot and epoch. */
  public readonly assigned = new Map<string, { instanceId: string; epoch: number; at: number }>();
  public readonly stopSent = new Map<string, number>();
  /** Failover waits for the lost hosts' leases: log that once per host. */
  public readonly lostLogged = new Set<string>();
  /** A reshard's switch-over is queued or running. */
  public switching = false;
  /** Why the first plan is refused (bad pins), shown by `discluster status` until it is made. */
  public firstPlanRefused: string | null = null;

  private readonly store: PlanStoreLike;
  private readonly queue: SerialQueue;
  private readonly cleanups: (() => void)[] = [];
  private endedBy: TermEnd | null = null;

  public constructor(
    services: TermServices,
    stored: StoredPlan | null,
    private readonly onEnd: (end: TermEnd) => void,
  ) {
    this.config = services.config;
    this.token = services.token;
    this.logger = services.logger;
    this.nc = services.nc;
    this.commander = services.commander;
    this.clock = services.clock;
    this.store = services.store;
    this.queue = services.queue;
    this.alerts = services.alerts ?? NO_ALERTS;
    this.registry = new HostRegistry(services.config.host_timeout_ms, () => services.clock.monotonic());
    this.plan = stored?.plan ?? null;
    this.revision = stored?.revision ?? 0;
  }

  public get ended(): boolean {
    return this.endedBy !== null;
  }

  /** Runs `cleanup` when the term ends (subscriptions, timers). */
  public onEnded(cleanup: () => void): void {
    if (this.endedBy) cleanup();
    else this.cleanups.push(cleanup);
  }

  /** Ends the term once: stops its timers and subscriptions, cancels its waits, tells the owner why. */
  public end(end: TermEnd): void {
    if (this.endedBy) return;
    this.endedBy = end;
    this.abort.abort();
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.onEnd(end);
  }

  /** Runs `task` after every earlier plan change; drops it if the term ended meanwhile. */
  public enqueue<T>(task: () => Promise<T>): Promise<T> {
    return this.queue.run(() => {
      if (this.ended) throw new DisclusterError(ErrorCode.Closed, 'this MASTER is no longer the leader');
      return task();
    });
  }

  /**
   * Writes `plan` by compare-and-set on the revision this term knows. A conflict means the plan
   * changed under this MASTER (another MASTER, or a write whose reply was lost): this term can no
   * longer act on what it knows, so it ends as failed and MASTER resigns (see `LeaderTerms`).
   */
  public async savePlan(plan: PlanRecord): Promise<void> {
    try {
      this.revision = await this.store.save(plan, this.revision);
      this.plan = plan;
    } catch (error) {
      if (error instanceof DisclusterError && error.code === ErrorCode.StaleEpoch) {
        this.logger.error({ err: error.message }, 'plan written by another MASTER: stepping down');
        this.end({ kind: 'failed', reason: `plan compare-and-set conflict: ${error.message}` });
      }
      throw error;
    }
  }

  /** The plan, for actions that need one running (not stopped). */
  public requirePlan(): PlanRecord {
    if (!this.plan)
      throw new DisclusterError(
        ErrorCode.NoPlan,
        this.preplanStop
          ? `no plan: ${this.preplanStop.reason}`
          : 'no plan yet: MASTER is waiting for CONTROLs or for GET /gateway/bot',
      );
    if (this.plan.stopped)
      throw new DisclusterError(
        ErrorCode.FleetStopped,
        `the fleet is stopped (${this.plan.stopped.reason}); run \`discluster restart\` once the cause is fixed`,
      );
    return this.plan;
  }
}
