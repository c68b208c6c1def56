import { pm2List, waitFor } from 'discluster-testing';
import type { FleetStatus } from 'discluster-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, liveSessionsByShard, readyShards } from './support/fleet';
import { expectFleetInvariants } from './support/invariants';

/**
 * Promise 2 with a machine cut off rather than dead (issue 5 "Must show"): beta's CONTROL and
 * clusters reach NATS only through a TCP proxy the test blackholes. Beta's clusters must close their
 * sessions before alpha may start them (the leases expire only after beta fenced), and the
 * simulator must never see two live sessions of one shard — checked at every poll and by its own
 * counter.
 */

const SHARDS = 8;
let fleet: Fleet;
let maxLivePerShard = 0;
let polling = true;
let poller: Promise<void> = Promise.resolve();

const shardsOf = (status: FleetStatus, hostId: string) =>
  (status.hosts.find((host) => host.id === hostId)?.clusters ?? []).flatMap((cluster) =>
    cluster.shards.map((shard) => shard.id),
  );

beforeAll(async () => {
  fleet = await Fleet.start({
    bot: 'partition',
    hosts: [{ id: 'alpha' }, { id: 'beta', viaProxy: true }],
    shards: SHARDS,
    maxConcurrency: 2,
    guilds: 160,
    leaseMs: 6000,
    hostTimeoutMs: 3000,
  });
  fleet.startMaster();
  poller = (async () => {
    while (polling) {
      try {
        for (const count of liveSessionsByShard(await fleet.state()).values())
          maxLivePerShard = Math.max(maxLivePerShard, count);
      } catch {
        // The simulator is being stopped.
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
}, 120_000);

afterAll(async () => {
  polling = false;
  await poller;
  await fleet?.stop();
}, 120_000);

describe('a machine cut off from NATS but alive', () => {
  it(
    'fences before takeover; the shards serve elsewhere by RESUME; never two live sessions',
    { timeout: 240_000 },
    async () => {
      let status: FleetStatus | undefined;
      await waitFor(
        async () => {
          status = await fleet.status();
          return readyShards(status).length === SHARDS;
        },
        { description: 'every shard ready', timeoutMs: 120_000 },
      );
      const betaShards = shardsOf(status!, 'beta');
      expect(betaShards.length).toBeGreaterThan(0);
      const before = await fleet.state();
      fleet.host('beta').proxy!.cut('blackhole');
      await waitFor(
        async () => {
          status = await fleet.status();
          return readyShards(status).length === SHARDS && shardsOf(status, 'alpha').length === SHARDS;
        },
        { description: "beta's shards serving on alpha", timeoutMs: 120_000 },
      );
      // Beta's clusters fenced themselves (their own liveness probe or CONTROL's fence) before takeover.
      expect(fleet.botLines('beta').some((line) => line['t'] === 'fenced')).toBe(true);
      const after = await fleet.state();
      expect(after['identifies']).toBe(before['identifies']);
      expect(after['resumes'] - before['resumes']).toBeGreaterThanOrEqual(betaShards.length);
      expectFleetInvariants(after);
      expect(maxLivePerShard).toBe(1);

      // The link returns: beta is no longer in the plan, so its clusters are stopped, not reconnected.
      fleet.host('beta').proxy!.restore();
      await waitFor(
        async () =>
          (await pm2List(fleet.host('beta').home)).processes.filter((p) =>
            String(p['name']).includes('-cluster-'),
          ).length === 0,
        { description: "beta's stale clusters stopped", timeoutMs: 120_000 },
      );
      const end = await fleet.state();
      expectFleetInvariants(end);
      expect(end['identifies']).toBe(before['identifies']);
      expect(maxLivePerShard).toBe(1);
      expect(readyShards(await fleet.status())).toHaveLength(SHARDS);
    },
  );
});
