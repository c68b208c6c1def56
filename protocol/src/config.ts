import os from 'node:os';
import { z } from 'zod';
import { sourceAddressProblems } from './sourceAddresses.js';
import { parseShardRanges } from './shardRanges.js';

/**
 * The configuration keys of the pm2 modules (docs/architecture.md "Contracts"; every key in docs/configuration.md): one schema
 * per module, read from `pm2 set <module>:<key> <value>` (pm2 hands a module its section as JSON
 * in `process.env[<module name>]`) and from `DISCLUSTER_<KEY>` environment variables (the
 * foreground bins). Every value arrives as a string and is validated here; a bad value is an error
 * that names the key, and nothing starts.
 */

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A whole number given as text (pm2 and the environment store strings). */
const integer = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const natsUrls = z
  .string()
  .trim()
  .min(1)
  .transform((text) => text.split(',').map((url) => url.trim()))
  .pipe(
    z
      .array(
        z
          .string()
          .regex(/^(nats|tls|ws|wss):\/\/[^\s]+$/, 'must be nats://host:port (comma-separated for several)'),
      )
      .min(1),
  );

const KV_REPLICAS_RULE =
  'must be a whole number from 1 to 5, at most the number of JetStream servers (1 on one nats-server, 3 on a 3-node cluster)';

const nonEmpty = z.string().trim().min(1, 'must not be empty');

/** `source_addresses`: comma-separated IP literals, each once (sourceAddresses.ts). */
const sourceAddresses = z
  .string()
  .transform((text) => (text.trim() === '' ? [] : text.split(',').map((address) => address.trim())))
  .superRefine((addresses, ctx) => {
    for (const problem of sourceAddressProblems(addresses))
      ctx.addIssue({ code: 'custom', message: problem });
  });

/** `pin_shards`: `0-127,256-300` → sorted ranges; a bad list is an issue naming what is wrong. */
const shardRanges = z
  .string()
  .trim()
  .min(1, 'must not be empty (leave it unset for no pin)')
  .transform((text, ctx) => {
    try {
      return parseShardRanges(text);
    } catch (error) {
      ctx.addIssue({
        code: 'custom',
        message: `must be shard ranges like 0-127,256-300: ${(error as Error).message}`,
      });
      return z.NEVER;
    }
  });

const WEIGHT_RULE = 'must be a number above 0 and at most 1000 (e.g. 0.5, 1, 2)';

/** Keys both modules read. */
export const CommonConfigShape = {
  nats_url: natsUrls.default(['nats://127.0.0.1:4222']),
  bot: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters of A-Z, a-z, 0-9, _ or -')
    .default('default'),
  nats_token: nonEmpty.optional(),
  nats_user: nonEmpty.optional(),
  nats_pass: nonEmpty.optional(),
  /** Path of a NATS `.creds` file. */
  nats_creds: nonEmpty.optional(),
  nats_tls_ca: nonEmpty.optional(),
  nats_tls_cert: nonEmpty.optional(),
  nats_tls_key: nonEmpty.optional(),
  log_level: z.enum(LOG_LEVELS).default('info'),
  /**
   * JetStream replicas of every KV bucket of the bot (CONTROL hands it to its clusters): 3 on a
   * 3-node NATS cluster, so losing one server loses no lease, plan or session.
   */
  kv_replicas: z
    .string()
    .trim()
    .regex(/^\d+$/, KV_REPLICAS_RULE)
    .transform(Number)
    .pipe(z.number().int().min(1, KV_REPLICAS_RULE).max(5, KV_REPLICAS_RULE))
    .default(1),
};

/** discluster-control's settings. */
export const ControlConfigSchema = z
  .object({
    ...CommonConfigShape,
    host_id: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters of A-Z, a-z, 0-9, _ or -')
      .default(
        () =>
          os
            .hostname()
            .replace(/[^A-Za-z0-9_-]/g, '-')
            .slice(0, 64) || 'host',
      ),
    role: z.enum(['active', 'standby']).default('active'),
    /** The bot's entry file (absolute path). Without it CONTROL stays up and reports that it cannot start clusters. */
    script: nonEmpty.optional(),
    shards_per_cluster: integer(1, 1000).default(10),
    retry_ms: integer(100).default(30_000),
    max_cluster_restarts: integer(0, 1000).default(3),
    /** How often CONTROL publishes its heartbeat; keep well under MASTER's `host_timeout_ms`. */
    heartbeat_ms: integer(100, 600_000).default(5_000),
    /** Cores MASTER weighs this host by; default: the cores Node sees (set it where a container limits CPU). */
    cores: integer(1, 4096).optional(),
    /**
     * Shards this host serves, exactly (seed 002's per-machine ranges), e.g. `0-127,256-300`.
     * MASTER plans the other shards over the unpinned hosts; overlapping pins are refused there.
     */
    pin_shards: shardRanges.optional(),
    /** A multiplier on this host's share (`cores / max(load15, 1) × weight`). */
    weight: z
      .string()
      .trim()
      .regex(/^\d+(\.\d+)?$/, WEIGHT_RULE)
      .transform(Number)
      .pipe(z.number().gt(0, WEIGHT_RULE).max(1000, WEIGHT_RULE))
      .default(1),
    /**
     * The NATS identity CONTROL hands its clusters (docs/nats-security.md). Unset: clusters get
     * CONTROL's own `nats_user`/`nats_pass`/`nats_token`/`nats_creds`. Any of these set: clusters
     * get exactly these instead (a least-privilege cluster user); servers and TLS stay CONTROL's.
     */
    cluster_nats_user: nonEmpty.optional(),
    cluster_nats_pass: nonEmpty.optional(),
    cluster_nats_token: nonEmpty.optional(),
    /** Path of the clusters' `.creds` file (CONTROL reads it and sends the contents). */
    cluster_nats_creds: nonEmpty.optional(),
    /**
     * Local addresses of this host (comma-separated IPv4/IPv6 literals) its clusters bind their
     * gateway and REST sockets to: cluster `id` gets `source_addresses[id % count]`. Empty: the
     * operating system picks, as without the setting. CONTROL also refuses, at start, an address
     * this host does not have.
     */
    source_addresses: sourceAddresses.default([]),
  })
  .strict()
  .refine((config) => !(config.role === 'standby' && config.pin_shards), {
    message:
      'a standby host holds no shards until a host fails, so it cannot pin any: unset pin_shards or make the role active',
    path: ['pin_shards'],
  });
export type ControlConfig = z.infer<typeof ControlConfigSchema>;

/** discluster-master's settings. */
export const MasterConfigSchema = z
  .object({
    ...CommonConfigShape,
    token: nonEmpty.optional(),
    token_file: nonEmpty.optional(),
    discord_api: z.url({ protocol: /^https?$/ }).default('https://discord.com/api/v10'),
    shards: z.union([z.literal('auto'), integer(1, 1_000_000)]).default('auto'),
    wait_for_hosts_ms: integer(0).default(45_000),
    /**
     * The bot's global REST limit (requests per second), shared by every process of the fleet
     * (`cluster.rest`). Discord's default is 50; set what Discord raised it to.
     */
    rest_global_per_second: integer(1, 100_000).default(50),
    expected_hosts: integer(1, 10_000).optional(),
    host_timeout_ms: integer(1000).default(15_000),
    http_port: integer(0, 65_535).optional(),
    http_host: nonEmpty.default('127.0.0.1'),
    /**
     * Shard lease time (promise 2): CONTROLs renew their shards' leases well within it, a cut-off
     * host fences its clusters at half of it, and a lost host's shards start elsewhere only after it.
     */
    lease_ms: integer(1000, 600_000).default(20_000),
    /** Leadership lease of the active MASTER; a standby MASTER takes over within it. */
    leader_lease_ms: integer(1000, 600_000).default(10_000),
    /** Rebalance by itself when a host joins (default: a new host stays idle until `discluster rebalance`). */
    auto_rebalance: z
      .enum(['true', 'false'])
      .default('false')
      .transform((value) => value === 'true'),
    /**
     * Reshard by itself (issue 7) when Discord recommends more shards than run, or a shard carries
     * more than `reshard_guilds_per_shard` guilds; checked every `reshard_check_ms`. A 4011 from
     * any shard starts a reshard whatever this says.
     */
    auto_reshard: z
      .enum(['true', 'false'])
      .default('false')
      .transform((value) => value === 'true'),
    reshard_guilds_per_shard: integer(1, 2500).default(2000),
    reshard_check_ms: integer(10_000).default(3_600_000),
    /**
     * A reshard starts only if `session_start_limit.remaining` minus one identify per new shard
     * stays at or above this (the SDK's identify floor, default 10).
     */
    reshard_budget_floor: integer(0).default(10),
    /**
     * Where the leading MASTER POSTs alerts (a JSON body in Discord's webhook format): a cluster
     * that gave up, a fatal fleet stop, a host lost or back, a reshard's end, shards held at the
     * session-start floor, a NATS node lost. Unset: no alerts. The URL is a secret (a Discord
     * webhook URL carries the webhook's token): it is never logged, only its origin.
     */
    /**
     * What MASTER does with the shards of a cluster that gave up (`max_cluster_restarts` failed
     * starts in a row): `move` plans them onto another active host, which RESUMEs their sessions,
     * and holds them if the cluster gives up there too; `hold` leaves them down until an operator
     * acts (`discluster rebalance`). Either way the failure shows in `discluster status`.
     */
    failed_cluster_action: z.enum(['move', 'hold'], { message: "must be 'move' or 'hold'" }).default('move'),
    alert_webhook_url: z
      .url({
        protocol: /^https?$/,
        message: 'must be an http:// or https:// URL (e.g. https://discord.com/api/webhooks/<id>/<token>)',
      })
      .optional(),
  })
  .strict()
  .refine((config) => !(config.token && config.token_file), {
    message: 'set token or token_file, not both',
    path: ['token'],
  });
export type MasterConfig = z.infer<typeof MasterConfigSchema>;

/** One problem with one key. */
export interface ConfigIssue {
  readonly key: string;
  readonly message: string;
}

export type ConfigResult<T> =
  | { readonly ok: true; readonly config: Readonly<T> }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

/** Where settings come from: the pm2 module section and/or `DISCLUSTER_*` variables. */
export interface ConfigSources {
  /** The module's package name (`discluster-control`): pm2 puts its settings in `env[moduleName]`. */
  readonly moduleName: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

// pm2 also puts settings it manages itself into a module's section; they are not ours to validate.
const PM2_MANAGED_KEYS = new Set(['module_conf', 'pmx', 'version']);

/**
 * Reads and validates one module's settings. A `DISCLUSTER_<KEY>` variable wins over the pm2 value
 * (so a foreground run can override a key). Unknown keys are errors: a typo must not be ignored.
 */
export function loadModuleConfig<T>(schema: z.ZodType<T>, sources: ConfigSources): ConfigResult<T> {
  const raw: Record<string, string> = {};
  const issues: ConfigIssue[] = [];
  const section = sources.env[sources.moduleName];
  if (section !== undefined && section !== '') {
    try {
      const parsed: unknown = JSON.parse(section);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw new Error('not an object');
      for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
        if (PM2_MANAGED_KEYS.has(key)) continue;
        raw[key] = typeof value === 'string' ? value : JSON.stringify(value);
      }
    } catch {
      issues.push({ key: sources.moduleName, message: `the pm2 module settings are not a JSON object` });
    }
  }
  for (const [name, value] of Object.entries(sources.env)) {
    if (!name.startsWith('DISCLUSTER_') || value === undefined) continue;
    const key = name.slice('DISCLUSTER_'.length).toLowerCase();
    // Variables CONTROL sets on the bot processes are not module settings.
    if (key === 'cluster_id') continue;
    raw[key] = value;
  }
  if (issues.length > 0) return { ok: false, issues };
  const result = schema.safeParse(raw);
  if (result.success) return { ok: true, config: Object.freeze(result.data) };
  return {
    ok: false,
    issues: result.error.issues.map((issue) => {
      const key = issue.path.length > 0 ? String(issue.path[0]) : unknownKeyOf(issue);
      return { key, message: describeIssue(issue) };
    }),
  };
}

function unknownKeyOf(issue: z.core.$ZodIssue): string {
  return issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : '(settings)';
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys')
    return `unknown setting${issue.keys.length > 1 ? 's' : ''}: check the spelling`;
  return issue.message;
}

/** One line per issue, for logs and the module's error status: `key: message`. */
export function formatConfigIssues(moduleName: string, issues: readonly ConfigIssue[]): string {
  return `${moduleName}: invalid configuration — ${issues.map((issue) => `${issue.key}: ${issue.message}`).join('; ')}. Fix with \`pm2 set ${moduleName}:<key> <value>\` or DISCLUSTER_<KEY>.`;
}
