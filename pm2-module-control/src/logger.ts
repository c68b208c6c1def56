import { createModuleLogger, type Logger } from 'discluster-runtime/module';

/** discluster-control's logger: JSON lines on stdout, secrets redacted (discluster-runtime's `createModuleLogger`). */
export function createLogger(level: string, bindings: Record<string, unknown>): Logger {
  return createModuleLogger('discluster-control', level, bindings);
}
export type { Logger };
