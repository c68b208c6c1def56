/** How long a clean stop may take before the process exits anyway (pm2's kill_timeout is 10 s). */
const CLOSE_LIMIT_MS = 5_000;

/** What a started module hands back: a clean stop. */
export interface Closable {
  close(): Promise<unknown>;
}

/**
 * Runs a module (MASTER, CONTROL) as a long-lived process, under pm2 or in the foreground: a crash
 * handler that really exits (pm2's injected APM would otherwise only log an unhandled rejection
 * and leave a half-dead process), and on SIGINT/SIGTERM a clean stop, bounded (with NATS already
 * gone, draining the connection would wait forever). `name` prefixes the crash report.
 */
export function runModuleProcess<H extends Closable>(name: string, start: () => Promise<H>): void {
  let handle: H | undefined;
  const fail = (error: unknown) => {
    process.stderr.write(
      `${name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  };
  process.on('unhandledRejection', fail);
  process.on('uncaughtException', fail);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      const closing = handle?.close() ?? Promise.resolve();
      const limit = new Promise((resolve) => setTimeout(resolve, CLOSE_LIMIT_MS).unref());
      void Promise.race([closing, limit]).finally(() => process.exit(0));
    });
  }
  start().then((started) => (handle = started), fail);
}
