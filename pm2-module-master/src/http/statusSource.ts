import type { FleetStatus, HostHeartbeat, LeaderRecord, PlanRecord } from 'discluster-protocol';

/** What the leading MASTER knows of its fleet, as the status page and `/metrics` read it. */
export interface FleetView {
  /** `discluster status --json` (the CLI contract, docs/architecture.md). */
  readonly status: FleetStatus;
  /** The running plan, or null before the first one. */
  readonly plan: PlanRecord | null;
  /** The latest facts of every host heard from; they carry what the status leaves out (event counts). */
  readonly hosts: readonly Omit<HostHeartbeat, 'type'>[];
}

/**
 * The side of MASTER the HTTP server reads ({@link Master} provides it). Every MASTER serves the
 * page, leader or standby; only the leader has a fleet to show.
 */
export interface StatusSource {
  readonly instanceId: string;
  /** The fleet as the leader sees it now; null while this MASTER does not lead. */
  fleetView(): FleetView | null;
  /** Who leads (from the leadership lease), so a standby can say so. */
  currentLeader(): Promise<LeaderRecord | null>;
}
