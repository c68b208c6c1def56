import {
  ErrorCode,
  FleetStatusSchema,
  isDisclusterError,
  MasterConfigSchema,
  loadModuleConfig,
  masterBucket,
  planKey,
  type LeaderRecord,
} from 'discluster-protocol';
import { openBucket, openExistingBucket } from 'discluster-runtime';
import { waitFor } from 'discluster-testing';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { FleetClient } from '../src/cli/fleetClient';
import { LeaderBucket } from '../src/leadership/leaderBucket';
import { Leadership } from '../src/leadership/leadership';
import { Master } from '../src/master';
import { startMaster, type MasterHandle } from '../src/startMaster';
import type { FakeHost } from './fakeHost';
import { useMasterHarness } from './masterHarness';

/**
 * Issue 13 (c): a MASTER that cannot act (its term ended on a plan compare-and-set conflict, or
 * taking over threw) must give the leadership back instead of renewing the key with no term:
 * otherwise nobody fails hosts over or answers operators, and no standby can ever take over.
 */

const TOKEN = 'step-down-test-token-5e1a';
const env = useMasterHarness(TOKEN, { guilds: 20, shards: 8, 'max-concurrency': 2 });
const { running } = env;
const leaderships: Leadership[] = [];

// Registered after the harness's hook, so (vitest runs after-hooks as a stack) it runs first.
afterEach(async () => {
  for (const leadership of leaderships.splice(0)) await leadership.close();
});

function settings(bot: string): NodeJS.ProcessEnv {
  return env.masterEnv(bot, {
    DISCLUSTER_EXPECTED_HOSTS: '2',
    DISCLUSTER_WAIT_FOR_HOSTS_MS: '30000',
    DISCLUSTER_HOST_TIMEOUT_MS: '2000',
    DISCLUSTER_LOG_LEVEL: 'silent',
  });
}

async function master(bot: string): Promise<MasterHandle> {
  const handle = await startMaster(settings(bot));
  running.push(handle);
  return handle;
}

/** A MASTER whose log lines the test reads (`msg` of each). */
async function loggedMaster(bot: string): Promise<{ master: Master; logged: string[] }> {
  const loaded = loadModuleConfig(MasterConfigSchema, {
    moduleName: 'discluster-master',
    env: settings(bot),
  });
  if (!loaded.ok) throw new Error('invalid test settings');
  const logged: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line).msg) });
  const one = new Master(loaded.config, TOKEN, logger);
  await one.start();
  running.push({ state: 'running', master: one, close: () => one.close() });
  return { master: one, logged };
}

function host(bot: string, id: string): Promise<FakeHost> {
  return env.host({ bot, id, cores: 2 });
}

/** One operator request, as `discluster` sends it. */
async function ask(bot: string, request: Parameters<FleetClient['askMaster']>[0], timeoutMs = 2_000) {
  const fleet = await env.client(bot);
  try {
    return await fleet.askMaster(request, timeoutMs);
  } finally {
    await fleet.close();
  }
}

async function leader(handle: MasterHandle): Promise<LeaderRecord | null> {
  return handle.master!.currentLeader();
}

describe('a MASTER that cannot act steps down (issue 13 c)', () => {
  it('a resigning leader releases the key and sits out one lease, so a standby is elected first', async () => {
    const ttlMs = 3_000;
    const bucket = await LeaderBucket.open({
      nc: env.nc,
      bot: env.nextBot('resign'),
      ttlMs,
      logger: pino({ level: 'silent' }),
    });
    const log: string[] = [];
    const candidate = (name: string) => {
      const leadership = new Leadership({
        bucket,
        instanceId: `${name}-instance-id`,
        ttlMs,
        logger: pino({ level: 'silent' }),
        onElected: () => void log.push(`${name} elected`),
        onDeposed: (reason) => void log.push(`${name} deposed: ${reason}`),
      });
      leaderships.push(leadership);
      leadership.start();
      return leadership;
    };
    const a = candidate('a');
    await waitFor(() => a.isLeader, { description: 'a leading' });
    const b = candidate('b');
    await a.resign('its term failed');
    expect(a.isLeader).toBe(false);
    // a campaigns again only after one lease: the standby goes first.
    await waitFor(() => b.isLeader, { description: 'b taking over', timeoutMs: 30_000 });
    expect(log).toEqual(['a elected', 'a deposed: its term failed', 'b elected']);
    expect((await b.current())?.instanceId).toBe('b-instance-id');
  });

  it('a plan compare-and-set conflict releases the leadership; a fresh term re-reads the plan and acts', async () => {
    const bot = env.nextBot('s');
    const alpha = await host(bot, 'alpha');
    const beta = await host(bot, 'beta');
    const first = await master(bot);
    await waitFor(() => alpha.epoch === 1 && beta.epoch === 1, {
      description: 'the first assignments',
      timeoutMs: 30_000,
    });
    const standby = await master(bot);
    const before = await leader(first);
    expect(before?.instanceId).toBe(first.master!.instanceId);

    // The plan changes behind the leader's back (as a write whose reply was lost would): same
    // content, newer revision. The leader's next write meets a compare-and-set conflict.
    const plans = await openExistingBucket(env.nc, masterBucket(bot), 5_000);
    const stored = await plans!.get(planKey());
    await plans!.put(planKey(), stored!.value);
    await expect(ask(bot, { v: 1, type: 'stop', reason: 'test' }, 10_000)).rejects.toSatisfy((error) =>
      isDisclusterError(error, ErrorCode.StaleEpoch),
    );

    // The key is released: a standby (or the same MASTER, after sitting out a lease) is elected in a
    // new term, which re-reads the plan and answers operators again.
    await waitFor(
      async () => {
        const now = await leader(standby);
        return now !== null && (now.instanceId !== before!.instanceId || now.since !== before!.since);
      },
      { description: 'a new leadership term', timeoutMs: 30_000 },
    );
    await waitFor(async () => FleetStatusSchema.parse(await ask(bot, { v: 1, type: 'status' })).master.up, {
      description: 'operator requests answered again',
      timeoutMs: 30_000,
    });
    const status = FleetStatusSchema.parse(await ask(bot, { v: 1, type: 'status' }));
    expect(status.epoch).toBe(1);
    expect(status.stopped).toBeNull();
    // The new term writes the plan at the revision it read: the stop goes through this time.
    await expect(ask(bot, { v: 1, type: 'stop', reason: 'test' }, 10_000)).resolves.toEqual({
      stopped: true,
    });
    await waitFor(() => alpha.commands.some((command) => command.type === 'stop-all'), {
      description: 'the stop reaching alpha',
      timeoutMs: 30_000,
    });
  });

  it('a MASTER whose take-over throws releases the leadership and leads once the cause is gone', async () => {
    const bot = env.nextBot('s');
    // A plan record MASTER refuses to read (it never overwrites one): taking over throws.
    const plans = await openBucket(env.nc, {
      name: masterBucket(bot),
      ttlMs: 0,
      description: 'Discluster MASTER plan',
      timeoutMs: 10_000,
    });
    await plans.kv.put(planKey(), 'not a plan record');
    const alpha = await host(bot, 'alpha');
    const beta = await host(bot, 'beta');
    const { logged } = await loggedMaster(bot);
    await waitFor(() => logged.includes('taking over as leader failed'), {
      description: 'the take-over failing on the invalid plan record',
      timeoutMs: 30_000,
    });
    await expect(ask(bot, { v: 1, type: 'status' }, 1_000)).rejects.toSatisfy((error) =>
      isDisclusterError(error, ErrorCode.MasterUnreachable),
    );

    // The operator deletes the record, as MASTER's error says: the next election plans from scratch.
    await plans.kv.delete(planKey());
    await waitFor(() => alpha.epoch === 1 && beta.epoch === 1, {
      description: 'a first plan made by a fresh term',
      timeoutMs: 40_000,
    });
    expect(FleetStatusSchema.parse(await ask(bot, { v: 1, type: 'status' })).master.up).toBe(true);
  });
});
