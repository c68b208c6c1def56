import { waitFor } from 'discluster-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetStatus } from 'discluster-protocol';
import { Fleet, readyShards } from './support/fleet';
import { expectFleetInvariants } from './support/invariants';

/**
 * Placement on a live fleet of real CONTROLs, pm2 and discord-sim (docs/operations.md
 * "Placement"): a pinned host (`pin_shards`), a weighted one (`weight`) and a plain one share the
 * shards; `discluster drain` moves a host's shards off with RESUMEs only (0 identifies), and
 * `discluster undrain` gives them back the same way; bad settings stop a CONTROL with the key named.
 */

const SHARDS = 8;
let fleet: Fleet;

beforeAll(async () => {
  fleet = await Fleet.start({
    bot: 'placement',
    hosts: [
      { id: 'pinned', cores: 1, env: { DISCLUSTER_PIN_SHARDS: '0-1' } },
      { id: 'heavy', cores: 1, env: { DISCLUSTER_WEIGHT: '3' } },
      { id: 'plain', cores: 1 },
    ],
    shards: SHARDS,
    maxConcurrency: 2,
    guilds: 160,
    leaseMs: 6000,
    hostTimeoutMs: 3000,
  });
  fleet.startMaster();
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
}, 120_000);

const shardsOf = (status: FleetStatus, hostId: string) =>
  (status.hosts.find((host) => host.id === hostId)?.clusters ?? [])
    .flatMap((cluster) => cluster.shards.map((shard) => shard.id))
    .sort((a, b) => a - b);

describe('placement on a real fleet', () => {
  it('pinned, weighted and plain hosts share the shards as configured', { timeout: 300_000 }, async () => {
    await waitFor(async () => readyShards(await fleet.status()).length === SHARDS, {
      description: 'every shard ready',
      timeoutMs: 120_000,
    });
    const status = await fleet.status();
    expect(shardsOf(status, 'pinned')).toEqual([0, 1]);
    // Three buckets of 2 left over weights 3 : 1 (largest remainder: 2.25 → 2, 0.75 → 1).
    expect(shardsOf(status, 'heavy')).toEqual([2, 3, 4, 5]);
    expect(shardsOf(status, 'plain')).toEqual([6, 7]);
    const json = await fleet.cli('status', '--json');
    const hosts = (JSON.parse(json.stdout) as FleetStatus).hosts;
    expect(hosts.find((host) => host.id === 'pinned')).toMatchObject({ pinShards: '0-1', drained: false });
    expect(hosts.find((host) => host.id === 'heavy')).toMatchObject({ weight: 3, drained: false });
    expectFleetInvariants(await fleet.state());
  });

  it(
    'drain moves every shard off a host with resumes only; undrain gives them back the same way',
    { timeout: 300_000 },
    async () => {
      const before = await fleet.state();
      const unknown = await fleet.cli('drain', 'nosuchhost');
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toMatch(/unknown host nosuchhost.*DISCLUSTER_ERR_PLACEMENT_REFUSED/);

      const drained = await fleet.cli('drain', 'heavy', '--json');
      expect(drained.code, drained.stderr).toBe(0);
      expect(JSON.parse(drained.stdout)).toMatchObject({ hostId: 'heavy', moved: 4 });
      let status: FleetStatus | undefined;
      await waitFor(
        async () => {
          status = await fleet.status();
          return readyShards(status).length === SHARDS && shardsOf(status, 'heavy').length === 0;
        },
        { description: 'heavy empty and every shard ready elsewhere', timeoutMs: 120_000 },
      );
      // The pinned host keeps exactly its pins; the plain host takes heavy's shards.
      expect(shardsOf(status!, 'pinned')).toEqual([0, 1]);
      expect(shardsOf(status!, 'plain')).toEqual([2, 3, 4, 5, 6, 7]);
      const text = await fleet.cli('status');
      expect(text.stdout).toMatch(/heavy .*online, drained/);
      const afterDrain = await fleet.state();
      expect(afterDrain['identifies']).toBe(before['identifies']);
      expect(afterDrain['resumes'] - before['resumes']).toBe(4);
      expectFleetInvariants(afterDrain);

      // Nowhere to go for the plain host's shards now: refused, nothing changes.
      const last = await fleet.cli('drain', 'plain');
      expect(last.code).toBe(1);
      expect(last.stderr).toMatch(/cannot drain plain/);

      const undrained = await fleet.cli('undrain', 'heavy', '--json');
      expect(undrained.code, undrained.stderr).toBe(0);
      expect(JSON.parse(undrained.stdout)).toMatchObject({ hostId: 'heavy', moved: 4 });
      await waitFor(
        async () => {
          status = await fleet.status();
          return readyShards(status).length === SHARDS && shardsOf(status, 'heavy').length === 4;
        },
        { description: 'heavy serving its share again', timeoutMs: 120_000 },
      );
      const after = await fleet.state();
      expect(after['identifies']).toBe(before['identifies']);
      expect(after['resumes'] - afterDrain['resumes']).toBe(4);
      expectFleetInvariants(after);
    },
  );

  it(
    'a CONTROL with a bad pin_shards or weight refuses to start, naming the key',
    { timeout: 120_000 },
    async () => {
      for (const [env, key] of [
        [{ DISCLUSTER_PIN_SHARDS: '5-2' }, 'pin_shards'],
        [{ DISCLUSTER_WEIGHT: '0' }, 'weight'],
      ] as const) {
        const host = await fleet.startHost({ id: `bad-${key.replace('_', '-')}`, env });
        // CONTROL stays up idle (pm2 would restart a process that exits, in a loop), saying why.
        const line = await host.control.waitForLine((text) => text.includes('invalid configuration'), 60_000);
        expect(line).toMatch(new RegExp(`${key}: `));
        await host.control.stop();
      }
      // Neither ever reached MASTER.
      const status = await fleet.status();
      expect(status.hosts.map((host) => host.id).sort()).toEqual(['heavy', 'pinned', 'plain']);
    },
  );
});
