import type { ClusterAssignment } from './ClusterOptions.js';
import type { FleetLink } from '../fleet/FleetLink.js';
import { StatusReporter, STATUS_COALESCE_MS } from '../fleet/StatusReporter.js';
import type { HandoverGate } from '../handover/HandoverGate.js';
import { registerPm2Metrics } from '../pm2/Pm2Metrics.js';
import { loadPm2Io } from 'discluster-runtime';
import { asError } from '../util/redact.js';
import type { ShardStatus } from './ShardStatus.js';

/** What a cluster's report is made of (pm2's `status` action, `cluster.toJSON()`). */
export interface ClusterReportParts {
  readonly clusterId: number | null;
  readonly fleet: FleetLink | null;
  readonly fenceAfterMs: number;
  readonly fenced: boolean;
  readonly revoked: boolean;
  readonly controlKeepalive: boolean;
  readonly gate: HandoverGate | null;
  readonly shards: ShardStatus[];
}

/** The `status` pm2 action's answer: ids, mode, fence state, handover counters, shards; never the token. */
export function clusterReport(parts: ClusterReportParts): Record<string, unknown> {
  const { gate, fleet } = parts;
  return {
    clusterId: parts.clusterId,
    mode: fleet ? 'fleet' : 'standalone',
    epoch: fleet?.epoch ?? null,
    fenceAfterMs: parts.fenceAfterMs,
    fenced: parts.fenced,
    revoked: parts.revoked,
    controlKeepalive: parts.controlKeepalive,
    handover: gate
      ? {
          mode: gate.mode,
          held: gate.heldCount,
          overflowed: gate.overflowed,
          recordedOverflowed: gate.recordedOverflowed,
        }
      : null,
    shards: parts.shards,
  };
}

/**
 * Status to CONTROL (fleet: returns the reporter, whose `changed()` sends soon) and metrics to pm2
 * (under pm2, either mode). A broken @pm2/io is reported, never fatal.
 */
export function startClusterReporting(options: {
  readonly assignment: ClusterAssignment;
  readonly fleet: FleetLink | null;
  readonly intervalMs: number;
  readonly status: () => ShardStatus[];
  readonly report: () => unknown;
  readonly gate: () => HandoverGate | null;
  readonly onError: (error: Error) => void;
}): StatusReporter | null {
  const { fleet, assignment } = options;
  let reporter: StatusReporter | null = null;
  if (fleet) {
    reporter = new StatusReporter({
      send: () => void fleet.sendStatus(options.status()),
      coalesceMs: STATUS_COALESCE_MS,
      intervalMs: options.intervalMs,
    });
    reporter.start();
  }
  try {
    const io = loadPm2Io();
    if (io) {
      registerPm2Metrics(io, {
        clusterId: assignment.clusterId,
        shardIds: assignment.shardIds,
        status: options.status,
        report: options.report,
        handoverOverflow: () => {
          const gate = options.gate();
          return gate ? gate.overflowed + gate.recordedOverflowed : 0;
        },
      });
    }
  } catch (error) {
    options.onError(new Error(`pm2 metrics unavailable: ${asError(error).message}`));
  }
  return reporter;
}
