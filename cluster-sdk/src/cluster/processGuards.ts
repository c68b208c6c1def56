import { redact } from '../util/redact.js';

/** What the process-wide guards need from each running cluster. */
export interface GuardedCluster {
  /** True from the moment `start()` has everything wired and its shards connecting, until `stop()`. */
  isServing(): boolean;
  /** True once `stop()` began. */
  isStopping(): boolean;
  /** Closes shards for resume and saves sessions. */
  stop(): Promise<void>;
}

/** After a fatal error nothing will SIGKILL the process; still, a stop that hangs must not keep it up. */
const FATAL_STOP_DEADLINE_MS = 5000;
const PM2_DEFAULT_KILL_TIMEOUT_MS = 1600;
/** Time kept between our deadline and pm2's SIGKILL for `process.exit` itself. */
const KILL_TIMEOUT_MARGIN_MS = 250;

const guarded = new Set<GuardedCluster>();
let installed = false;
let exiting = false;

/**
 * How long a signal-driven stop may take: pm2 sends SIGKILL `kill_timeout` ms after SIGINT
 * (default 1600 ms; pm2 passes the app's `kill_timeout` in its environment), so the cluster exits
 * a little before that even if a NATS write hangs. Sessions then are as of the last flush, which
 * still RESUMEs.
 */
export function signalStopDeadlineMs(env: NodeJS.ProcessEnv = process.env): number {
  const killTimeout = Number(env['kill_timeout'] ?? PM2_DEFAULT_KILL_TIMEOUT_MS);
  const base = Number.isFinite(killTimeout) && killTimeout > 0 ? killTimeout : PM2_DEFAULT_KILL_TIMEOUT_MS;
  return Math.max(500, base - KILL_TIMEOUT_MARGIN_MS);
}

/** Resolves when `work` settles or after `ms`, whichever is first (never rejects). */
export async function settleWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      timedOut,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Installs (once per process) the SDK's `uncaughtException` and `unhandledRejection` handlers,
 * and registers `cluster` with them; returns the unregister.
 *
 * Why: under pm2, the APM that pm2 injects into every app listens to both events, so an unhandled
 * rejection is only logged and the process never restarts, and once any other listener exists an
 * uncaught exception no longer exits either. The policy here:
 * - **uncaught exception → fatal.** A throw unwound some stack halfway; the state is unknown.
 *   Logged (secrets redacted), shards closed for resume, sessions saved, exit code 1: pm2 restarts
 *   the cluster, which RESUMEs.
 * - **unhandled rejection → fatal only while a cluster is not serving yet** (waiting for its
 *   assignment, connecting to NATS, setting up KV). Then it is almost always `cluster.start()`
 *   itself failing unobserved (bad assignment, NATS unreachable or refusing), and a cluster
 *   that never started must not sit "online" in pm2 doing nothing. Once serving, a rejection is one
 *   abandoned operation (a bot handler's failed request, say) with the cluster itself intact: it is
 *   logged, and the shards keep serving instead of every shard paying a reconnect for it.
 */
export function guardProcess(cluster: GuardedCluster): () => void {
  guarded.add(cluster);
  if (!installed) {
    installed = true;
    process.on('uncaughtException', (error) => {
      log('uncaught exception (fatal: stopping and exiting with code 1)', error);
      void exitAfterStop(1);
    });
    process.on('unhandledRejection', (reason) => {
      const fatal = [...guarded].some((c) => !c.isServing() && !c.isStopping());
      log(
        fatal
          ? 'unhandled rejection before the cluster was serving (fatal: exiting with code 1)'
          : 'unhandled rejection (logged; the cluster keeps serving)',
        reason,
      );
      if (fatal) void exitAfterStop(1);
    });
  }
  return () => guarded.delete(cluster);
}

async function exitAfterStop(code: number): Promise<void> {
  if (exiting) return;
  exiting = true;
  await settleWithin(Promise.allSettled([...guarded].map((c) => c.stop())), FATAL_STOP_DEADLINE_MS);
  process.exit(code);
}

function log(what: string, error: unknown): void {
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`discluster-sdk: ${what}: ${redact(text)}\n`);
}
