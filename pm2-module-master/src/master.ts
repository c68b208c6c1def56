import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { masterBucket, natsInboxPrefix, type LeaderRecord, type MasterConfig } from 'discluster-protocol';
import { connectNatsDaemon, redactNatsUrl } from 'discluster-runtime';
import { WebhookAlertSender, type AlertSink } from './alerts/webhookAlertSender.js';
import { systemClock, type Clock } from './clock.js';
import { HostCommander } from './hosts/hostCommander.js';
import type { HttpServerHandle } from './http/httpServer.js';
import { startStatusHttp } from './http/statusHttp.js';
import type { FleetView } from './http/statusSource.js';
import { openOwnedBucket } from './kvBuckets.js';
import { leaseAdvice, natsVersionAdvice } from './leadership/leaseAdvice.js';
import { LeaderBucket } from './leadership/leaderBucket.js';
import { Leadership } from './leadership/leadership.js';
import { LeaderTerms } from './leadership/leaderTerms.js';
import type { Commander, PlanStoreLike } from './leadership/term.js';
import type { Logger } from './logger.js';
import { PlanStore } from './planStore.js';

/** What MASTER talks to and reads the time from; each has a default, tests may pass their own. */
export interface MasterOptions {
  /** The NATS connection (MASTER drains it on close); default: `nats_url` with the config's credentials, retried. */
  readonly connect?: (name: string) => Promise<NatsConnection>;
  /** The plan store a term reads and writes; default: the plan KV bucket. */
  readonly openStore?: (nc: NatsConnection) => Promise<PlanStoreLike>;
  /** The host commander, built once per term; default: {@link HostCommander} over `nc`. */
  readonly commander?: (nc: NatsConnection) => Commander;
  readonly clock?: Clock;
  /** Where the leader's alerts go; default: `alert_webhook_url` if set ({@link WebhookAlertSender}). */
  readonly alerts?: AlertSink;
}

/**
 * MASTER (issue 5): plans shards over the announced hosts, commands CONTROLs, fails lost hosts
 * over, rebalances on request, stops the fleet on fatal gateway errors, and keeps its plan in KV.
 * This class connects, campaigns and serves the status page; only the leader (see
 * {@link Leadership}) runs a term ({@link LeaderTerms}), which subscribes and commands.
 */
export class Master {
  public readonly instanceId = randomUUID();
  // Private fields (#): the token (and the config that may carry it) must not show in util.inspect
  // or JSON.stringify of a MASTER (promise 4).
  #nc: NatsConnection | undefined;
  #leadership: Leadership | undefined;
  #terms: LeaderTerms | undefined;
  #webhook: WebhookAlertSender | undefined;
  readonly #config: MasterConfig;
  readonly #token: string;
  private closed = false;
  /** The status page and `/metrics` (`http_port`), served by every MASTER, leader or standby. */
  private http: HttpServerHandle | null = null;

  public constructor(
    config: MasterConfig,
    token: string,
    private readonly logger: Logger,
    private readonly options: MasterOptions = {},
  ) {
    this.#config = config;
    this.#token = token;
  }

  public async start(): Promise<void> {
    const { logger, options } = this;
    const config = this.#config;
    logger.info(
      { bot: config.bot, nats: config.nats_url.map(redactNatsUrl), instanceId: this.instanceId },
      'discluster-master starting',
    );
    const advice = leaseAdvice(config);
    if (advice) logger.warn({ lease_ms: config.lease_ms, kv_replicas: config.kv_replicas }, advice);
    let alerts = options.alerts;
    if (!alerts && config.alert_webhook_url) {
      // Every secret MASTER holds is redacted from alerts, whatever carried it there (a reason).
      const secrets = [this.#token, config.nats_pass, config.nats_token].filter(
        (secret): secret is string => secret !== undefined,
      );
      this.#webhook = new WebhookAlertSender({
        url: config.alert_webhook_url,
        bot: config.bot,
        logger,
        secrets,
      });
      alerts = this.#webhook;
      logger.info(
        { webhook: this.#webhook.origin },
        'alerts go to the webhook (only while this MASTER leads)',
      );
    }
    const name = `discluster-master:${this.instanceId}`;
    // Warns about plaintext, and retries (explaining refusals) until NATS accepts us.
    const nc = await (options.connect
      ? options.connect(name)
      : connectNatsDaemon(config, { name, inboxPrefix: natsInboxPrefix(config.bot, 'master') }, logger));
    this.#nc = nc;
    logger.info({ server: nc.getServer() }, 'connected to NATS');
    const versionAdvice = natsVersionAdvice(config.kv_replicas, nc.info?.version);
    if (versionAdvice) logger.warn({ version: nc.info?.version }, versionAdvice);
    // Never sets the TTL of an existing bucket: only the leader may (issue 13 d).
    const bucket = await LeaderBucket.open({
      nc,
      bot: config.bot,
      ttlMs: config.leader_lease_ms,
      logger,
      replicas: config.kv_replicas,
    });
    const leadership: Leadership = new Leadership({
      bucket,
      instanceId: this.instanceId,
      ttlMs: config.leader_lease_ms,
      logger,
      onElected: () => terms.begin(),
      onDeposed: (reason) => terms.end({ kind: 'deposed', reason }),
    });
    const terms: LeaderTerms = new LeaderTerms({
      config,
      token: this.#token,
      logger,
      nc,
      clock: options.clock ?? systemClock,
      openStore: () => (options.openStore ?? defaultStore(config))(nc),
      commander: () =>
        options.commander?.(nc) ?? new HostCommander(nc, config.bot, () => this.#token, logger),
      isLeader: () => leadership.isLeader,
      resign: (reason) => leadership.resign(reason),
      ...(alerts ? { alerts } : {}),
    });
    this.#leadership = leadership;
    this.#terms = terms;
    const current = await leadership.current();
    if (current)
      logger.info(
        { leader: current.instanceId, hostname: current.hostname },
        'another MASTER leads: standing by until its lease expires',
      );
    leadership.start();
    this.http = await startStatusHttp(config, this, logger);
    if (this.closed) await this.http?.close();
  }

  /** Where the status page is served, if it is (`http_port`). */
  public get statusUrl(): string | null {
    return this.http?.url ?? null;
  }

  /** What the status page and `/metrics` show (src/http); null while this MASTER does not lead. */
  public fleetView(): FleetView | null {
    return this.#terms?.fleetView() ?? null;
  }

  /** The leading MASTER's lease record, if any leads. */
  public async currentLeader(): Promise<LeaderRecord | null> {
    return (await this.#leadership?.current()) ?? null;
  }

  public async close(): Promise<void> {
    this.closed = true;
    await this.http?.close();
    this.#terms?.close();
    await this.#leadership?.close();
    this.#webhook?.close();
    await this.#nc?.drain().catch(() => undefined);
  }
}

function defaultStore(config: MasterConfig): (nc: NatsConnection) => Promise<PlanStoreLike> {
  return async (nc) =>
    new PlanStore(
      await openOwnedBucket(nc, masterBucket(config.bot), 0, 'Discluster MASTER plan', config.kv_replicas),
    );
}
