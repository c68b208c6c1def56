import { parseArgs } from 'node:util';
import { z } from 'zod';
import { CommonConfigShape, formatConfigIssues } from 'discluster-protocol';
import type { NatsSettings } from 'discluster-protocol';

export const USAGE = `Usage: discluster <command> [options]

Commands:
  status                 hosts, clusters and shards of the fleet (works while MASTER is down)
  which <guildId>        the shard, cluster and host serving a guild
  rebalance              move the fewest shards so shares follow host weights (each resumes)
  restart [--rolling]    --rolling: restart clusters one at a time, each resuming (deploys);
                         without: clear a stop (fatal error, \`stop\`) or restart every cluster
  reshard [--shards N] [--wait]
                         zero-downtime reshard: a new generation of N shards (default: Discord's
                         recommendation, at least one max_concurrency step more) identifies beside
                         the running one, then takes over; --wait follows it until it finished
  resplit --shards-per-cluster N [--wait]
                         change every cluster's size to N shards (a multiple of max_concurrency;
                         fewer, bigger processes save memory) with a rolling re-split: one group of
                         clusters per host at a time, every shard resuming; --wait follows it
  stop                   stop every cluster of the fleet; nothing restarts until \`restart\`
  drain <host>           move every shard off a host (each resumes elsewhere), then hold it empty
                         for maintenance until \`undrain\`; kept across MASTER failovers
  undrain <host>         let a drained host serve again: MASTER rebalances, giving it its share
                         (or its pin_shards) back, each shard resuming

Options (or the environment variable in brackets):
  --json                 machine-readable output
  --nats-url URL[,URL]   NATS servers [DISCLUSTER_NATS_URL] (default nats://127.0.0.1:4222)
  --bot NAME             bot namespace [DISCLUSTER_BOT] (default "default")
  --nats-token, --nats-user, --nats-pass, --nats-creds FILE,
  --nats-tls-ca FILE, --nats-tls-cert FILE, --nats-tls-key FILE   [DISCLUSTER_NATS_*]
  --timeout-ms N         how long to wait for MASTER (default 5000; restart --rolling waits until done)
  -h, --help             this text

Exit codes: 0 done; 1 MASTER refused or the command failed; 2 bad usage; 3 no MASTER answered.`;

export type Command =
  | { readonly name: 'status' }
  | { readonly name: 'which'; readonly guildId: string }
  | { readonly name: 'rebalance' }
  | { readonly name: 'restart'; readonly rolling: boolean }
  | { readonly name: 'reshard'; readonly shards: number | null; readonly wait: boolean }
  | { readonly name: 'resplit'; readonly shardsPerCluster: number; readonly wait: boolean }
  | { readonly name: 'stop' }
  | { readonly name: 'drain' | 'undrain'; readonly hostId: string }
  | { readonly name: 'help' };

export interface CliOptions {
  readonly command: Command;
  readonly json: boolean;
  readonly timeoutMs: number;
  readonly bot: string;
  readonly nats: NatsSettings;
}

/** A usage mistake: printed with the usage text, exit code 2. */
export class UsageError extends Error {}

const SettingsSchema = z
  .object({
    nats_url: CommonConfigShape.nats_url,
    bot: CommonConfigShape.bot,
    nats_token: CommonConfigShape.nats_token,
    nats_user: CommonConfigShape.nats_user,
    nats_pass: CommonConfigShape.nats_pass,
    nats_creds: CommonConfigShape.nats_creds,
    nats_tls_ca: CommonConfigShape.nats_tls_ca,
    nats_tls_cert: CommonConfigShape.nats_tls_cert,
    nats_tls_key: CommonConfigShape.nats_tls_key,
  })
  .strip();

const NATS_KEYS = [
  'nats_url',
  'bot',
  'nats_token',
  'nats_user',
  'nats_pass',
  'nats_creds',
  'nats_tls_ca',
  'nats_tls_cert',
  'nats_tls_key',
] as const;

/** Parses argv (without node and the script) and the environment. Throws {@link UsageError}. */
export function parseCli(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        rolling: { type: 'boolean', default: false },
        wait: { type: 'boolean', default: false },
        shards: { type: 'string' },
        'shards-per-cluster': { type: 'string' },
        'timeout-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
        ...Object.fromEntries(
          NATS_KEYS.map((key) => [key.replaceAll('_', '-'), { type: 'string' as const }]),
        ),
      },
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  const raw: Record<string, string> = {};
  for (const key of NATS_KEYS) {
    const fromFlag = values[key.replaceAll('_', '-') as keyof typeof values];
    const value = typeof fromFlag === 'string' ? fromFlag : env[`DISCLUSTER_${key.toUpperCase()}`];
    if (value !== undefined) raw[key] = value;
  }
  const settings = SettingsSchema.safeParse(raw);
  if (!settings.success)
    throw new UsageError(
      formatConfigIssues(
        'discluster',
        settings.error.issues.map((issue) => ({
          key: `--${String(issue.path[0] ?? '').replaceAll('_', '-')}`,
          message: issue.message,
        })),
      ),
    );
  const timeoutText = values['timeout-ms'];
  const timeoutMs = timeoutText === undefined ? 5_000 : Number(timeoutText);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100)
    throw new UsageError('--timeout-ms must be a whole number of milliseconds, at least 100');
  const [name, ...rest] = positionals;
  const command = ((): Command => {
    if (values.help || name === undefined || name === 'help') return { name: 'help' };
    const noMore = () => {
      if (rest.length > 0) throw new UsageError(`${name} takes no argument, got ${rest.join(' ')}`);
    };
    switch (name) {
      case 'status':
      case 'rebalance':
      case 'stop':
        noMore();
        return { name };
      case 'restart':
        noMore();
        return { name, rolling: values.rolling };
      case 'which': {
        const guildId = rest[0];
        if (rest.length !== 1 || guildId === undefined || !/^\d{1,20}$/.test(guildId))
          throw new UsageError('which needs one guild id (digits), e.g. discluster which 81384788765712384');
        return { name, guildId };
      }
      case 'reshard': {
        noMore();
        const shards = values.shards === undefined ? null : Number(values.shards);
        if (shards !== null && (!Number.isInteger(shards) || shards < 1))
          throw new UsageError('--shards must be a positive whole number');
        return { name, shards, wait: values.wait };
      }
      case 'resplit': {
        noMore();
        const text = values['shards-per-cluster'];
        const shardsPerCluster = Number(text);
        if (
          text === undefined ||
          !Number.isInteger(shardsPerCluster) ||
          shardsPerCluster < 1 ||
          shardsPerCluster > 1000
        )
          throw new UsageError(
            'resplit needs --shards-per-cluster N, a whole number from 1 to 1000 (a multiple of max_concurrency), e.g. discluster resplit --shards-per-cluster 32',
          );
        return { name, shardsPerCluster, wait: values.wait };
      }
      case 'drain':
      case 'undrain': {
        const hostId = rest[0];
        if (rest.length !== 1 || hostId === undefined || !/^[A-Za-z0-9_-]{1,64}$/.test(hostId))
          throw new UsageError(
            `${name} needs one host id (its CONTROL's host_id), e.g. discluster ${name} machine-2`,
          );
        return { name, hostId };
      }
      default:
        throw new UsageError(`unknown command ${JSON.stringify(name)}`);
    }
  })();
  const s = settings.data;
  return {
    command,
    json: values.json,
    timeoutMs,
    bot: s.bot,
    nats: {
      nats_url: s.nats_url,
      nats_token: s.nats_token,
      nats_user: s.nats_user,
      nats_pass: s.nats_pass,
      nats_creds: s.nats_creds,
      nats_tls_ca: s.nats_tls_ca,
      nats_tls_cert: s.nats_tls_cert,
      nats_tls_key: s.nats_tls_key,
    },
  };
}
