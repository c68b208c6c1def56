import type { SimJson } from 'discluster-testing';
import { expect } from 'vitest';

/**
 * What discord-sim counts against promises 1 and 2 (docs/architecture.md "Promises"), as GET /state reports them
 * under `violations`: IDENTIFYs inside their rate-limit window, moments a shard had two live
 * sessions, and RESUMEs of a session whose socket was still open elsewhere. The simulator closes
 * the old socket of such a RESUME at once, so it never shows up as a duplicate live session: only
 * `resumeWhileLive` sees that second owner.
 */
export interface FleetViolations {
  readonly identifyRate: number;
  readonly duplicateLiveSessions: number;
  readonly resumeWhileLive: number;
}

/** The three counters of a GET /state answer, or of anything that carries them at the top. */
export function fleetViolations(observed: SimJson | FleetViolations): FleetViolations {
  const counters = ('violations' in observed ? observed['violations'] : observed) as Record<string, unknown>;
  // Missing counters stay undefined (never 0), so a simulator that does not count one fails here.
  return {
    identifyRate: counters['identifyRate'] as number,
    duplicateLiveSessions: counters['duplicateLiveSessions'] as number,
    resumeWhileLive: counters['resumeWhileLive'] as number,
  };
}

/**
 * Every fleet and fault test's check of promises 1 and 2 over the simulator's whole life: no
 * identify violation, no duplicate live session, no RESUME of a session live on another socket.
 * Takes the simulator's state (GET /state) or a FaultRig's `invariants()`.
 */
export function expectFleetInvariants(observed: SimJson | FleetViolations, context?: string): void {
  expect(fleetViolations(observed), context ?? 'discord-sim violations (promises 1 and 2)').toEqual({
    identifyRate: 0,
    duplicateLiveSessions: 0,
    resumeWhileLive: 0,
  });
}

interface IdentifyRecord {
  readonly at: number;
  readonly shard: readonly [number, number];
  readonly rateLimitKey: number;
  readonly outcome: string;
  readonly readLateMs?: number;
}

/**
 * Each IDENTIFY the simulator refused, with how long after the previous accepted one of its key it
 * was read: a gap just under the window means a late read on a busy machine, a gap near zero two
 * sends at once. Empty when there was none.
 */
export function describeRefusedIdentifies(records: readonly IdentifyRecord[]): string {
  const lastAccepted = new Map<number, IdentifyRecord>();
  const lines: string[] = [];
  for (const record of records) {
    const previous = lastAccepted.get(record.rateLimitKey);
    if (record.outcome === 'ready') lastAccepted.set(record.rateLimitKey, record);
    else
      lines.push(
        `shard ${record.shard.join('/')} key ${record.rateLimitKey} refused ${previous ? `${record.at - previous.at} ms after shard ${previous.shard.join('/')} (read up to ${previous.readLateMs ?? 0} ms late)` : 'with no earlier accepted IDENTIFY'}`,
      );
  }
  return lines.join('\n');
}
