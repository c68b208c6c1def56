import { guardProcess, settleWithin, signalStopDeadlineMs, type GuardedCluster } from './processGuards.js';

/** A shutdown asked for by CONTROL has no SIGKILL behind it, but must not hang forever either. */
const CONTROL_SHUTDOWN_DEADLINE_MS = 10_000;

/** What the process hooks need from their cluster. */
export interface ClusterProcessHost extends GuardedCluster {
  readonly debug: (message: string) => void;
}

/**
 * A cluster's hold on its process (opt-out: `handleSignals`, `handleProcessErrors`): SIGINT and
 * SIGTERM stop it and exit, the process-wide error guards know it, and every exit waits for a
 * stop within a deadline.
 */
export class ClusterProcess {
  readonly #host: ClusterProcessHost;
  #signalHandler: (() => void) | null = null;
  #unguard: (() => void) | null = null;

  public constructor(host: ClusterProcessHost) {
    this.#host = host;
  }

  /** Registers with the process-wide `uncaughtException`/`unhandledRejection` policy (processGuards). */
  public guardErrors(): void {
    this.#unguard = guardProcess(this.#host);
  }

  /** A signal stops the cluster before pm2's SIGKILL can land, then exits 0. */
  public handleSignals(): void {
    this.#signalHandler = () => void this.exitAfterStop('signal', 0, signalStopDeadlineMs());
    process.once('SIGINT', this.#signalHandler);
    process.once('SIGTERM', this.#signalHandler);
  }

  /** Removes the signal handlers as a stop begins. */
  public releaseSignals(): void {
    if (!this.#signalHandler) return;
    process.off('SIGINT', this.#signalHandler);
    process.off('SIGTERM', this.#signalHandler);
  }

  /** Leaves the process-wide guards as a stop ends. */
  public releaseGuard(): void {
    this.#unguard?.();
  }

  /** Stops within `deadlineMs` (sessions as of the last flush if NATS hangs), then exits. */
  public async exitAfterStop(
    why: string,
    code: number,
    deadlineMs = CONTROL_SHUTDOWN_DEADLINE_MS,
  ): Promise<void> {
    this.#host.debug(`stopping: ${why}`);
    if (!(await settleWithin(this.#host.stop(), deadlineMs))) {
      process.stderr.write(`discluster-sdk: stop did not finish within ${deadlineMs} ms; exiting anyway\n`);
    }
    process.exit(code);
  }
}
