import { startMaster, type MasterHandle } from './startMaster.js';

/** How long a clean stop may take before the process exits anyway (pm2's kill_timeout is 10 s). */
const CLOSE_LIMIT_MS = 5_000;

/**
 * Starts MASTER as a long-lived process (module or foreground): a crash handler that really exits
 * (pm2's injected APM would otherwise only log an unhandled rejection), and on SIGINT/SIGTERM a
 * clean stop that releases the leadership so a standby MASTER takes over at once.
 */
export function runMasterProcess(env: NodeJS.ProcessEnv): void {
  let handle: MasterHandle | undefined;
  const fail = (error: unknown) => {
    process.stderr.write(
      `discluster-master: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  };
  process.on('unhandledRejection', fail);
  process.on('uncaughtException', fail);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      // Bounded: with NATS already gone, draining the connection would wait forever.
      const closing = handle?.close() ?? Promise.resolve();
      const limit = new Promise((resolve) => setTimeout(resolve, CLOSE_LIMIT_MS).unref());
      void Promise.race([closing, limit]).finally(() => process.exit(0));
    });
  }
  startMaster(env).then((started) => (handle = started), fail);
}
