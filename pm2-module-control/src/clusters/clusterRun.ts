import type { ClusterReport, ShardStatusSchema } from 'discluster-protocol';
import type { z } from 'zod';
import { newReportWatch, type ReportWatch } from '../watchdog/reportSilence.js';

/** One shard's state as its cluster last reported it. */
export type ShardStatus = z.infer<typeof ShardStatusSchema>;

/** What the supervisor knows about one of its clusters. */
export interface ClusterRun {
  readonly clusterId: number;
  readonly shardIds: readonly number[];
  /** The shard count its shards belong to (a reshard runs two side by side). */
  readonly shardCount: number;
  /** A reshard's new generation, warming up without delivering events (see AssignMessage.standby). */
  standby: boolean;
  /** Every cluster id of its generation (whom its `ipc.requestAll` asks). */
  clusterIds: readonly number[];
  /** Epoch of the assignment it was last started or confirmed under. */
  epoch: number;
  state: ClusterReport['state'];
  restarts: number;
  failedStarts: number;
  startedAt: number;
  reportedReady: boolean;
  fatal: boolean;
  /** Stopped for good (revoke, stop-all, lost lease): its exit is expected and never restarted. */
  stopping: boolean;
  /** Shut down to be started again (rolling restart, restart-cluster): its exit is not a crash. */
  restartRequested: boolean;
  /** Taken over from an earlier CONTROL boot: its shards are checked against the plan on its first report. */
  adopted: boolean;
  /** A `confirm` is being checked (the cluster repeats it until answered). */
  confirming: boolean;
  /** Exits seen, so a waiter can tell "exited since I asked". */
  exits: number;
  /** Ends a lease wait when the cluster is stopped meanwhile. */
  readonly abort: AbortController;
  /** The launch in progress (lease acquisition, then pm2), settled when it ends either way. */
  pending: Promise<void>;
  shards?: ShardStatus[];
  timer?: NodeJS.Timeout;
  /** Woken on every exit, status report and stop. */
  readonly listeners: Set<() => void>;
  /** The hung-cluster watchdog's view of the running process's reports (reset per process). */
  watch: ReportWatch;
  /** The watchdog is killing the process (until its exit or the next process is online). */
  killing: boolean;
}

export interface RunGeneration {
  readonly shardCount: number;
  readonly standby: boolean;
  readonly clusterIds: readonly number[];
}

export function newRun(
  clusterId: number,
  shardIds: readonly number[],
  epoch: number,
  generation: RunGeneration,
): ClusterRun {
  return {
    clusterId,
    shardIds: [...shardIds],
    shardCount: generation.shardCount,
    standby: generation.standby,
    clusterIds: [...generation.clusterIds],
    epoch,
    state: 'starting',
    restarts: 0,
    failedStarts: 0,
    startedAt: Date.now(),
    reportedReady: false,
    fatal: false,
    stopping: false,
    restartRequested: false,
    adopted: false,
    confirming: false,
    exits: 0,
    abort: new AbortController(),
    pending: Promise.resolve(),
    listeners: new Set(),
    watch: newReportWatch(),
    killing: false,
  };
}

/** Every shard of the cluster reported `ready`. */
export function isReady(run: ClusterRun): boolean {
  return (
    run.state === 'online' &&
    run.shards !== undefined &&
    run.shards.length === run.shardIds.length &&
    run.shards.every((shard) => shard.state === 'ready')
  );
}

/** Wakes whoever waits on this run. */
export function notify(run: ClusterRun): void {
  for (const listener of [...run.listeners]) listener();
}

/** Resolves true once `predicate` holds (checked on every notify), false after `timeoutMs`. */
export function waitForRun(run: ClusterRun, predicate: () => boolean, timeoutMs: number): Promise<boolean> {
  if (predicate()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (result: boolean): void => {
      clearTimeout(timer);
      run.listeners.delete(check);
      resolve(result);
    };
    const check = (): void => {
      if (predicate()) done(true);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    run.listeners.add(check);
  });
}

/** The heartbeat's view of a run. */
export function reportOf(run: ClusterRun): ClusterReport {
  return {
    clusterId: run.clusterId,
    state: run.state,
    restarts: run.restarts,
    shardIds: [...run.shardIds],
    ...(run.shards ? { shards: run.shards } : {}),
  };
}
