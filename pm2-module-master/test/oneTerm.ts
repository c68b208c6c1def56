import type { NatsConnection } from '@nats-io/transport-node';
import {
  DisclusterError,
  ErrorCode,
  HostHeartbeatSchema,
  MasterConfigSchema,
  loadModuleConfig,
  type HostCommand,
  type PlanRecord,
} from 'discluster-protocol';
import pino from 'pino';
import type { Clock } from '../src/clock';
import { firstPlan } from '../src/fleetPlans';
import type { GatewayBot } from '../src/gatewayBot';
import { Failover } from '../src/hosts/failover';
import { HostAssignments } from '../src/hosts/hostAssignments';
import { HostCommander } from '../src/hosts/hostCommander';
import type { KnownHost } from '../src/hosts/hostRegistry';
import { SerialQueue } from '../src/leadership/serialQueue';
import { Term, type Commander, type PlanStoreLike, type TermEnd } from '../src/leadership/term';
import { ReshardCoordinator } from '../src/reshard/reshardCoordinator';
import { FakeHost } from './fakeHost';

/**
 * One term of MASTER's logic without a server, for failover and reshard tests: the plan store, the
 * host commander and the clock are the term's options, played here by the test.
 */

export const HOST_TIMEOUT_MS = 1_000;
export const unitGateway: GatewayBot = {
  url: 'wss://gateway.discord.gg',
  shards: 8,
  session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 2 },
};

/** Host facts as a heartbeat carries them (FakeHost builds them; no NATS involved). */
export function facts(id: string) {
  const { type: _type, ...rest } = HostHeartbeatSchema.parse(
    new FakeHost(undefined as unknown as NatsConnection, { bot: 'unit', id, cores: 2 }).facts('heartbeat'),
  );
  return rest;
}

/** A plan store holding one record; `behindTheBack` changes it as another writer would. */
export class MemoryStore implements PlanStoreLike {
  public revision = 1;
  public constructor(public plan: PlanRecord) {}
  public async load() {
    return { plan: this.plan, revision: this.revision };
  }
  public async save(plan: PlanRecord, revision: number): Promise<number> {
    if (revision !== this.revision) throw new DisclusterError(ErrorCode.StaleEpoch, 'the plan changed in KV');
    this.plan = plan;
    return ++this.revision;
  }
  public behindTheBack(): void {
    this.revision++;
  }
}

export interface OneTermOptions {
  /** The plan the term starts from, made from the first plan of alpha and beta (default: as is). */
  readonly plan?: (first: PlanRecord, hosts: readonly KnownHost[]) => PlanRecord;
  /** Hosts the term has heard from at its start (default both; none: a MASTER that just took over). */
  readonly heard?: readonly ('alpha' | 'beta')[];
}

/** One term of MASTER over two hosts, alpha and beta, 8 shards (see the file comment). */
export function fleetOfTwo(options: OneTermOptions = {}) {
  const loaded = loadModuleConfig(MasterConfigSchema, {
    moduleName: 'discluster-master',
    env: { DISCLUSTER_BOT: 'unit', DISCLUSTER_HOST_TIMEOUT_MS: String(HOST_TIMEOUT_MS) },
  });
  if (!loaded.ok) throw new Error('invalid test settings');
  let now = 0;
  const clock: Clock = { monotonic: () => now, wall: () => 1_700_000_000_000 + now };
  const sent: { hostId: string; command: HostCommand }[] = [];
  const logger = pino({ level: 'silent' });
  // The real commander builds the sealed assignment; sending is recorded instead of requested.
  const real = new HostCommander(undefined as unknown as NatsConnection, 'unit', () => 'unit-token', logger);
  const commander: Commander = {
    assignment: (plan, host) => real.assignment(plan, host),
    send: async (hostId, command) => {
      sent.push({ hostId, command });
      return { v: 1, ok: true };
    },
    broadcastStopAll: () => undefined,
  };
  const alpha = facts('alpha');
  const beta = facts('beta');
  const hosts = [alpha, beta].map((one) => ({ facts: one, lastSeen: 0 }));
  const first = firstPlan(hosts, 8, unitGateway, 1);
  const store = new MemoryStore(options.plan ? options.plan(first, hosts) : first);
  const ends: TermEnd[] = [];
  const term = new Term(
    {
      config: loaded.config,
      token: 'unit-token',
      logger,
      // Failover never talks to NATS itself: everything goes through the commander.
      nc: undefined as unknown as NatsConnection,
      store,
      commander,
      clock,
      queue: new SerialQueue(),
    },
    { plan: store.plan, revision: store.revision },
    (end) => ends.push(end),
  );
  const heard = options.heard ?? ['alpha', 'beta'];
  if (heard.includes('alpha')) term.registry.see(alpha);
  if (heard.includes('beta')) term.registry.see(beta);
  const assignments = new HostAssignments(term);
  const reshard = new ReshardCoordinator(term, assignments);
  const failover = new Failover(term, assignments, reshard);
  return {
    term,
    store,
    sent,
    ends,
    failover,
    reshard,
    /** Moves the clock on; `heard` hosts heartbeat at the new time. */
    advance(ms: number, heard: ReturnType<typeof facts>[]) {
      now += ms;
      for (const one of heard) term.registry.see(one);
    },
    alpha,
    beta,
    /** Waits until every queued plan change ran. */
    settled: () => term.enqueue(async () => undefined).catch(() => undefined),
  };
}
