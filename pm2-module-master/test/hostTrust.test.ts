import util from 'node:util';
import {
  ErrorCode,
  FleetReplySchema,
  MasterConfigSchema,
  fleetSubjects,
  loadModuleConfig,
  type FatalEvent,
  type FleetStatus,
} from 'discluster-protocol';
import { waitFor } from 'discluster-testing';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Master } from '../src/master';
import { FakeHost } from './fakeHost';
import { useMasterHarness } from './masterHarness';

/**
 * Issue 13 (f): one running CONTROL per host id; a second one is refused, assigned nothing and
 * shown in `discluster status`, while a restarted CONTROL still takes its host over at once.
 *
 * Issue 13 (h): MASTER believes a fleet event only when the plan backs it (that cluster, on that
 * host, serving that shard) and when the per-host subject it came on names the host it claims to
 * be from. Against a real nats-server and discord-sim, CONTROLs played by the test.
 */

const TOKEN = 'host-trust-test-token-3b7f';
const encoder = new TextEncoder();
const env = useMasterHarness<Master>(TOKEN, { guilds: 20, shards: 8, 'max-concurrency': 2 });
const { running: masters, hosts, status } = env;

/** A MASTER whose log lines (`msg` and fields) the test reads. */
async function loggedMaster(bot: string): Promise<{ master: Master; logged: Record<string, unknown>[] }> {
  const loaded = loadModuleConfig(MasterConfigSchema, {
    moduleName: 'discluster-master',
    env: env.masterEnv(bot, {
      DISCLUSTER_EXPECTED_HOSTS: '2',
      DISCLUSTER_WAIT_FOR_HOSTS_MS: '30000',
      DISCLUSTER_HOST_TIMEOUT_MS: '3000',
    }),
  });
  if (!loaded.ok) throw new Error('invalid test settings');
  const logged: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
  const master = new Master(loaded.config, TOKEN, logger);
  masters.push(master);
  await master.start();
  return { master, logged };
}

function host(bot: string, id: string): Promise<FakeHost> {
  return env.host({ bot, id, cores: 2, answersStatusPolls: true });
}

/** alpha and beta planned by a fresh, logged MASTER. */
async function plannedFleet() {
  const bot = env.nextBot('h');
  const alpha = await host(bot, 'alpha');
  const beta = await host(bot, 'beta');
  const { master, logged } = await loggedMaster(bot);
  await waitFor(() => alpha.epoch === 1 && beta.epoch === 1, {
    description: 'the first assignments',
    timeoutMs: 30_000,
  });
  return { bot, alpha, beta, master, logged };
}

describe('MASTER checks what hosts tell it (issue 13 h)', () => {
  it('a fatal or 4011 event the plan does not back is ignored with a warning: no stop, no reshard', async () => {
    const { bot, alpha, beta, logged } = await plannedFleet();
    const subjects = fleetSubjects(bot);
    const alphaCluster = alpha.lastAssign()!.clusters[0]!;
    const betaCluster = beta.lastAssign()!.clusters[0]!;
    const fatal = (subject: string, event: Omit<FatalEvent, 'v' | 'type' | 'reason'>) =>
      env.nc.publish(
        subject,
        encoder.encode(JSON.stringify({ v: 1, type: 'fatal', reason: 'test', ...event })),
      );
    const bogus: [string, Omit<FatalEvent, 'v' | 'type' | 'reason'>][] = [
      // alpha's cluster, claimed by beta.
      [
        subjects.hostFatal('beta'),
        { hostId: 'beta', clusterId: alphaCluster.clusterId, shardId: alphaCluster.shardIds[0]!, code: 4004 },
      ],
      // A shard the cluster does not serve.
      [
        subjects.hostFatal('alpha'),
        { hostId: 'alpha', clusterId: alphaCluster.clusterId, shardId: betaCluster.shardIds[0]!, code: 4004 },
      ],
      // A cluster nobody runs, on the legacy subject.
      [subjects.fatal, { hostId: 'alpha', clusterId: 999, shardId: 0, code: 4014 }],
      // Beta's own cluster, but published on alpha's subject.
      [
        subjects.hostFatal('alpha'),
        { hostId: 'beta', clusterId: betaCluster.clusterId, shardId: betaCluster.shardIds[0]!, code: 4004 },
      ],
      // "Sharding required" for a cluster not on that host: no reshard either.
      [
        subjects.hostFatal('beta'),
        { hostId: 'beta', clusterId: alphaCluster.clusterId, shardId: alphaCluster.shardIds[0]!, code: 4011 },
      ],
    ];
    for (const [subject, event] of bogus) fatal(subject, event);
    // Then a true one: alpha reports a shard of its own cluster. Only this one stops the fleet.
    fatal(subjects.hostFatal('alpha'), {
      hostId: 'alpha',
      clusterId: alphaCluster.clusterId,
      shardId: alphaCluster.shardIds[1]!,
      code: 4013,
    });
    await waitFor(async () => (await status(bot)).stopped !== null, {
      description: 'the fleet stopped by the true event',
      timeoutMs: 20_000,
    });
    const stopped = (await status(bot)).stopped!;
    expect(stopped.code).toBe(4013);
    expect(stopped.reason).toContain(
      `shard ${alphaCluster.shardIds[1]} (cluster ${alphaCluster.clusterId} on host alpha)`,
    );
    const ignored = logged.filter((line) => line['msg'] === 'ignored a fleet event the plan does not back');
    expect(ignored).toHaveLength(bogus.length);
    expect(ignored.every((line) => line['level'] === 40)).toBe(true);
    expect(logged.some((line) => /reshard/i.test(String(line['msg'])))).toBe(false);
  });

  it('a heartbeat or announce naming another host than its subject is rejected', async () => {
    const { bot, alpha, logged } = await plannedFleet();
    const subjects = fleetSubjects(bot);
    const forged = { ...alpha.facts('announce'), hostId: 'beta' };
    const reply = await env.nc.request(
      subjects.hostAnnounce('alpha'),
      encoder.encode(JSON.stringify(forged)),
      {
        timeout: 5_000,
      },
    );
    expect(JSON.parse(reply.string())).toEqual(expect.objectContaining({ ok: false }));
    expect(logged.some((line) => line['msg'] === 'rejected an announce on another host subject')).toBe(true);
  });
});

describe('one running CONTROL per host id (issue 13 f)', () => {
  it('a second live CONTROL with the same host id is refused with a clear error, assigned nothing, and shown in status', async () => {
    const { bot, alpha } = await plannedFleet();
    const subjects = fleetSubjects(bot);
    await waitFor(async () => (await status(bot)).hosts.find((host) => host.id === 'alpha')?.epoch === 1, {
      description: 'alpha reporting its assignment',
    });
    // A cloned machine: same host id, its own process (instance id) and key.
    const clone = new FakeHost(env.nc, { bot, id: 'alpha', cores: 2, answersStatusPolls: true });
    hosts.push(clone);
    const reply = FleetReplySchema.parse(
      JSON.parse(
        (
          await env.nc.request(
            subjects.hostAnnounce('alpha'),
            encoder.encode(JSON.stringify(clone.facts('announce'))),
            {
              timeout: 10_000,
            },
          )
        ).string(),
      ),
    );
    expect(reply.ok).toBe(false);
    if (reply.ok) return;
    expect(reply.error.code).toBe(ErrorCode.DuplicateHostId);
    expect(reply.error.message).toContain('host_id "alpha"');
    expect(reply.error.message).toContain('pm2 set discluster-control:host_id');
    await clone.start();
    let entry: FleetStatus['hosts'][number] | undefined;
    await waitFor(
      async () => {
        entry = (await status(bot)).hosts.find((host) => host.id === 'alpha');
        return Boolean(entry?.conflict);
      },
      { description: 'the conflict in discluster status', timeoutMs: 20_000 },
    );
    expect(entry!.conflict!.refusedInstanceIds).toEqual([clone.instanceId]);
    expect(entry!.state).toBe('online');
    expect(entry!.epoch).toBe(1);
    // Heartbeats of both go on; MASTER keeps commanding the first one only.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const commands = [...alpha.commands, ...clone.commands];
    expect(
      commands.some((command) => 'instanceId' in command && command.instanceId === clone.instanceId),
    ).toBe(false);
    expect(alpha.assigns().every((command) => command.instanceId === alpha.instanceId)).toBe(true);
    expect((await status(bot)).hosts.find((host) => host.id === 'alpha')!.conflict).toBeTruthy();
  });

  it('a restarted CONTROL (its old process gone) takes its host over at once: no conflict', async () => {
    const { bot, alpha } = await plannedFleet();
    const before = alpha.lastAssign()!;
    alpha.stop();
    const restarted = new FakeHost(env.nc, { bot, id: 'alpha', cores: 2, answersStatusPolls: true });
    hosts.push(restarted);
    await restarted.start();
    await waitFor(() => restarted.epoch === 1, {
      description: 'the restarted CONTROL getting its assignment again',
      timeoutMs: 20_000,
    });
    expect(restarted.lastAssign()!.clusters).toEqual(before.clusters);
    expect(restarted.lastAssign()!.instanceId).toBe(restarted.instanceId);
    expect(restarted.tokens).toEqual([TOKEN]);
    expect((await status(bot)).hosts.find((host) => host.id === 'alpha')!.conflict ?? null).toBeNull();
  });
});

describe('the bot token in a running MASTER (promise 4, issue 14 §4)', () => {
  it('never shows in util.inspect or JSON.stringify of MASTER while it leads a planned fleet', async () => {
    const { master } = await plannedFleet();
    expect(util.inspect(master, { depth: Infinity, showHidden: true })).not.toContain(TOKEN);
    expect(JSON.stringify(master) ?? '').not.toContain(TOKEN);
  });
});
