import {
  ErrorCode,
  FleetStatusSchema,
  isDisclusterError,
  type FleetStatus,
  type ResplitProgress,
} from 'discluster-protocol';
import type { FleetClient } from './fleetClient.js';
import { renderResplit } from './render.js';

/**
 * Polls MASTER's status until the re-split `started` ended (`discluster resplit --wait`); reports
 * progress whenever it changes. A MASTER restarting midway carries the re-split on from KV, so an
 * unanswered status is asked again.
 */
export async function followResplit(
  client: FleetClient,
  started: ResplitProgress,
  timeoutMs: number,
  report: (line: string) => void,
): Promise<FleetStatus> {
  let last = renderResplit(started);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    let status: FleetStatus;
    try {
      status = FleetStatusSchema.parse(await client.askMaster({ v: 1, type: 'status' }, timeoutMs));
    } catch (error) {
      if (isDisclusterError(error, ErrorCode.MasterUnreachable)) continue;
      throw error;
    }
    if (!status.resplit || status.resplit.id !== started.id) return status;
    const line = renderResplit(status.resplit);
    if (line !== last) report(line);
    last = line;
  }
}
