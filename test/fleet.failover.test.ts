import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pm2Cli, pm2List, waitFor, type SpawnedProcess } from 'discluster-testing';
import type { FleetStatus } from 'discluster-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, TOKEN, liveSessionsByShard, readyShards } from './support/fleet';
import { expectFleetInvariants } from './support/invariants';

/**
 * Issue 5 "Must show", on a fleet of stand-in machines: three CONTROLs (each its own pm2 daemon,
 * PM2_HOME and host_id: alpha 3 cores, beta 1 core, gamma standby), MASTER, discord-sim, NATS.
 */

const SHARDS = 16;
let fleet: Fleet;
let master: SpawnedProcess;

const shardsOf = (status: FleetStatus, hostId: string) =>
  (status.hosts.find((host) => host.id === hostId)?.clusters ?? [])
    .flatMap((cluster) => cluster.shards.map((shard) => shard.id))
    .sort((a, b) => a - b);

async function allReady(
  message: string,
  also: (status: FleetStatus) => boolean = () => true,
): Promise<FleetStatus> {
  let last: FleetStatus | undefined;
  try {
    await waitFor(
      async () => {
        last = await fleet.status();
        return readyShards(last).length === SHARDS && also(last);
      },
      { timeoutMs: 120_000, intervalMs: 500, description: message },
    );
  } catch (error) {
    throw new Error(`${String(error)}\nlast status: ${JSON.stringify(last)}\n${fleet.diagnostics()}`);
  }
  return last!;
}

beforeAll(async () => {
  fleet = await Fleet.start({
    bot: 'failover',
    hosts: [
      { id: 'alpha', cores: 3 },
      { id: 'beta', cores: 1 },
      { id: 'gamma', cores: 2, role: 'standby' },
    ],
    shards: SHARDS,
    maxConcurrency: 4,
    guilds: 320,
    leaseMs: 6000,
    hostTimeoutMs: 3000,
  });
  master = fleet.startMaster();
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
}, 120_000);

describe('a fleet of three stand-in machines', () => {
  it(
    'plans by weight (cores / load), every shard READY, 0 identify violations',
    { timeout: 180_000 },
    async () => {
      // The standby too: a failover below needs it, and a CONTROL that never came up should fail here.
      const status = await allReady('every shard ready after the first plan, every host online', (now) =>
        ['alpha', 'beta', 'gamma'].every((id) => now.hosts.some((h) => h.id === id && h.state === 'online')),
      );
      // Same machine, same load: weights 3 : 1, whole buckets of max_concurrency 4; standby idle.
      expect(shardsOf(status, 'alpha')).toHaveLength(12);
      expect(shardsOf(status, 'beta')).toHaveLength(4);
      expect(shardsOf(status, 'gamma')).toEqual([]);
      expect(status.master.up).toBe(true);
      const state = await fleet.state();
      expect(state['identifies']).toBe(SHARDS);
      expectFleetInvariants(state);
    },
  );

  it(
    "a SIGKILLed machine's shards serve on the standby by RESUME, no duplicate session, no event lost",
    { timeout: 180_000 },
    async () => {
      const before = await fleet.state();
      const moved = shardsOf(await fleet.status(), 'beta');
      const traffic = await fleet.startTraffic(40, 15);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await fleet.killHost('beta');
      const status = await allReady('every shard ready on gamma and alpha after beta died', (now) =>
        moved.every((id) => shardsOf(now, 'gamma').includes(id)),
      );
      expect(shardsOf(status, 'gamma')).toEqual(moved);
      const after = await fleet.state();
      expect(after['identifies']).toBe(before['identifies']);
      expect(after['resumes'] - before['resumes']).toBeGreaterThanOrEqual(moved.length);
      expectFleetInvariants(after);
      expect([...liveSessionsByShard(after).values()].every((count) => count === 1)).toBe(true);
      await waitFor(() => fleet.trafficDone(traffic.id), {
        timeoutMs: 60_000,
        description: 'the traffic run to finish',
      });
      await waitFor(() => fleet.receivedNonces().size >= traffic.total, {
        timeoutMs: 30_000,
        description: `all ${traffic.total} MESSAGE_CREATE at the bot handlers`,
      });
      const nonces = fleet.receivedNonces();
      for (let n = 0; n < traffic.total; n++) expect(nonces.has(`${traffic.id}:${n}`)).toBe(true);
    },
  );

  it(
    'with MASTER SIGKILLed the fleet serves and a crashed cluster restarts and resumes; a restarted MASTER moves nothing',
    { timeout: 180_000 },
    async () => {
      const planBefore = await fleet.status();
      master.kill('SIGKILL');
      await master.exited;
      const down = await fleet.status();
      expect(down.master.up).toBe(false);
      expect(readyShards(down)).toHaveLength(SHARDS);
      // Crash one of alpha's clusters while MASTER is down.
      const before = await fleet.state();
      const { processes } = await pm2List(fleet.host('alpha').home);
      const victim = processes.find((proc) => String(proc['name']).includes('-cluster-'));
      expect(victim).toBeDefined();
      const oldPid = victim!['pid'] as number;
      process.kill(oldPid, 'SIGKILL');
      await waitFor(
        async () => {
          const now = (await pm2List(fleet.host('alpha').home)).processes.find(
            (p) => p['name'] === victim!['name'],
          );
          return now !== undefined && now['pid'] !== oldPid && now['pm2_env']['status'] === 'online';
        },
        { timeoutMs: 60_000, description: 'the crashed cluster to restart' },
      );
      await allReady('every shard ready after the crash, MASTER down');
      const after = await fleet.state();
      expect(after['identifies']).toBe(before['identifies']);
      expect(after['resumes']).toBeGreaterThan(before['resumes']);
      expectFleetInvariants(after);
      master = fleet.startMaster();
      await waitFor(async () => (await fleet.status()).master.up, {
        timeoutMs: 60_000,
        description: 'the restarted MASTER to answer',
      });
      const again = await fleet.status();
      expect(again.epoch).toBe(planBefore.epoch);
      for (const host of ['alpha', 'gamma'])
        expect(shardsOf(again, host)).toEqual(shardsOf(planBefore, host));
      expect((await fleet.state())['identifies']).toBe(before['identifies']);
    },
  );

  it('a standby MASTER takes over when the leader dies', { timeout: 120_000 }, async () => {
    const standby = fleet.startMaster();
    await standby.waitForLine((line) => line.includes('another MASTER leads'), 30_000);
    const epoch = (await fleet.status()).epoch;
    master.kill('SIGKILL');
    await master.exited;
    await standby.waitForLine((line) => line.includes('elected leader'), 30_000);
    await waitFor(async () => (await fleet.status()).master.up, {
      timeoutMs: 30_000,
      description: 'the new leader to answer',
    });
    const status = await fleet.status();
    expect(status.epoch).toBe(epoch);
    expect(readyShards(status)).toHaveLength(SHARDS);
    expectFleetInvariants(await fleet.state());
    master = standby;
  });

  it('the token never shows in pm2 listings, logs, process arguments or NATS messages', async () => {
    // Everything on NATS since the fleet started: assignments (token sealed per host), heartbeats,
    // KV writes of sessions and leases, IPC.
    expect(fleet.natsMessagesSeen).toBeGreaterThan(100);
    expect(fleet.tokenSightings).toEqual([]);
    for (const host of fleet.hosts.values()) {
      const { raw, processes } = await pm2List(host.home);
      expect(raw.includes(TOKEN)).toBe(false);
      for (const proc of processes) {
        expect(await pm2Cli(host.home, 'env', String(proc['pm_id']))).not.toContain(TOKEN);
        expect(await pm2Cli(host.home, 'show', String(proc['pm_id']))).not.toContain(TOKEN);
      }
      const logs = path.join(host.home, 'logs');
      for (const file of fs.existsSync(logs) ? fs.readdirSync(logs) : [])
        expect(fs.readFileSync(path.join(logs, file), 'utf8').includes(TOKEN), file).toBe(false);
      expect(host.control.lines.some((line) => line.includes(TOKEN))).toBe(false);
      expect(host.control.stderr().includes(TOKEN)).toBe(false);
    }
    for (const master of fleet.masters) expect(master.lines.some((line) => line.includes(TOKEN))).toBe(false);
    // The simulator plays Discord and is given the token on its command line; nothing of ours is.
    const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => !line.includes('discord-sim'));
    expect(ps.filter((line) => line.includes(TOKEN))).toEqual([]);
  });
});
