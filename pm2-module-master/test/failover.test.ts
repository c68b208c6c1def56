import { describe, expect, it } from 'vitest';
import { HOST_TIMEOUT_MS, fleetOfTwo } from './oneTerm';

/**
 * Failover as one term's logic, without a server: the plan store, the host commander and the clock
 * are the term's options, played here by the test.
 */

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
