import type { PlanRecord } from 'discluster-protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { KnownHost } from '../src/hosts/hostRegistry';
import { hostsNotHeardFrom } from '../src/reshard/handoverHosts';
import { planWithReshard } from '../src/reshard/newGeneration';
import { HOST_TIMEOUT_MS, fleetOfTwo, unitGateway } from './oneTerm';

/**
 * A MASTER that takes over while a reshard's handover runs (phase `switching`) hears its hosts one
 * heartbeat at a time. The handover addresses only the old clusters a host reports running, so
 * starting it after the first heartbeat left the other host's old clusters out: never told to cut
 * over, they delivered every event a second time beside the new generation (a busy CI run: 281
 * MESSAGE_CREATEs twice in fleet.reshard.test.ts, whose MASTER is killed midway).
 */

/** The first plan of alpha and beta, resharding 8 → 16 and already switching over. */
function switching(first: PlanRecord, hosts: readonly KnownHost[]): PlanRecord {
  const plan = planWithReshard(first, hosts, 16, unitGateway, 'test');
  return { ...plan, reshard: { ...plan.reshard!, phase: 'switching' } };
}

const terms: ReturnType<typeof fleetOfTwo>[] = [];
afterEach(() => {
  // Ends the handover each test started (it has no NATS to talk to).
  for (const fleet of terms.splice(0)) fleet.term.end({ kind: 'shutdown' });
});

function takenOver() {
  const fleet = fleetOfTwo({ plan: switching, heard: [] });
  terms.push(fleet);
  return fleet;
}

describe('a MASTER that takes over mid-switch (one term, no server)', () => {
  it('resumes the handover only once every host of both generations reported', () => {
    const fleet = takenOver();
    fleet.reshard.check();
    expect(fleet.term.switching).toBe(false);
    fleet.advance(100, [fleet.alpha]);
    fleet.reshard.check();
    expect(fleet.term.switching).toBe(false);
    fleet.advance(100, [fleet.beta]);
    fleet.reshard.check();
    expect(fleet.term.switching).toBe(true);
  });

  it('goes on without a host still silent after host_timeout_ms (it is lost: its clusters fail over)', () => {
    const fleet = takenOver();
    fleet.advance(100, [fleet.alpha]);
    fleet.reshard.check();
    expect(fleet.term.switching).toBe(false);
    fleet.advance(HOST_TIMEOUT_MS, [fleet.alpha]);
    fleet.reshard.check();
    expect(fleet.term.switching).toBe(true);
  });
});

describe('hostsNotHeardFrom', () => {
  const registry = (known: string[], lost: string[] = []) => ({
    get: (hostId: string) => (known.includes(hostId) ? ({} as KnownHost) : undefined),
    isLost: (hostId: string) => lost.includes(hostId),
  });
  const cluster = { clusterId: 0, shardIds: [0] };

  it('names each host with clusters in either generation that is neither heard from nor lost, once', () => {
    const old = { alpha: [cluster], beta: [cluster], idle: [] };
    const next = { beta: [cluster], gamma: [cluster] };
    expect(hostsNotHeardFrom(registry([]), [old, next])).toEqual(['alpha', 'beta', 'gamma']);
    expect(hostsNotHeardFrom(registry(['alpha']), [old, next])).toEqual(['beta', 'gamma']);
    expect(hostsNotHeardFrom(registry(['alpha'], ['gamma']), [old, next])).toEqual(['beta']);
    expect(hostsNotHeardFrom(registry(['alpha', 'beta', 'gamma']), [old, next])).toEqual([]);
  });
});
