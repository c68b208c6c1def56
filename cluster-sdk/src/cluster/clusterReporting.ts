import type { ClusterFencing } from './ClusterFencing.js';
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
  readonly fencing: Pick<ClusterFencing, 'afterMs' | 'fenced' | 'revoked' | 'watchingKeepalives'>;
  readonly gate: HandoverGate | null;
  readonly shards: ShardStatus[];
}

/** The `status` pm2 action's answer: ids, mode, fence state, handover counters, shards; never the token. */
export function clusterReport(parts: ClusterReportParts): Record<string, unknown> {
  const { gate, fleet, fencing } = parts;
  return {
    clusterId: parts.clusterId,
    mode: fleet ? 'fleet' : 'standalone',
    epoch: fleet?.epoch ?? null,
    fenceAfterMs: fencing.afterMs,
    fenced: fencing.fenced,
    revoked: fencing.revoked,
    controlKeepalive: fencing.watchingKeepalives,
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

/** Where a cluster's report and status come from. */
export interface ClusterReportingHost extends Omit<
  ClusterReportParts,
  'clusterId' | 'fleet' | 'gate' | 'shards'
> {
  readonly clusterId: () => number | null;
  readonly fleet: () => FleetLink | null;
  readonly gate: () => HandoverGate | null;
  readonly status: () => ShardStatus[];
  /** How often CONTROL hears the status when nothing changed. */
  readonly intervalMs: number;
  readonly onError: (error: Error) => void;
}

/**
 * What a cluster says about itself: its report (pm2's `status` action, `cluster.toJSON()`) at any
 * time, and once started, status to CONTROL (fleet: {@link changed} sends soon) and metrics to pm2
 * (under pm2, either mode). A broken @pm2/io is reported, never fatal.
 */
export class ClusterReporting {
  readonly #host: ClusterReportingHost;
  #reporter: StatusReporter | null = null;

  public constructor(host: ClusterReportingHost) {
    this.#host = host;
  }

  public report(): Record<string, unknown> {
    const host = this.#host;
    return clusterReport({
      clusterId: host.clusterId(),
      fleet: host.fleet(),
      fencing: host.fencing,
      gate: host.gate(),
      shards: host.status(),
    });
  }

  public start(assignment: Pick<ClusterAssignment, 'clusterId' | 'shardIds'>): void {
    const { status, onError } = this.#host;
    const fleet = this.#host.fleet();
    if (fleet) {
      this.#reporter = new StatusReporter({
        send: () => void fleet.sendStatus(status()),
        coalesceMs: STATUS_COALESCE_MS,
        intervalMs: this.#host.intervalMs,
      });
      this.#reporter.start();
    }
    try {
      const io = loadPm2Io();
      if (io) {
        registerPm2Metrics(io, {
          clusterId: assignment.clusterId,
          shardIds: assignment.shardIds,
          status,
          report: () => this.report(),
          handoverOverflow: () => {
            const gate = this.#host.gate();
            return gate ? gate.overflowed + gate.recordedOverflowed : 0;
          },
        });
      }
    } catch (error) {
      onError(new Error(`pm2 metrics unavailable: ${asError(error).message}`));
    }
  }

  /** The shards' status changed: CONTROL hears it soon (coalesced), not at the next interval. */
  public changed(): void {
    this.#reporter?.changed();
  }

  public stop(): void {
    this.#reporter?.stop();
  }
}
