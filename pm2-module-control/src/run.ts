import { startControl, type ControlHandle } from './control.js';

/** How long a clean stop may take before the process exits anyway (pm2's kill_timeout is 10 s). */
const CLOSE_LIMIT_MS = 5_000;

/**
 * Starts CONTROL as a long-lived process (module or foreground) and wires process-level concerns:
 * a crash handler that really exits (pm2's injected APM would otherwise only log an unhandled
 * rejection and leave a half-dead CONTROL), and a clean stop on SIGINT/SIGTERM.
 */
export function runControlProcess(env: NodeJS.ProcessEnv): void {
  let handle: ControlHandle | undefined;
  const fail = (error: unknown) => {
    process.stderr.write(
      `discluster-control: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  };
  process.on('unhandledRejection', fail);
  process.on('uncaughtException', fail);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      // Cluster processes are pm2's, not our children: they keep serving while CONTROL restarts.
      // Bounded: with NATS already gone, draining the connection would wait forever.
      const closing = handle?.close() ?? Promise.resolve();
      const limit = new Promise((resolve) => setTimeout(resolve, CLOSE_LIMIT_MS).unref());
      void Promise.race([closing, limit]).finally(() => process.exit(0));
    });
  }
  startControl(env).then((started) => (handle = started), fail);
}
