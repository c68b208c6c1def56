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

/** JSON lines on stdout (pm2 keeps them in its log files), secrets redacted. */
export function createLogger(level: string, bindings: Record<string, unknown>): Logger {
  return pino({
    level,
    base: { module: 'discluster-control', ...bindings },
    redact: { paths: REDACT, censor: '[redacted]' },
  });
}
export type { Logger };
