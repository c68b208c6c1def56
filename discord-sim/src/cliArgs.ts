import { parseArgs } from 'node:util';
import type { DiscordSimOptions } from './options';

/** Command-line flag → option, for every option a person may set. */
const FLAGS = {
  host: 'host',
  port: 'port',
  token: 'token',
  guilds: 'guilds',
  shards: 'shards',
  'max-concurrency': 'maxConcurrency',
  'identify-window-ms': 'identifyWindowMs',
  'session-start-total': 'sessionStartTotal',
  'session-start-remaining': 'sessionStartRemaining',
  'heartbeat-interval-ms': 'heartbeatIntervalMs',
  'heartbeat-tolerance-ms': 'heartbeatToleranceMs',
  'session-timeout-ms': 'sessionTimeoutMs',
  'max-guilds-per-shard': 'maxGuildsPerShard',
  'large-bot-shard-factor': 'largeBotShardFactor',
  'allowed-privileged-intents': 'allowedPrivilegedIntents',
  'send-limit': 'sendLimit',
  'send-window-ms': 'sendWindowMs',
  'max-payload-bytes': 'maxPayloadBytes',
  'replay-buffer-limit': 'replayBufferLimit',
  'reconnect-close-after-ms': 'reconnectCloseAfterMs',
  'rest-global-per-second': 'restGlobalPerSecond',
  'invalid-request-limit': 'invalidRequestLimit',
  'ban-ms': 'banMs',
  'interaction-response-ms': 'interactionResponseMs',
  'rest-messages-kept': 'restMessagesKept',
  'gateway-bot-limit': 'gatewayBotLimit',
  'gateway-bot-reset-ms': 'gatewayBotResetMs',
  seed: 'seed',
} as const satisfies Record<string, keyof DiscordSimOptions>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
type LogLevel = (typeof LOG_LEVELS)[number];

const STRING_OPTIONS = new Set<keyof DiscordSimOptions>(['host', 'token']);

export class CliUsageError extends Error {
  public override readonly name = 'CliUsageError';
}

export const USAGE = `Usage: discord-sim [--port 0] [--token T] [--guilds N] [--shards S] [--max-concurrency C]
                   [--identify-window-ms W] [--session-start-total K] [--heartbeat-interval-ms H] [...]

An offline Discord gateway v10 + REST. Prints one JSON line with its URLs once listening
({"rest", "gateway", "admin"}) and runs until SIGINT or SIGTERM.

Options (defaults follow Discord):
${Object.keys(FLAGS)
  .map((flag) => `  --${flag}`)
  .join('\n')}
  --split-compressed-frames   split each zlib-stream message across two WebSocket messages
  --log-level LEVEL           stderr JSON logs: fatal, error, warn (default), info, debug, trace, silent
  --help                      show this text`;

/** Parses argv into simulator options; unknown flags and non-numbers are usage errors naming the flag. */
export function parseCliArgs(argv: readonly string[]): {
  help: boolean;
  logLevel: LogLevel;
  options: Partial<DiscordSimOptions>;
} {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        ...Object.fromEntries(Object.keys(FLAGS).map((flag) => [flag, { type: 'string' as const }])),
        'split-compressed-frames': { type: 'boolean' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new CliUsageError(error instanceof Error ? error.message : String(error));
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const options: Record<string, unknown> = {};
  for (const [flag, key] of Object.entries(FLAGS)) {
    const value = values[flag];
    if (typeof value !== 'string') continue;
    if (STRING_OPTIONS.has(key)) {
      options[key] = value;
      continue;
    }
    const number = Number(value);
    if (value.trim() === '' || !Number.isFinite(number))
      throw new CliUsageError(`--${flag} must be a number (got "${value}")`);
    options[key] = number;
  }
  if (values['split-compressed-frames'] === true) options['splitCompressedFrames'] = true;
  const logLevel = values['log-level'] ?? 'warn';
  if (typeof logLevel !== 'string' || !LOG_LEVELS.includes(logLevel as LogLevel)) {
    throw new CliUsageError(
      `--log-level must be one of ${LOG_LEVELS.join(', ')} (got "${String(logLevel)}")`,
    );
  }
  return {
    help: values['help'] === true,
    logLevel: logLevel as LogLevel,
    options: options as Partial<DiscordSimOptions>,
  };
}
