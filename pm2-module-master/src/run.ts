import { startMaster, type MasterHandle } from './startMaster.js';

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
      void (handle?.close() ?? Promise.resolve()).finally(() => process.exit(0));
    });
  }
  startMaster(env).then((started) => (handle = started), fail);
}
