import { randomUUID } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  DisclusterError,
  ErrorCode,
  FleetEventSchema,
  HostAnnounceSchema,
  HostHeartbeatSchema,
  MasterRequestSchema,
  fleetSubjects,
  leaderBucket,
  leaseBucket,
  masterBucket,
  type FleetEvent,
  type FleetStatus,
  type HostHeartbeat,
  type LeaderRecord,
  type MasterConfig,
  type MasterReply,
  type MasterRequest,
  type PlanRecord,
  type ReshardProgress,
  type WhichResult,
  redactNatsUrl,
} from 'discluster-protocol';
import { firstPlan, planAfterLoss, planRebalanced } from './fleetPlans.js';
import { fetchGatewayBot, resolveShardCount, type GatewayBot } from './gatewayBot.js';
import { locateGuild } from './guildLocation.js';
import { HostCommander } from './hostCommander.js';
import { HostRegistry, type KnownHost } from './hostRegistry.js';
import type { HttpServerHandle } from './http/httpServer.js';
import { startStatusHttp } from './http/statusHttp.js';
import type { FleetView } from './http/statusSource.js';
import { openOwnedBucket } from './kvBuckets.js';
import { Leadership } from './leadership.js';
import type { Logger } from './logger.js';
import { connectNats } from './natsOptions.js';
import { PlanStore } from './planStore.js';
import { abortHandover, runHandover } from './reshard/handoverDriver.js';
import {
  generationClusterIds,
  planAfterReshard,
  planWithReshard,
  planWithoutReshard,
} from './reshard/newGeneration.js';
import {
  autoReshardReason,
  checkReshardBudget,
  chooseShardCount,
  identifyTimeMs,
} from './reshard/reshardPolicy.js';
import { buildFleetStatus } from './statusView.js';

/** Discord's identify window: the reshard ETA assumes it (the simulator may use a shorter one). */
const DISCORD_IDENTIFY_WINDOW_MS = 5_000;

const encoder = new TextEncoder();
/** Discord's close code "sharding required": a shard would carry too many guilds. */
const SHARDING_REQUIRED = 4011;
const decoder = new TextDecoder();

/** A host that does not follow its assignment is reminded at most this often. */
const REASSIGN_INTERVAL_MS = 5_000;

type Stopped = NonNullable<PlanRecord['stopped']>;

/** What the leader holds while it leads; dropped when it steps down. */
interface Term {
  readonly registry: HostRegistry;
  readonly subscriptions: Subscription[];
  readonly abort: AbortController;
  monitor?: NodeJS.Timeout;
  store: PlanStore;
  leases: KV;
  plan: PlanRecord | null;
  revision: number;
  /** A stop known before any plan exists (the token was rejected). */
  preplanStop: Stopped | null;
  planning: boolean;
  /** hostId → when MASTER last sent it its assignment, for which boot and epoch. */
  readonly assigned: Map<string, { instanceId: string; epoch: number; at: number }>;
  readonly stopSent: Map<string, number>;
  /** Failover waits for the lost hosts' leases: log that once per host. */
  readonly lostLogged: Set<string>;
  /** A reshard's switch-over is queued or running. */
  switching: boolean;
  reshardTimer?: NodeJS.Timeout;
}

/**
 * MASTER (issue 5): plans shards over the announced hosts, commands CONTROLs, fails lost hosts
 * over, rebalances on request, stops the fleet on fatal gateway errors, and keeps its plan in KV.
 * Only the leader (see {@link Leadership}) subscribes to anything or commands anyone.
 */
export class Master {
  public readonly instanceId = randomUUID();
  private readonly subjects;
  private nc: NatsConnection | undefined;
  private leadership: Leadership | undefined;
  private term: Term | null = null;
  private closed = false;
  /** Plan changes and host commands run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  /** The status page and `/metrics` (`http_port`), served by every MASTER, leader or standby. */
  private http: HttpServerHandle | null = null;

  public constructor(
    private readonly config: MasterConfig,
    private readonly token: string,
    private readonly logger: Logger,
  ) {
    this.subjects = fleetSubjects(config.bot);
  }

  public async start(): Promise<void> {
    this.logger.info(
      { bot: this.config.bot, nats: this.config.nats_url.map(redactNatsUrl), instanceId: this.instanceId },
      'discluster-master starting',
    );
    // Warns about plaintext, and retries (explaining refusals) until NATS accepts us.
    const nc = await connectNats(this.config, `discluster-master:${this.instanceId}`, this.logger);
    this.nc = nc;
    this.logger.info({ server: nc.getServer() }, 'connected to NATS');
    const leaderKv = await openOwnedBucket(
      nc,
      leaderBucket(this.config.bot),
      this.config.leader_lease_ms,
      'Discluster MASTER leadership lease',
      this.config.kv_replicas,
    );
    this.leadership = new Leadership({
      kv: leaderKv,
      instanceId: this.instanceId,
      ttlMs: this.config.leader_lease_ms,
      logger: this.logger,
      onElected: () => this.lead(),
      onDeposed: () => this.endTerm(),
    });
    const current = await this.leadership.current();
    if (current)
      this.logger.info(
        { leader: current.instanceId, hostname: current.hostname },
        'another MASTER leads: standing by until its lease expires',
      );
    this.leadership.start();
    this.http = await startStatusHttp(this.config, this, this.logger);
    if (this.closed) await this.http?.close();
  }

  /** Where the status page is served, if it is (`http_port`). */
  public get statusUrl(): string | null {
    return this.http?.url ?? null;
  }

  /** What the status page and `/metrics` show (src/http); null while this MASTER does not lead. */
  public fleetView(): FleetView | null {
    const term = this.term;
    if (!term) return null;
    return {
      status: this.status(term),
      plan: term.plan,
      hosts: term.registry.all().map((host) => host.facts),
    };
  }

  /** The leading MASTER's lease record, if any leads. */
  public async currentLeader(): Promise<LeaderRecord | null> {
    return (await this.leadership?.current()) ?? null;
  }

  public async close(): Promise<void> {
    this.closed = true;
    await this.http?.close();
    this.endTerm();
    await this.leadership?.close();
    await this.nc?.drain().catch(() => undefined);
  }

  // ---- leadership -------------------------------------------------------------------------------

  private async lead(): Promise<void> {
    const nc = this.nc;
    if (!nc || this.closed) return;
    const store = new PlanStore(
      await openOwnedBucket(
        nc,
        masterBucket(this.config.bot),
        0,
        'Discluster MASTER plan',
        this.config.kv_replicas,
      ),
    );
    const leases = await openOwnedBucket(
      nc,
      leaseBucket(this.config.bot),
      this.config.lease_ms,
      'Discluster shard ownership leases',
      this.config.kv_replicas,
    );
    const stored = await store.load();
    const term: Term = {
      registry: new HostRegistry(this.config.host_timeout_ms),
      subscriptions: [],
      abort: new AbortController(),
      store,
      leases,
      plan: stored?.plan ?? null,
      revision: stored?.revision ?? 0,
      preplanStop: null,
      planning: false,
      assigned: new Map(),
      stopSent: new Map(),
      lostLogged: new Set(),
      switching: false,
    };
    if (!this.leadership?.isLeader) return;
    this.term = term;
    const listen = (subject: string, handler: (msg: Msg) => void) =>
      term.subscriptions.push(nc.subscribe(subject, { callback: (_error, msg) => handler(msg) }));
    listen(this.subjects.announce, (msg) => this.onHostMessage(msg, 'announce'));
    listen(this.subjects.allHeartbeats, (msg) => this.onHostMessage(msg, 'heartbeat'));
    listen(this.subjects.allEvents, (msg) => this.onEvent(msg));
    listen(this.subjects.master, (msg) => void this.onRequest(msg));
    term.monitor = setInterval(
      () => {
        this.checkHosts();
        this.checkReshard(term);
      },
      Math.min(1_000, this.config.host_timeout_ms / 4),
    );
    if (this.config.auto_reshard)
      term.reshardTimer = setInterval(() => void this.autoReshard(term), this.config.reshard_check_ms);
    if (term.plan) {
      this.logger.info(
        {
          epoch: term.plan.epoch,
          shardCount: term.plan.shardCount,
          stopped: term.plan.stopped?.reason ?? null,
        },
        'took over the running plan: no shard moves',
      );
    } else {
      void this.planFirst(term);
    }
  }

  private endTerm(): void {
    const term = this.term;
    if (!term) return;
    this.term = null;
    term.abort.abort();
    clearInterval(term.monitor);
    clearInterval(term.reshardTimer);
    for (const subscription of term.subscriptions) subscription.unsubscribe();
  }

  /** Runs `task` after every earlier plan change; drops it if the term ended meanwhile. */
  private enqueue<T>(term: Term, task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.term !== term)
        throw new DisclusterError(ErrorCode.Closed, 'this MASTER is no longer the leader');
      return task();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async savePlan(term: Term, plan: PlanRecord): Promise<void> {
    try {
      term.revision = await term.store.save(plan, term.revision);
      term.plan = plan;
    } catch (error) {
      if (error instanceof DisclusterError && error.code === ErrorCode.StaleEpoch) {
        this.logger.error({ err: error.message }, 'plan written by another MASTER: stepping down');
        this.endTerm();
      }
      throw error;
    }
  }

  // ---- the first plan ---------------------------------------------------------------------------

  private async planFirst(term: Term): Promise<void> {
    term.planning = true;
    try {
      await this.waitForHosts(term);
      const gateway = await this.fetchGateway(term);
      if (!gateway || this.term !== term) return;
      await this.enqueue(term, async () => {
        if (term.plan) return;
        const hosts = term.registry.online();
        const shardCount = resolveShardCount(this.config.shards, gateway);
        const plan = firstPlan(hosts, shardCount, gateway, 1);
        await this.savePlan(term, plan);
        this.logger.info(
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
        await this.assignAll(term);
      });
    } catch (error) {
      if (this.term === term) this.logger.error({ err: error }, 'planning failed');
    } finally {
      term.planning = false;
    }
  }

  /** Waits `wait_for_hosts_ms` (seed 004) or until `expected_hosts` announced, and for at least one active host. */
  private async waitForHosts(term: Term): Promise<void> {
    const started = performance.now();
    let lastLog = 0;
    for (;;) {
      if (this.term !== term) throw new DisclusterError(ErrorCode.Closed, 'no longer the leader');
      const online = term.registry.online();
      const active = online.filter((host) => host.facts.role === 'active').length;
      const waited = performance.now() - started;
      const expected = this.config.expected_hosts;
      const enough = expected !== undefined ? online.length >= expected : false;
      if (online.length > 0 && (enough || waited >= this.config.wait_for_hosts_ms)) {
        if (active === 0)
          this.logger.warn('only standby hosts announced: they take the shards, since no active host exists');
        return;
      }
      if (performance.now() - lastLog >= 5_000) {
        lastLog = performance.now();
        this.logger.info(
          {
            announced: online.map((host) => host.facts.hostId),
            expected: expected ?? null,
            waitedMs: Math.round(waited),
            waitForHostsMs: this.config.wait_for_hosts_ms,
          },
          'waiting for CONTROLs to announce themselves before the first plan',
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** `GET /gateway/bot`; a rejected token stops the fleet before anything identifies. */
  private async fetchGateway(term: Term): Promise<GatewayBot | null> {
    try {
      return await fetchGatewayBot({
        api: this.config.discord_api,
        token: this.token,
        signal: term.abort.signal,
        onRetry: (problem, waitMs, attempt) =>
          this.logger.warn({ problem, waitMs, attempt }, 'GET /gateway/bot failed; retrying'),
      });
    } catch (error) {
      if (error instanceof DisclusterError && error.code === ErrorCode.TokenRejected) {
        term.preplanStop = { reason: error.message, code: null, at: Date.now() };
        this.logger.error(
          { code: error.code },
          `${error.message}. The fleet stays stopped; nothing was assigned and no identify was spent.`,
        );
        return null;
      }
      throw error;
    }
  }

  // ---- hosts ------------------------------------------------------------------------------------

  private onHostMessage(msg: Msg, kind: 'announce' | 'heartbeat'): void {
    const term = this.term;
    if (!term) return;
    const schema = kind === 'announce' ? HostAnnounceSchema : HostHeartbeatSchema;
    let facts: Omit<HostHeartbeat, 'type'>;
    try {
      const parsed = schema.safeParse(JSON.parse(decoder.decode(msg.data)));
      if (!parsed.success) throw new Error(parsed.error.issues[0]?.message ?? 'invalid');
      const { type: _type, ...rest } = parsed.data;
      facts = rest;
    } catch (error) {
      this.logger.warn({ subject: msg.subject, problem: String(error) }, `rejected a malformed ${kind}`);
      this.respond(msg, {
        v: 1,
        ok: false,
        error: { code: ErrorCode.InvalidMessage, message: `malformed ${kind}` },
      });
      return;
    }
    if (kind === 'heartbeat' && !msg.subject.includes(`.host.${facts.hostId}.`)) {
      this.logger.warn(
        { subject: msg.subject, hostId: facts.hostId },
        'rejected a heartbeat on another host subject',
      );
      return;
    }
    const newBoot = term.registry.see(facts);
    if (kind === 'announce') {
      if (newBoot)
        this.logger.info(
          { hostId: facts.hostId, role: facts.role, cores: facts.cores, load15: facts.load15 },
          'host announced',
        );
      msg.respond(encoder.encode(JSON.stringify({ v: 1, ok: true, epoch: term.plan?.epoch ?? null })));
    }
    this.reconcileHost(term, facts.hostId, newBoot);
    // A reshard switches over as soon as the last new shard reports ready, not at the next tick.
    if (term.plan?.reshard) this.checkReshard(term);
  }

  /** Brings one host in line with the plan: its assignment, or a stop when the fleet is stopped. */
  private reconcileHost(term: Term, hostId: string, newBoot: boolean): void {
    const plan = term.plan;
    const host = term.registry.get(hostId);
    if (!plan || !host) return;
    const now = performance.now();
    if (plan.stopped) {
      const running = host.facts.clusters.some(
        (cluster) => cluster.state !== 'stopped' && cluster.state !== 'failed',
      );
      if (running && now - (term.stopSent.get(hostId) ?? -Infinity) > REASSIGN_INTERVAL_MS) {
        term.stopSent.set(hostId, now);
        void this.enqueue(term, () =>
          this.stopHost(term, hostId, plan.stopped?.reason ?? 'fleet stopped'),
        ).catch(() => undefined);
      }
      return;
    }
    // A CONTROL that restarted reports no epoch, one that missed a plan change an older one; a
    // host outside the plan that still runs clusters (it was cut off and replaced) gets an empty
    // assignment, which stops them.
    const planned = plan.hosts[hostId] !== undefined;
    const needsAssignment = planned ? host.facts.epoch !== plan.epoch : host.facts.clusters.length > 0;
    if (!needsAssignment) {
      if (!planned && newBoot && this.config.auto_rebalance)
        void this.rebalance(term).catch((error: unknown) =>
          this.logger.warn({ err: String(error) }, 'automatic rebalance failed'),
        );
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
    void this.enqueue(term, () => this.assignHost(term, term.registry.get(hostId) ?? host)).catch(
      () => undefined,
    );
  }

  /** `force`: send even if the host already reports the plan's epoch (after a plan change). */
  private async assignHost(term: Term, host: KnownHost, force = false): Promise<void> {
    const plan = term.plan;
    if (!plan || plan.stopped) return;
    const hostId = host.facts.hostId;
    const latest = term.registry.get(hostId)?.facts;
    if (!force && latest && latest.instanceId === host.facts.instanceId && latest.epoch === plan.epoch)
      return;
    term.assigned.set(hostId, {
      instanceId: host.facts.instanceId,
      epoch: plan.epoch,
      at: performance.now(),
    });
    try {
      // CONTROL answers once it applied the assignment, which can include waiting for a lost
      // host's leases to expire.
      await this.commander().send(
        hostId,
        this.commander().assignment(plan, host),
        this.config.lease_ms + 30_000,
      );
      this.logger.info(
        { hostId, epoch: plan.epoch, clusters: (plan.hosts[hostId] ?? []).map((c) => c.clusterId) },
        'host runs its assignment',
      );
    } catch (error) {
      this.logger.warn(
        { hostId, err: error instanceof Error ? error.message : String(error) },
        'assignment not applied',
      );
    }
  }

  /** Sends every online host its assignment (after a plan change), concurrently. */
  private async assignAll(term: Term): Promise<void> {
    await Promise.all(term.registry.online().map((host) => this.assignHost(term, host, true)));
  }

  private commander(): HostCommander {
    if (!this.nc) throw new DisclusterError(ErrorCode.Closed, 'not connected');
    return new HostCommander(this.nc, this.config.bot, () => this.token, this.logger);
  }

  /** Fails over hosts that stopped heartbeating (issue 5 §4). */
  private checkHosts(): void {
    const term = this.term;
    const plan = term?.plan;
    if (!term || !plan || plan.stopped) return;
    const lost = Object.entries(plan.hosts)
      .filter(([hostId, clusters]) => clusters.length > 0 && term.registry.isLost(hostId))
      .map(([hostId]) => hostId);
    if (lost.length === 0) return;
    void this.enqueue(term, () => this.failOver(term, lost)).catch((error: unknown) =>
      this.logger.error({ err: error }, 'failover failed'),
    );
  }

  private async failOver(term: Term, lost: readonly string[]): Promise<void> {
    let plan = term.plan;
    if (!plan || plan.stopped) return;
    const reshard = plan.reshard;
    if (reshard && lost.some((hostId) => (reshard.hosts[hostId]?.length ?? 0) > 0)) {
      // Part of the new generation is gone with the host: roll the reshard back (the old generation
      // still serves everything); the operator can start it again.
      await this.rollBackReshard(term, `host(s) ${lost.join(', ')} lost during the reshard`);
      plan = term.plan;
      if (!plan) return;
    }
    const stillLost = lost.filter(
      (hostId) => (plan.hosts[hostId]?.length ?? 0) > 0 && term.registry.isLost(hostId),
    );
    if (stillLost.length === 0) return;
    const remaining = term.registry.online().filter((host) => !stillLost.includes(host.facts.hostId));
    if (remaining.length === 0) {
      for (const hostId of stillLost)
        if (!term.lostLogged.has(hostId)) {
          term.lostLogged.add(hostId);
          this.logger.error({ hostId }, 'host lost and no other host is online to take its shards over');
        }
      return;
    }
    const { plan: afterLoss, moved } = planAfterLoss(plan, stillLost, remaining);
    // A reshard whose new generation lives on the remaining hosts goes on.
    const next: PlanRecord = { ...afterLoss, reshard: plan.reshard ?? null };
    await this.savePlan(term, next);
    for (const hostId of stillLost) term.lostLogged.delete(hostId);
    this.logger.warn(
      {
        lost: stillLost,
        moved,
        epoch: next.epoch,
        to: Object.fromEntries(
          Object.entries(next.hosts).map(([id, clusters]) => [id, clusters.map((c) => c.clusterId)]),
        ),
      },
      `host(s) lost: ${moved} shards move; each new owner starts them once the lost host's leases expire, resuming their sessions`,
    );
    await this.assignAll(term);
  }

  // ---- fleet-wide actions ------------------------------------------------------------------------

  private async rebalance(term: Term): Promise<{ moved: number; epoch: number }> {
    return this.enqueue(term, async () => {
      const plan = this.requirePlan(term);
      this.refuseDuringReshard(plan, 'rebalance');
      const changed = planRebalanced(plan, term.registry.online());
      if (!changed) {
        this.logger.info({ epoch: plan.epoch }, 'rebalance: shares already follow the weights');
        return { moved: 0, epoch: plan.epoch };
      }
      await this.savePlan(term, changed.plan);
      this.logger.info(
        { moved: changed.moved, epoch: changed.plan.epoch },
        'rebalancing: moving shards with resume',
      );
      await this.assignAll(term);
      return { moved: changed.moved, epoch: changed.plan.epoch };
    });
  }

  private requirePlan(term: Term): PlanRecord {
    if (!term.plan)
      throw new DisclusterError(
        ErrorCode.NoPlan,
        term.preplanStop
          ? `no plan: ${term.preplanStop.reason}`
          : 'no plan yet: MASTER is waiting for CONTROLs or for GET /gateway/bot',
      );
    if (term.plan.stopped)
      throw new DisclusterError(
        ErrorCode.FleetStopped,
        `the fleet is stopped (${term.plan.stopped.reason}); run \`discluster restart\` once the cause is fixed`,
      );
    return term.plan;
  }

  /** Stops every cluster of the fleet once (fatal gateway error or `discluster stop`). */
  private async stopFleet(term: Term, reason: string, code: number | null): Promise<void> {
    await this.enqueue(term, async () => {
      const plan = term.plan;
      if (!plan) {
        term.preplanStop ??= { reason, code, at: Date.now() };
        this.commander().broadcastStopAll(reason);
        return;
      }
      if (plan.stopped) return;
      await this.savePlan(term, {
        ...plan,
        // A stopped fleet reshards no more: the new generation stops with the rest.
        reshard: null,
        stopped: { reason, code, at: Date.now() },
        updatedAt: Date.now(),
      });
      this.logger.error(
        { reason, code },
        'fleet stopped: every cluster is being stopped; nothing restarts until `discluster restart`',
      );
      this.commander().broadcastStopAll(reason);
      await Promise.all(
        term.registry
          .online()
          .map((host) => this.stopHost(term, host.facts.hostId, reason).catch(() => undefined)),
      );
    });
  }

  private async stopHost(term: Term, hostId: string, reason: string): Promise<void> {
    term.stopSent.set(hostId, performance.now());
    await this.commander().send(hostId, { v: 1, type: 'stop-all', reason }, 60_000);
  }

  /** `discluster restart`: clear a stop (re-checking the token) or restart every cluster; sessions resume. */
  private async restart(term: Term): Promise<{ epoch: number }> {
    return this.enqueue(term, async () => {
      const plan = term.plan;
      if (!plan) throw new DisclusterError(ErrorCode.NoPlan, 'no plan to restart yet');
      if (!plan.stopped) {
        this.logger.info('restart: stopping every cluster, then starting them again (they resume)');
        await Promise.all(
          term.registry.online().map((host) => this.stopHost(term, host.facts.hostId, 'discluster restart')),
        );
      }
      const gateway = await fetchGatewayBot({
        api: this.config.discord_api,
        token: this.token,
        signal: term.abort.signal,
      });
      await this.savePlan(term, {
        ...plan,
        gateway,
        epoch: plan.epoch + 1,
        stopped: null,
        updatedAt: Date.now(),
      });
      this.logger.info({ epoch: plan.epoch + 1 }, 'fleet restarting');
      await this.assignAll(term);
      return { epoch: plan.epoch + 1 };
    });
  }

  private async rollingRestart(term: Term): Promise<{ hosts: string[] }> {
    return this.enqueue(term, async () => {
      const plan = this.requirePlan(term);
      this.refuseDuringReshard(plan, 'a rolling restart');
      const done: string[] = [];
      for (const [hostId, clusters] of Object.entries(plan.hosts).sort(([a], [b]) => a.localeCompare(b))) {
        if (clusters.length === 0 || term.registry.isLost(hostId)) continue;
        this.logger.info({ hostId, clusters: clusters.length }, 'rolling restart: host starting');
        await this.commander().send(
          hostId,
          { v: 1, type: 'rolling-restart', epoch: plan.epoch },
          clusters.length * 180_000,
        );
        done.push(hostId);
      }
      this.logger.info({ hosts: done }, 'rolling restart finished');
      return { hosts: done };
    });
  }

  // ---- events and operator requests -------------------------------------------------------------

  private onEvent(msg: Msg): void {
    const term = this.term;
    if (!term) return;
    let event: FleetEvent;
    try {
      const parsed = FleetEventSchema.safeParse(JSON.parse(decoder.decode(msg.data)));
      if (!parsed.success) throw new Error(parsed.error.issues[0]?.message ?? 'invalid');
      event = parsed.data;
    } catch (error) {
      this.logger.warn({ subject: msg.subject, problem: String(error) }, 'rejected a malformed fleet event');
      return;
    }
    if (event.type === 'cluster.failed') {
      this.logger.error(
        { hostId: event.hostId, clusterId: event.clusterId, attempts: event.attempts, reason: event.reason },
        'cluster failed and will not be restarted by its CONTROL',
      );
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
      void this.enqueue(term, () => this.rollBackReshard(term, reason)).catch((error: unknown) =>
        this.logger.error({ err: error }, 'rolling the reshard back failed'),
      );
      return;
    }
    if (event.code === SHARDING_REQUIRED) {
      // 4011: a shard has too many guilds. Reshard instead of stopping; the other shards keep serving.
      void this.startReshard(term, undefined, `4011 (sharding required) from ${reason}`).then(
        (progress) =>
          this.logger.warn(
            { to: progress.to, id: progress.id },
            'resharding because Discord closed a shard with 4011',
          ),
        (error: unknown) => {
          if (error instanceof DisclusterError && error.code === ErrorCode.ReshardRefused)
            this.logger.error(
              { err: error.message },
              'Discord asks for more shards (4011) but the reshard was refused',
            );
          else this.logger.error({ err: error }, 'reshard after 4011 failed');
        },
      );
      return;
    }
    void this.stopFleet(term, reason, event.code).catch((error: unknown) =>
      this.logger.error({ err: error }, 'stopping the fleet failed'),
    );
  }

  private respond(msg: Msg, body: unknown): void {
    if (msg.reply) msg.respond(encoder.encode(JSON.stringify(body)));
  }

  private async onRequest(msg: Msg): Promise<void> {
    const term = this.term;
    if (!term) return;
    let request: MasterRequest;
    try {
      const parsed = MasterRequestSchema.safeParse(JSON.parse(decoder.decode(msg.data)));
      if (!parsed.success)
        throw new Error(
          parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '),
        );
      request = parsed.data;
    } catch (error) {
      this.logger.warn({ problem: String(error) }, 'rejected a malformed operator request');
      this.respond(msg, {
        v: 1,
        ok: false,
        error: { code: ErrorCode.InvalidMessage, message: `malformed request: ${String(error)}` },
      });
      return;
    }
    let reply: MasterReply;
    try {
      reply = { v: 1, ok: true, result: await this.answer(term, request) };
    } catch (error) {
      const wire =
        error instanceof DisclusterError
          ? error.toJSON()
          : {
              code: ErrorCode.HostCommandFailed,
              message: error instanceof Error ? error.message : String(error),
            };
      reply = { v: 1, ok: false, error: wire };
    }
    this.respond(msg, reply);
  }

  private async answer(term: Term, request: MasterRequest): Promise<unknown> {
    switch (request.type) {
      case 'status':
        return this.status(term);
      case 'which':
        return this.which(term, request.guildId);
      case 'rebalance':
        return this.rebalance(term);
      case 'stop':
        await this.stopFleet(term, request.reason ?? 'stopped by an operator (`discluster stop`)', null);
        return { stopped: true };
      case 'restart':
        return request.rolling ? this.rollingRestart(term) : this.restart(term);
      case 'reshard':
        return this.startReshard(term, request.shards, 'requested by an operator (`discluster reshard`)');
    }
  }

  private status(term: Term): FleetStatus {
    return buildFleetStatus({
      bot: this.config.bot,
      plan: term.plan,
      hosts: term.registry
        .all()
        .map((host) => ({ facts: host.facts, online: !term.registry.isLost(host.facts.hostId) })),
      masterUp: true,
      source: 'master',
      stopped: term.preplanStop,
      reshard: this.reshardProgress(term),
    });
  }

  // ---- resharding (issue 7) -----------------------------------------------------------------------

  private refuseDuringReshard(plan: PlanRecord, what: string): void {
    if (plan.reshard)
      throw new DisclusterError(
        ErrorCode.ReshardRefused,
        `${what} is not possible while the fleet reshards to ${plan.reshard.shardCount} shards; wait until it finished (\`discluster status\`)`,
      );
  }

  /**
   * Starts a reshard: checks the target and the day's session starts, plans the new generation
   * beside the running one and assigns it (standby). Nothing changes when it is refused.
   */
  private async startReshard(
    term: Term,
    requested: number | undefined,
    reason: string,
  ): Promise<ReshardProgress> {
    return this.enqueue(term, async () => {
      const plan = this.requirePlan(term);
      if (plan.reshard)
        throw new DisclusterError(
          ErrorCode.ReshardRefused,
          `a reshard to ${plan.reshard.shardCount} shards is already running (started ${new Date(plan.reshard.startedAt).toISOString()})`,
        );
      const hosts = term.registry.online();
      if (hosts.length === 0)
        throw new DisclusterError(ErrorCode.ReshardRefused, 'no host is online to run the new generation');
      const gateway = await fetchGatewayBot({
        api: this.config.discord_api,
        token: this.token,
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
        guildsPerShard: this.config.reshard_guilds_per_shard,
      });
      if (!target.ok)
        throw new DisclusterError(ErrorCode.ReshardRefused, `reshard refused: ${target.reason}`);
      const budget = checkReshardBudget({
        shardCount: target.shardCount,
        remaining: gateway.session_start_limit.remaining,
        resetAfterMs: gateway.session_start_limit.reset_after,
        floor: this.config.reshard_budget_floor,
      });
      if (!budget.ok)
        throw new DisclusterError(ErrorCode.ReshardRefused, `reshard refused: ${budget.reason}`);
      const next = planWithReshard(plan, hosts, target.shardCount, gateway, reason);
      await this.savePlan(term, next);
      this.logger.warn(
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
      await this.assignAll(term);
      const progress = this.reshardProgress(term);
      if (!progress) throw new DisclusterError(ErrorCode.ReshardRefused, 'the reshard ended at once');
      return progress;
    });
  }

  /** New-generation shards READY with every guild received, per the hosts' latest reports. */
  private reshardReadyShards(term: Term): number {
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

  private reshardProgress(term: Term): ReshardProgress | null {
    const plan = term.plan;
    const reshard = plan?.reshard;
    if (!plan || !reshard) return null;
    const ready = this.reshardReadyShards(term);
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
  private checkReshard(term: Term): void {
    const reshard = term.plan?.reshard;
    if (!reshard || term.switching || term.plan?.stopped) return;
    const lost = Object.entries(reshard.hosts)
      .filter(([hostId, clusters]) => clusters.length > 0 && term.registry.isLost(hostId))
      .map(([hostId]) => hostId);
    if (lost.length > 0 && reshard.phase !== 'switching') {
      // A host of the new generation is gone (it may run none of the old one, so no failover
      // notices): roll back, the old generation serves on.
      term.switching = true;
      void this.enqueue(term, () =>
        this.rollBackReshard(term, `host(s) ${lost.join(', ')} lost during the reshard`),
      )
        .catch((error: unknown) => this.logger.error({ err: error }, 'rolling the reshard back failed'))
        .finally(() => (term.switching = false));
      return;
    }
    if (reshard.phase !== 'switching' && this.reshardReadyShards(term) < reshard.shardCount) return;
    term.switching = true;
    void this.enqueue(term, () => this.switchOver(term))
      .catch((error: unknown) => this.logger.error({ err: error }, 'reshard switch-over failed; retrying'))
      .finally(() => (term.switching = false));
  }

  private async switchOver(term: Term): Promise<void> {
    const plan = term.plan;
    const reshard = plan?.reshard;
    if (!plan || !reshard) return;
    if (reshard.phase !== 'switching') {
      await this.savePlan(term, {
        ...plan,
        reshard: { ...reshard, phase: 'switching' },
        updatedAt: Date.now(),
      });
      this.logger.info({ id: reshard.id }, 'every new shard is ready: handing over to the new generation');
    }
    const started = performance.now();
    const summary = await runHandover({
      nc: this.nc!,
      bot: this.config.bot,
      reshardId: reshard.id,
      // A dead old cluster (fatal close, given up) delivers nothing: no handover with it.
      oldClusterIds: this.runningClusterIds(term, plan.hosts),
      newClusterIds: generationClusterIds(reshard.hosts),
      logger: this.logger,
      signal: term.abort.signal,
    });
    if (this.term !== term || !term.plan?.reshard) return;
    const final = planAfterReshard(term.plan);
    await this.savePlan(term, final);
    this.logger.warn(
      {
        id: reshard.id,
        shardCount: final.shardCount,
        epoch: final.epoch,
        handoverMs: Math.round(performance.now() - started),
        totalMs: Date.now() - reshard.startedAt,
        ...summary,
      },
      'reshard finished: the new generation serves; the old one closes',
    );
    await this.assignAll(term);
  }

  /** Cluster ids of `hosts` whose host is online and reports them running (not stopped or failed). */
  private runningClusterIds(term: Term, hosts: PlanRecord['hosts']): number[] {
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

  /** Stops the new generation and forgets the reshard; the old generation serves on. */
  private async rollBackReshard(term: Term, why: string): Promise<void> {
    const plan = term.plan;
    const reshard = plan?.reshard;
    if (!plan || !reshard) return;
    if (reshard.phase === 'switching')
      await abortHandover({
        nc: this.nc!,
        bot: this.config.bot,
        reshardId: reshard.id,
        oldClusterIds: generationClusterIds(plan.hosts),
        newClusterIds: generationClusterIds(reshard.hosts),
        logger: this.logger,
        requestTimeoutMs: 2_000,
      });
    await this.savePlan(term, planWithoutReshard(plan));
    this.logger.error(
      { id: reshard.id, to: reshard.shardCount, why },
      'reshard rolled back: the old generation keeps serving',
    );
  }

  /** `auto_reshard`: Discord recommends more shards, or a shard carries too many guilds. */
  private async autoReshard(term: Term): Promise<void> {
    const plan = term.plan;
    if (!plan || plan.stopped || plan.reshard || this.term !== term) return;
    try {
      const gateway = await fetchGatewayBot({
        api: this.config.discord_api,
        token: this.token,
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
        guildsPerShard: this.config.reshard_guilds_per_shard,
      });
      if (reason) await this.startReshard(term, undefined, `auto_reshard: ${reason}`);
    } catch (error) {
      this.logger.warn(
        { err: error instanceof Error ? error.message : String(error) },
        'automatic reshard check failed',
      );
    }
  }

  private which(term: Term, guildId: string): WhichResult {
    const plan = term.plan;
    if (!plan) throw new DisclusterError(ErrorCode.NoPlan, 'no plan yet: no shard serves any guild');
    return locateGuild(plan, guildId);
  }
}
