import pino, { type Logger } from 'pino';

/** Paths pino blanks out wherever they appear in a log object (promise 4, docs/architecture.md). */
const REDACT = [
  'nats_pass',
  'nats_token',
  'cluster_nats_pass',
  'cluster_nats_token',
  '*.cluster_nats_pass',
  '*.cluster_nats_token',
  'token',
  'pass',
  '*.nats_pass',
  '*.nats_token',
  '*.token',
  '*.pass',
  '*.*.token',
];

/**
 * A module's logger: JSON lines on stdout (pm2 keeps them in its log files), each tagged with
 * `module` (`discluster-control`, `discluster-master`), secrets redacted.
 */
export function createModuleLogger(module: string, level: string, bindings: Record<string, unknown>): Logger {
  return pino({
    level,
    base: { module, ...bindings },
    redact: { paths: REDACT, censor: '[redacted]' },
  });
}
export type { Logger };
