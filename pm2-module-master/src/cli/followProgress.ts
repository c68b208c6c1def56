import { ErrorCode, FleetStatusSchema, isDisclusterError, type FleetStatus } from 'discluster-protocol';
import type { FleetClient } from './fleetClient.js';

/**
 * Polls MASTER's status every `intervalMs` while `lineOf(status)` gives a progress line (the
 * operation still runs), reporting each line that differs from the last; resolves with the first
 * status for which it gives null (the operation ended). A MASTER restarting midway carries the
 * operation on from KV, so an unanswered status is asked again (`reshard --wait`, `resplit --wait`).
 */
export async function followProgress(
  client: FleetClient,
  options: {
    readonly first: string;
    readonly intervalMs: number;
    readonly timeoutMs: number;
    readonly lineOf: (status: FleetStatus) => string | null;
    readonly report: (line: string) => void;
  },
): Promise<FleetStatus> {
  let last = options.first;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
    let status: FleetStatus;
    try {
      status = FleetStatusSchema.parse(await client.askMaster({ v: 1, type: 'status' }, options.timeoutMs));
    } catch (error) {
      if (isDisclusterError(error, ErrorCode.MasterUnreachable)) continue;
      throw error;
    }
    const line = options.lineOf(status);
    if (line === null) return status;
    if (line !== last) options.report(line);
    last = line;
  }
}
