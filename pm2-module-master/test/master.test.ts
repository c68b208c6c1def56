import { ErrorCode, WhichResultSchema, fleetSubjects, isDisclusterError } from 'discluster-protocol';
import { waitFor } from 'discluster-testing';
import { describe, expect, it } from 'vitest';
import { startMaster, type MasterHandle } from '../src/startMaster';
import { useMasterHarness } from './masterHarness';

/**
 * MASTER against a real nats-server and discord-sim (for GET /gateway/bot), with the CONTROLs
 * played by the test (FakeHost), so each decision can be checked command by command. The fleet
 * with real CONTROLs is in test/fleet.*.test.ts at the top level.
 */

const TOKEN = 'master-test-token-81c2';
const encoder = new TextEncoder();
const env = useMasterHarness(TOKEN, { guilds: 50, shards: 16, 'max-concurrency': 4 });
const { running, client, status } = env;

function settings(bot: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return env.masterEnv(bot, {
    DISCLUSTER_WAIT_FOR_HOSTS_MS: '1000',
    DISCLUSTER_HOST_TIMEOUT_MS: '1000',
    DISCLUSTER_LOG_LEVEL: 'silent',
    ...extra,
  });
}

async function master(bot: string, extra: Record<string, string> = {}): Promise<MasterHandle> {
  const handle = await startMaster(settings(bot, extra));
  running.push(handle);
  return handle;
}

function host(bot: string, id: string, cores: number, role: 'active' | 'standby' = 'active') {
  return env.host({ bot, id, cores, role });
}

/** A fleet of alpha (3 cores), beta (1 core) and the standby gamma, planned by a fresh MASTER. */
async function plannedFleet() {
  const bot = env.nextBot('m');
  const { alpha, beta, gamma, master: handle } = await env.threeHostFleet(bot, (extra) => master(bot, extra));
  return { bot, alpha, beta, gamma, handle };
}

describe('discluster-master', () => {
  it('plans by weight in whole buckets, seals the token for each host, numbers clusters once', async () => {
    const { alpha, beta, gamma } = await plannedFleet();
    expect(alpha.shardIds()).toHaveLength(12);
    expect(beta.shardIds()).toHaveLength(4);
    expect(gamma.shardIds()).toEqual([]);
    expect([...alpha.shardIds(), ...beta.shardIds()].sort((a, b) => a - b)).toEqual([...Array(16).keys()]);
    // max_concurrency 4: each cluster is one whole bucket.
    for (const cluster of [...alpha.lastAssign()!.clusters, ...beta.lastAssign()!.clusters])
      expect(cluster.shardIds).toHaveLength(4);
    expect(alpha.tokens).toEqual([TOKEN]);
    expect(beta.tokens).toEqual([TOKEN]);
    const ids = [...alpha.lastAssign()!.clusters, ...beta.lastAssign()!.clusters].map((c) => c.clusterId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(alpha.lastAssign()!.clusterIds).toEqual([...ids].sort((a, b) => a - b));
  });

  it('answers status and which; the CLI falls back to the CONTROLs when MASTER is gone', async () => {
    const { bot, handle } = await plannedFleet();
    await waitFor(async () => (await status(bot)).hosts.every((h) => h.epoch === 1 || h.id === 'gamma'), {
      description: 'hosts reporting epoch 1',
    });
    const live = await status(bot);
    expect(live.master.up).toBe(true);
    expect(live.shardCount).toBe(16);
    expect(live.maxConcurrency).toBe(4);
    expect(live.hosts.map((h) => [h.id, h.role, h.state])).toEqual([
      ['alpha', 'active', 'online'],
      ['beta', 'active', 'online'],
      ['gamma', 'standby', 'online'],
    ]);
    const fleet = await client(bot);
    try {
      const which = WhichResultSchema.parse(
        await fleet.askMaster({ v: 1, type: 'which', guildId: '81384788765712384' }, 5_000),
      );
      expect(which.shardId).toBe(Number((81384788765712384n >> 22n) % 16n));
      expect(['alpha', 'beta']).toContain(which.hostId);
      await handle.close();
      running.splice(running.indexOf(handle), 1);
      await expect(fleet.askMaster({ v: 1, type: 'status' }, 500)).rejects.toSatisfy((error) =>
        isDisclusterError(error, ErrorCode.MasterUnreachable),
      );
      // FakeHosts do not answer the status scatter, so the stored plan shows them as lost: the
      // point here is that the plan is readable without MASTER.
      const fallback = await fleet.statusFromControls(300);
      expect(fallback.master.up).toBe(false);
      expect(fallback.epoch).toBe(1);
      expect(fallback.shardCount).toBe(16);
    } finally {
      await fleet.close();
    }
  });

  it('fails a silent host over to the standby, keeping its cluster ids, once', async () => {
    const { beta, gamma, alpha } = await plannedFleet();
    const betaClusters = beta.lastAssign()!.clusters;
    beta.stop();
    await waitFor(() => gamma.epoch === 2, { description: 'the failover assignment', timeoutMs: 20_000 });
    expect(gamma.lastAssign()!.clusters).toEqual(betaClusters);
    expect(alpha.epoch).toBe(2);
    expect(alpha.shardIds()).toHaveLength(12);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(gamma.assigns()).toHaveLength(2); // the empty first plan, then the takeover
    expect(gamma.epoch).toBe(2);
  });

  it('a restarted MASTER takes over the stored plan and sends nothing to hosts that follow it', async () => {
    const { bot, alpha, beta, handle } = await plannedFleet();
    const before = alpha.commands.length + beta.commands.length;
    await handle.close();
    running.splice(running.indexOf(handle), 1);
    await master(bot);
    await waitFor(async () => (await status(bot)).master.up, {
      description: 'the new MASTER',
      timeoutMs: 10_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(alpha.commands.length + beta.commands.length).toBe(before);
    expect((await status(bot)).epoch).toBe(1);
  });

  it('a fatal close stops the whole fleet once; restart clears it with a new epoch', async () => {
    const { bot, alpha, beta } = await plannedFleet();
    const fatal = (shardId: number) =>
      env.nc.publish(
        fleetSubjects(bot).fatal,
        encoder.encode(
          JSON.stringify({
            v: 1,
            type: 'fatal',
            hostId: 'alpha',
            clusterId: 0,
            shardId,
            code: 4004,
            reason: 'Authentication failed',
          }),
        ),
      );
    fatal(0);
    fatal(1);
    await waitFor(() => alpha.commands.some((c) => c.type === 'stop-all'), { description: 'stop-all' });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    fatal(2);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(alpha.commands.filter((c) => c.type === 'stop-all')).toHaveLength(1);
    expect(beta.commands.filter((c) => c.type === 'stop-all')).toHaveLength(1);
    const stopped = await status(bot);
    expect(stopped.stopped).toEqual(expect.objectContaining({ code: 4004 }));
    expect(stopped.stopped!.reason).toContain('4004');
    const fleet = await client(bot);
    try {
      await expect(fleet.askMaster({ v: 1, type: 'rebalance' }, 5_000)).rejects.toSatisfy((error) =>
        isDisclusterError(error, ErrorCode.FleetStopped),
      );
      await fleet.askMaster({ v: 1, type: 'restart', rolling: false }, 10_000);
    } finally {
      await fleet.close();
    }
    await waitFor(() => alpha.epoch === 2 && beta.epoch === 2, { description: 'assignments after restart' });
    expect((await status(bot)).stopped).toBeNull();
  });

  it('a rejected token stops before any assignment, with the reason in status', async () => {
    const bot = env.nextBot('m');
    const alpha = await host(bot, 'alpha', 2);
    await master(bot, { DISCLUSTER_TOKEN: 'not-the-token', DISCLUSTER_EXPECTED_HOSTS: '1' });
    await waitFor(async () => (await status(bot)).stopped !== null, {
      description: 'the stop',
      timeoutMs: 10_000,
    });
    const result = await status(bot);
    expect(result.stopped!.reason).toMatch(/401/);
    expect(result.epoch).toBeNull();
    expect(alpha.assigns()).toEqual([]);
    expect((await env.sim.state())['identifies']).toBe(0);
  });

  it('a joining host stays idle until rebalance, which moves the fewest shards', async () => {
    const { bot, alpha, beta } = await plannedFleet();
    const delta = await host(bot, 'delta', 4);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(delta.shardIds()).toEqual([]);
    const fleet = await client(bot);
    let result: unknown;
    try {
      result = await fleet.askMaster({ v: 1, type: 'rebalance' }, 10_000);
    } finally {
      await fleet.close();
    }
    await waitFor(() => delta.epoch === 2 && alpha.epoch === 2, { description: 'rebalanced assignments' });
    // weights 3 : 1 : 4 over 4 buckets → 1.5 / 0.5 / 2 → alpha 2, beta 0 or 1, delta 2 (largest remainder).
    expect(delta.shardIds().length).toBeGreaterThanOrEqual(4);
    const moved = (result as { moved: number }).moved;
    expect(moved).toBe(delta.shardIds().length);
    expect(alpha.shardIds().length + beta.shardIds().length + delta.shardIds().length).toBe(16);
  });

  it('rejects malformed messages and changes nothing', async () => {
    const { bot, alpha } = await plannedFleet();
    const subjects = fleetSubjects(bot);
    const bad = ['not json', '{}', JSON.stringify({ v: 1, type: 'announce', hostId: '../x' })];
    for (const payload of bad) {
      const reply = await env.nc.request(subjects.announce, encoder.encode(payload), { timeout: 2_000 });
      expect(JSON.parse(new TextDecoder().decode(reply.data))).toEqual(
        expect.objectContaining({
          ok: false,
          error: expect.objectContaining({ code: ErrorCode.InvalidMessage }),
        }),
      );
      env.nc.publish(subjects.heartbeat('alpha'), encoder.encode(payload));
      env.nc.publish(subjects.fatal, encoder.encode(payload));
      const answer = await env.nc.request(subjects.master, encoder.encode(payload), { timeout: 2_000 });
      expect(JSON.parse(new TextDecoder().decode(answer.data)).ok).toBe(false);
    }
    // A heartbeat for alpha on beta's subject is not alpha's.
    env.nc.publish(
      subjects.heartbeat('beta'),
      encoder.encode(JSON.stringify({ ...alpha.facts('heartbeat'), epoch: 0 })),
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    const after = await status(bot);
    expect(after.epoch).toBe(1);
    expect(after.stopped).toBeNull();
    expect(alpha.assigns()).toHaveLength(1);
  });

  it('only the leader commands; a standby MASTER takes over when the leader steps down', async () => {
    const { bot, alpha } = await plannedFleet();
    const standby = await master(bot);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(standby.master?.instanceId).toBeDefined();
    const leader = running[0]!;
    await leader.close();
    running.splice(0, 1);
    await waitFor(async () => (await status(bot)).master.up, {
      description: 'the standby leading',
      timeoutMs: 10_000,
    });
    expect((await status(bot)).epoch).toBe(1);
    expect(alpha.assigns()).toHaveLength(1);
  });
});
