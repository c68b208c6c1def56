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
import { describe, expect, it } from 'vitest';
import type { Clock } from '../src/clock';
import { firstPlan } from '../src/fleetPlans';
import type { GatewayBot } from '../src/gatewayBot';
import { Failover } from '../src/hosts/failover';
import { HostAssignments } from '../src/hosts/hostAssignments';
import { HostCommander } from '../src/hosts/hostCommander';
import { SerialQueue } from '../src/leadership/serialQueue';
import { Term, type Commander, type PlanStoreLike, type TermEnd } from '../src/leadership/term';
import { ReshardCoordinator } from '../src/reshard/reshardCoordinator';
import { FakeHost } from './fakeHost';

/**
 * Failover as one term's logic, without a server: the plan store, the host commander and the clock
 * are the term's options, played here by the test.
 */

const HOST_TIMEOUT_MS = 1_000;
const gateway: GatewayBot = {
  url: 'wss://gateway.discord.gg',
  shards: 8,
  session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 2 },
};

/** Host facts as a heartbeat carries them (FakeHost builds them; no NATS involved). */
function facts(id: string) {
  const { type: _type, ...rest } = HostHeartbeatSchema.parse(
    new FakeHost(undefined as unknown as NatsConnection, { bot: 'unit', id, cores: 2 }).facts('heartbeat'),
  );
  return rest;
}

/** A plan store holding one record; `behindTheBack` changes it as another writer would. */
class MemoryStore implements PlanStoreLike {
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

function fleetOfTwo() {
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
  const store = new MemoryStore(firstPlan(hosts, 8, gateway, 1));
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
  term.registry.see(alpha);
  term.registry.see(beta);
  const assignments = new HostAssignments(term);
  const failover = new Failover(term, assignments, new ReshardCoordinator(term, assignments));
  return {
    term,
    store,
    sent,
    ends,
    failover,
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

describe('failover (one term, no server)', () => {
  it('moves nothing while every host heartbeats within host_timeout_ms', async () => {
    const fleet = fleetOfTwo();
    fleet.advance(HOST_TIMEOUT_MS - 100, [fleet.alpha, fleet.beta]);
    fleet.advance(HOST_TIMEOUT_MS - 100, [fleet.alpha, fleet.beta]);
    fleet.failover.check();
    await fleet.settled();
    expect(fleet.term.plan?.epoch).toBe(1);
    expect(fleet.sent).toEqual([]);
  });

  it("moves a silent host's shards to the host still heartbeating, in a new epoch", async () => {
    const fleet = fleetOfTwo();
    const alphaShards = fleet.term.plan!.hosts['alpha']!.flatMap((cluster) => cluster.shardIds);
    expect(alphaShards.length).toBeGreaterThan(0);
    fleet.advance(HOST_TIMEOUT_MS - 100, [fleet.beta]);
    fleet.advance(200, [fleet.beta]);
    fleet.failover.check();
    await fleet.settled();
    const plan = fleet.term.plan!;
    expect(plan.epoch).toBe(2);
    expect(fleet.store.plan).toBe(plan);
    expect((plan.hosts['alpha'] ?? []).flatMap((cluster) => cluster.shardIds)).toEqual([]);
    expect(plan.hosts['beta']!.flatMap((cluster) => cluster.shardIds).sort((a, b) => a - b)).toEqual([
      ...Array(8).keys(),
    ]);
    expect(fleet.sent.map(({ hostId, command }) => [hostId, command.type])).toEqual([['beta', 'assign']]);
  });

  it('a plan compare-and-set conflict ends the term as failed and commands nobody', async () => {
    const fleet = fleetOfTwo();
    fleet.store.behindTheBack();
    fleet.advance(HOST_TIMEOUT_MS + 100, [fleet.beta]);
    fleet.failover.check();
    await fleet.settled();
    expect(fleet.ends).toEqual([{ kind: 'failed', reason: expect.stringContaining('compare-and-set') }]);
    expect(fleet.term.ended).toBe(true);
    expect(fleet.sent).toEqual([]);
  });
});
