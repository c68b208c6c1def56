import net from 'node:net';
import {
  budgetBucket,
  handoverBucket,
  identifyBucket,
  identifyWaitersBucket,
  leaderBucket,
  leaseBucket,
  masterBucket,
  sessionBucket,
  validateBotNamespace,
} from './kv.js';
import { fleetSubjects, handoverSubjects, ipcSubjects } from './subjects.js';

/**
 * NATS security shared by MASTER, CONTROL and the SDK (docs/nats-security.md): the plaintext
 * warning, clear errors for refused connections (naming the setting to fix), a connect loop that
 * keeps retrying instead of crash-looping, and the least-privilege permission template per role,
 * built from the same subject and bucket builders the processes use.
 */

/** The `nats_*` settings every Discluster process connects with. */
export interface NatsSettings {
  readonly nats_url: readonly string[];
  readonly nats_token?: string | undefined;
  readonly nats_user?: string | undefined;
  readonly nats_pass?: string | undefined;
  readonly nats_creds?: string | undefined;
  readonly nats_tls_ca?: string | undefined;
  readonly nats_tls_cert?: string | undefined;
  readonly nats_tls_key?: string | undefined;
}

// ---- plaintext warning ----------------------------------------------------------------------------

function hostOf(url: string): string | null {
  try {
    // WHATWG URL does not parse the host of unknown schemes (`nats:`) as a host: borrow http's.
    const parsed = new URL(url.replace(/^[a-z]+:\/\//i, 'http://'));
    return parsed.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  } catch {
    return null;
  }
}

/** `url` without the password (or token) it may carry (`nats://user:pass@host` → `nats://user:***@host`). */
export function redactNatsUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/)([^@/]*)@/i, (_match, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return `${scheme}${colon >= 0 ? `${userinfo.slice(0, colon)}:***` : '***'}@`;
  });
}

/** True for `localhost`, `*.localhost`, 127.0.0.0/8 and ::1 (also IPv4-mapped): traffic that never leaves the machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) {
    if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped !== null && mapped[1]!.startsWith('127.');
  }
  return false;
}

/**
 * True when the client insists on TLS: a `tls://` or `wss://` URL, or any `nats_tls_*` setting
 * (the connection options then require TLS, so a server without it is refused, not used in plain).
 */
export function natsRequiresTls(settings: NatsSettings): boolean {
  return (
    settings.nats_tls_ca !== undefined ||
    settings.nats_tls_cert !== undefined ||
    settings.nats_tls_key !== undefined ||
    settings.nats_url.some((url) => /^(tls|wss):\/\//i.test(url))
  );
}

/**
 * The `nats_url` entries that would carry credentials and the bot's traffic in plaintext across a
 * network: a non-loopback host without TLS (neither a `tls://` URL nor a `nats_tls_*` setting).
 * Empty when there is nothing to warn about.
 */
export function plaintextNatsUrls(settings: NatsSettings): string[] {
  const tlsForAll =
    settings.nats_tls_ca !== undefined ||
    settings.nats_tls_cert !== undefined ||
    settings.nats_tls_key !== undefined;
  if (tlsForAll) return [];
  // One tls:// URL makes the client require TLS for every server (see natsRequiresTls).
  if (settings.nats_url.some((url) => /^(tls|wss):\/\//i.test(url))) return [];
  return settings.nats_url.filter((url) => {
    const host = hostOf(url);
    return host === null || !isLoopbackHost(host);
  });
}

/** The loud warning MASTER and CONTROL log at start, or null (see {@link plaintextNatsUrls}). */
export function plaintextNatsWarning(settings: NatsSettings): string | null {
  const urls = plaintextNatsUrls(settings);
  if (urls.length === 0) return null;
  return (
    `NATS traffic to ${urls.map(redactNatsUrl).join(', ')} is PLAINTEXT: credentials, commands and gateway sessions ` +
    'cross the network unencrypted and unauthenticated servers can be impersonated. Use a tls:// ' +
    'URL and nats_tls_ca (see docs/nats-security.md), or keep NATS on loopback.'
  );
}

// ---- connection errors ----------------------------------------------------------------------------

/** What the NATS server says about itself in its first (plaintext) `INFO` line. */
export interface NatsServerInfo {
  readonly tls_required?: boolean;
  readonly tls_verify?: boolean;
  readonly tls_available?: boolean;
  readonly auth_required?: boolean;
}

/** A refused or failed connection, explained. */
export interface NatsConnectProblem {
  /**
   * `settings`: a setting is wrong or missing (logged as an error naming it); `unreachable`: no
   * server answered (it may not be up yet).
   */
  readonly kind: 'settings' | 'unreachable';
  /** The settings to check, e.g. `['nats_user', 'nats_pass']`. */
  readonly settings: readonly string[];
  readonly message: string;
}

const UNTRUSTED_SERVER_CERT = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
]);

function errorParts(error: unknown): { name: string; message: string; code: string } {
  if (typeof error !== 'object' || error === null) return { name: '', message: String(error), code: '' };
  const e = error as { name?: unknown; message?: unknown; code?: unknown; cause?: unknown };
  const cause = (typeof e.cause === 'object' && e.cause !== null ? e.cause : {}) as { code?: unknown };
  const code = typeof e.code === 'string' ? e.code : typeof cause.code === 'string' ? cause.code : '';
  return {
    name: typeof e.name === 'string' ? e.name : '',
    message: typeof e.message === 'string' ? e.message : String(error),
    code,
  };
}

function authSettings(settings: NatsSettings): { keys: string[]; what: string } {
  if (settings.nats_creds !== undefined)
    return { keys: ['nats_creds'], what: `the credentials in nats_creds (${settings.nats_creds})` };
  if (settings.nats_user !== undefined || settings.nats_pass !== undefined)
    return {
      keys: ['nats_user', 'nats_pass'],
      what: `user ${JSON.stringify(settings.nats_user ?? '')} (nats_user/nats_pass: unknown user or wrong password)`,
    };
  if (settings.nats_token !== undefined) return { keys: ['nats_token'], what: 'the token in nats_token' };
  return { keys: [], what: '' };
}

/**
 * Explains why a connection failed, naming the setting to fix. `info` is the server's INFO line if
 * it could be read (it tells whether the server wants a client certificate, which TLS 1.3 clients
 * only notice as a timeout).
 */
export function describeNatsConnectError(
  error: unknown,
  settings: NatsSettings,
  info?: NatsServerInfo | null,
): NatsConnectProblem {
  const { name, message, code } = errorParts(error);
  const servers = settings.nats_url.map(redactNatsUrl).join(', ');
  const settingsProblem = (keys: string[], text: string): NatsConnectProblem => ({
    kind: 'settings',
    settings: keys,
    message: `cannot connect to NATS at ${servers}: ${text}`,
  });

  if (name === 'AuthorizationError' || /authorization violation/i.test(message)) {
    const auth = authSettings(settings);
    if (auth.keys.length === 0)
      return settingsProblem(
        ['nats_user', 'nats_pass', 'nats_token', 'nats_creds'],
        'the server requires authentication and none is configured: set nats_user and nats_pass, nats_token or nats_creds',
      );
    return settingsProblem(auth.keys, `the server refused ${auth.what}`);
  }
  if (name === 'UserAuthenticationExpiredError' || /authentication expired/i.test(message))
    return settingsProblem(['nats_creds'], `the user JWT in nats_creds (${settings.nats_creds}) has expired`);
  if (/unable to parse credentials/i.test(message))
    return settingsProblem(
      ['nats_creds'],
      `nats_creds (${settings.nats_creds}) is not a NATS .creds file (a user JWT and its nkey seed)`,
    );
  if (UNTRUSTED_SERVER_CERT.has(code)) {
    const hint =
      settings.nats_tls_ca === undefined
        ? 'set nats_tls_ca to the CA certificate that signed it'
        : `check nats_tls_ca (${settings.nats_tls_ca}): it is not the CA that signed the server's certificate`;
    return settingsProblem(
      ['nats_tls_ca'],
      `the server's TLS certificate is not trusted (${message}): ${hint}`,
    );
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return settingsProblem(
      ['nats_url'],
      `the server's TLS certificate does not name the host in nats_url (${message}): connect by a name the certificate lists`,
    );
  if (/does not support 'tls'|tls.*not available/i.test(message))
    return settingsProblem(
      ['nats_url', 'nats_tls_ca'],
      'TLS is required by nats_url (tls://) or the nats_tls_* settings, but the server does not offer TLS',
    );
  if (/key values mismatch/i.test(message) || code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH')
    return settingsProblem(
      ['nats_tls_cert', 'nats_tls_key'],
      `nats_tls_key (${settings.nats_tls_key}) is not the private key of nats_tls_cert (${settings.nats_tls_cert})`,
    );
  const missingFile =
    /^(.*) doesn't exist$/.exec(message) ?? (code === 'ENOENT' ? /'([^']+)'/.exec(message) : null);
  if (missingFile) {
    const file = missingFile[1]!;
    const keys = fileSettings(settings).filter(([, path]) => file.endsWith(path) || path.endsWith(file));
    return settingsProblem(
      keys.length > 0 ? keys.map(([key]) => key) : fileSettings(settings).map(([key]) => key),
      `the file ${file} does not exist or cannot be read`,
    );
  }
  if (/^ERR_OSSL_|PEM routines|no start line|bad base64/i.test(code) || /PEM routines/i.test(message))
    return settingsProblem(
      fileSettings(settings)
        .filter(([key]) => key.startsWith('nats_tls_'))
        .map(([key]) => key),
      `a TLS file is not valid PEM (${message}): check nats_tls_ca, nats_tls_cert and nats_tls_key`,
    );
  if (info?.tls_verify === true && (name === 'TimeoutError' || /timeout/i.test(message))) {
    if (settings.nats_tls_cert === undefined)
      return settingsProblem(
        ['nats_tls_cert', 'nats_tls_key'],
        'the server requires a client certificate (mutual TLS) and none is configured: set nats_tls_cert and nats_tls_key',
      );
    return settingsProblem(
      ['nats_tls_cert', 'nats_tls_key'],
      `the server did not accept the client certificate in nats_tls_cert (${settings.nats_tls_cert}): ` +
        'is it signed by a CA the server trusts (its tls ca_file) and valid for client authentication?',
    );
  }
  return {
    kind: 'unreachable',
    settings: ['nats_url'],
    message: `cannot connect to NATS at ${servers}: ${message || code || name} (is nats-server running and reachable?)`,
  };
}

function fileSettings(settings: NatsSettings): Array<[string, string]> {
  const files: Array<[string, string | undefined]> = [
    ['nats_creds', settings.nats_creds],
    ['nats_tls_ca', settings.nats_tls_ca],
    ['nats_tls_cert', settings.nats_tls_cert],
    ['nats_tls_key', settings.nats_tls_key],
  ];
  return files.filter((entry): entry is [string, string] => entry[1] !== undefined);
}

/**
 * Reads the server's INFO line (sent in plaintext before any TLS or authentication), or null. Used
 * only to explain a failed connection.
 */
export function readNatsServerInfo(url: string, timeoutMs = 2_000): Promise<NatsServerInfo | null> {
  return new Promise((resolve) => {
    let parsed: URL;
    try {
      parsed = new URL(url.replace(/^[a-z]+:\/\//i, 'http://'));
    } catch {
      resolve(null);
      return;
    }
    const socket = net.connect({
      host: parsed.hostname.replace(/^\[|\]$/g, ''),
      port: Number(parsed.port || 4222),
    });
    let received = '';
    const done = (info: NatsServerInfo | null): void => {
      socket.destroy();
      resolve(info);
    };
    socket.setTimeout(timeoutMs, () => done(null));
    socket.on('error', () => done(null));
    socket.on('close', () => done(null));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('utf8');
      const end = received.indexOf('\r\n');
      if (end < 0) {
        if (received.length > 64 * 1024) done(null);
        return;
      }
      const line = received.slice(0, end);
      if (!line.startsWith('INFO ')) return done(null);
      try {
        const value: unknown = JSON.parse(line.slice(5));
        done(typeof value === 'object' && value !== null ? (value as NatsServerInfo) : null);
      } catch {
        done(null);
      }
    });
  });
}

// ---- connect, retrying ----------------------------------------------------------------------------

/** The logger calls the connect loop makes (a pino logger fits). */
export interface NatsConnectLogger {
  error(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  debug(fields: Record<string, unknown>, message: string): void;
}

export interface NatsConnectLoopOptions<C> {
  readonly settings: NatsSettings;
  /** One attempt (builds the options afresh, so a fixed file is read again). */
  readonly connect: () => Promise<C>;
  readonly logger: NatsConnectLogger;
  /** Longest wait between attempts; they start at 500 ms and double up to this. */
  readonly maxDelayMs: number;
  /** The same problem is logged at its level at most this often (debug in between). Default 60 s. */
  readonly repeatLogMs?: number;
  /** Explains failures; default {@link readNatsServerInfo} on the first URL. Tests replace it. */
  readonly probe?: (url: string) => Promise<NatsServerInfo | null>;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

/** Delay before attempt `attempt + 1`: 500 ms doubling, capped. */
export function natsRetryDelayMs(attempt: number, maxDelayMs: number): number {
  return Math.max(1, Math.min(maxDelayMs, 500 * 2 ** Math.min(attempt - 1, 20)));
}

/**
 * Connects, retrying for ever. Every failure is explained ({@link describeNatsConnectError}): a wrong
 * or missing setting is an error naming it, an unreachable server is info (it may not be up yet).
 * The process never exits over it: pm2 would only restart it into the same refusal, in a loop.
 */
export async function connectNatsWithRetry<C>(options: NatsConnectLoopOptions<C>): Promise<C> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const now = options.now ?? Date.now;
  const probe = options.probe ?? ((url: string) => readNatsServerInfo(url));
  const repeatLogMs = options.repeatLogMs ?? 60_000;
  let last: { message: string; at: number } | null = null;
  for (let attempt = 1; ; attempt++) {
    try {
      return await options.connect();
    } catch (error) {
      let problem = describeNatsConnectError(error, options.settings);
      if (problem.kind === 'unreachable' && options.settings.nats_url[0] !== undefined) {
        // A timeout may be a client certificate the server rejected after the TLS 1.3 handshake.
        const info = await probe(options.settings.nats_url[0]).catch(() => null);
        if (info) problem = describeNatsConnectError(error, options.settings, info);
      }
      const delayMs = natsRetryDelayMs(attempt, options.maxDelayMs);
      const fields = { attempt, settings: problem.settings, retryInMs: delayMs };
      const text = `${problem.message}; retrying in ${delayMs} ms`;
      const repeated = last !== null && last.message === problem.message && now() - last.at < repeatLogMs;
      if (repeated) options.logger.debug(fields, text);
      else {
        last = { message: problem.message, at: now() };
        if (problem.kind === 'settings') options.logger.error(fields, text);
        else options.logger.info(fields, text);
      }
      await sleep(delayMs);
    }
  }
}

// ---- least-privilege permissions --------------------------------------------------------------------

/** The NATS users of one fleet: each process kind connects as its own. */
export type NatsRole = 'master' | 'control' | 'cluster' | 'operator';

export const NATS_ROLES: readonly NatsRole[] = ['master', 'control', 'cluster', 'operator'];

/**
 * The inbox prefix (reply subjects) of MASTER, CONTROL and the clusters of one bot. Each role
 * receives its replies (requests, KV reads, watches) under its own prefix, so a role is granted
 * `subscribe` on its own inboxes only and cannot read another role's replies (e.g. a cluster
 * cannot read MASTER's plan as it comes back from KV). All are under `_INBOX.`, so an unrestricted
 * `_INBOX.>` grant keeps working.
 */
export function natsInboxPrefix(bot: string, role: Exclude<NatsRole, 'operator'>): string {
  return `_INBOX.discluster.${validateBotNamespace(bot)}.${role}`;
}

/** One role's nats-server permissions. */
export interface NatsRolePermissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
  /** `allow_responses`: may answer requests it received (on their reply subject) and nothing else there. */
  readonly allowResponses: boolean;
}

/** What a role does with one KV bucket. */
interface KvUse {
  /** Get entries, watch, list keys (consumers). */
  readonly read?: boolean;
  /** Put, create, update, delete entries. */
  readonly write?: boolean;
  /** Create the bucket if it does not exist. */
  readonly create?: boolean;
  /** Change the bucket's configuration (MASTER sets the TTL of the buckets it owns). */
  readonly configure?: boolean;
}

/** JetStream API and KV subjects for one use of a KV bucket (stream `KV_<bucket>`). */
function kvSubjects(bucket: string, use: KvUse): string[] {
  const stream = `KV_${bucket}`;
  const subjects = [`$JS.API.STREAM.INFO.${stream}`];
  if (use.read)
    subjects.push(
      `$JS.API.STREAM.MSG.GET.${stream}`,
      `$JS.API.DIRECT.GET.${stream}`,
      `$JS.API.DIRECT.GET.${stream}.>`,
      `$JS.API.CONSUMER.CREATE.${stream}`,
      `$JS.API.CONSUMER.CREATE.${stream}.>`,
      `$JS.API.CONSUMER.INFO.${stream}.>`,
      `$JS.API.CONSUMER.DELETE.${stream}.>`,
    );
  if (use.write) subjects.push(`$KV.${bucket}.>`);
  if (use.create) subjects.push(`$JS.API.STREAM.CREATE.${stream}`);
  if (use.configure) subjects.push(`$JS.API.STREAM.UPDATE.${stream}`);
  return subjects;
}

const OWN: KvUse = { read: true, write: true, create: true, configure: true };
const SHARED: KvUse = { read: true, write: true, create: true };

/**
 * The least-privilege permissions of each role of bot `bot`:
 * - master: commands to hosts (`fleet.host.*.cmd`, `fleet.cmd.all`) — the only role that may send
 *   them; receives announces, heartbeats, events and operator requests; owns the leader, plan and
 *   lease buckets.
 * - control: announces, heartbeats and events; receives its commands and status polls; keeps the
 *   shard leases.
 * - cluster: cluster-to-cluster IPC; identify slots, waiters, budget and sessions; a reshard's
 *   handover steps and bucket. No fleet subject, no lease or MASTER bucket.
 * - operator (the `discluster` CLI): requests to MASTER, status polls to CONTROLs, reads the plan.
 *   Uses the default inbox, so it may subscribe `_INBOX.>`: give it only to operators.
 */
export function natsPermissions(bot: string): Record<NatsRole, NatsRolePermissions> {
  const fleet = fleetSubjects(bot);
  // `discluster.v1.<bot>.fleet.host.*`: the host id is one token, a wildcard here.
  const anyHost = fleet.allHeartbeats.slice(0, -'.heartbeat'.length);
  const ipc = `${ipcSubjects(bot).broadcast.slice(0, -'.all'.length)}.>`;
  const jsInfo = '$JS.API.INFO';
  const handover = handoverSubjects(bot);
  return {
    master: {
      publish: [
        `${anyHost}.cmd`,
        fleet.broadcast,
        // Status polls: is the known CONTROL of a host id still running (a second one is refused)?
        fleet.hostStatus,
        // The steps of a reshard's handover, to each cluster.
        handover.all,
        jsInfo,
        ...kvSubjects(leaderBucket(bot), OWN),
        ...kvSubjects(masterBucket(bot), OWN),
        // MASTER sets the lease bucket's TTL (lease_ms) but never reads or writes a lease.
        ...kvSubjects(leaseBucket(bot), { create: true, configure: true }),
      ],
      subscribe: [
        fleet.allHostAnnounces,
        fleet.announce,
        fleet.allHeartbeats,
        fleet.allEvents,
        fleet.master,
        `${natsInboxPrefix(bot, 'master')}.>`,
      ],
      allowResponses: true,
    },
    // One user for every host; natsHostPermissions() names one host's subjects instead.
    control: {
      publish: [
        fleet.allHostAnnounces,
        fleet.announce,
        fleet.allHeartbeats,
        fleet.allEvents,
        jsInfo,
        ...kvSubjects(leaseBucket(bot), SHARED),
      ],
      subscribe: [
        `${anyHost}.cmd`,
        fleet.broadcast,
        fleet.hostStatus,
        `${natsInboxPrefix(bot, 'control')}.>`,
      ],
      allowResponses: true,
    },
    cluster: {
      publish: [
        ipc,
        jsInfo,
        ...kvSubjects(identifyBucket(bot), SHARED),
        ...kvSubjects(identifyWaitersBucket(bot), SHARED),
        ...kvSubjects(budgetBucket(bot), SHARED),
        ...kvSubjects(sessionBucket(bot), SHARED),
        ...kvSubjects(handoverBucket(bot), SHARED),
      ],
      subscribe: [ipc, handover.all, `${natsInboxPrefix(bot, 'cluster')}.>`],
      allowResponses: true,
    },
    operator: {
      publish: [fleet.master, fleet.hostStatus, jsInfo, ...kvSubjects(masterBucket(bot), { read: true })],
      subscribe: ['_INBOX.>'],
      allowResponses: false,
    },
  };
}

/**
 * The permissions of the CONTROL of host `hostId` alone (issue 13 h): it may announce, heartbeat
 * and publish events only on subjects naming its own host id, and receive only its own commands,
 * so one machine's credentials cannot speak for another (MASTER checks each message's `hostId`
 * against the subject). Leases stay shared: their keys are per shard, and MASTER moves shards
 * between hosts. Use one user per host instead of the shared `control` user.
 */
export function natsHostPermissions(bot: string, hostId: string): NatsRolePermissions {
  const fleet = fleetSubjects(bot);
  return {
    publish: [
      fleet.hostAnnounce(hostId),
      fleet.heartbeat(hostId),
      fleet.hostClusterFailed(hostId),
      fleet.hostFatal(hostId),
      '$JS.API.INFO',
      ...kvSubjects(leaseBucket(bot), SHARED),
    ],
    subscribe: [
      fleet.commands(hostId),
      fleet.broadcast,
      fleet.hostStatus,
      `${natsInboxPrefix(bot, 'control')}.>`,
    ],
    allowResponses: true,
  };
}

/** How a user authenticates: a password (plain or bcrypt, `nats server passwd`) or an nkey. */
export type NatsUserIdentity =
  { readonly user: string; readonly password: string } | { readonly nkey: string };

/**
 * A user of one role, for {@link renderNatsAuthorization}; a `control` user with `hostId` gets that
 * host's permissions only ({@link natsHostPermissions}).
 */
export type NatsRoleUser = NatsUserIdentity & { readonly role: NatsRole; readonly hostId?: string };

/** A user with permissions of its own (e.g. a monitoring tool), for {@link renderNatsAuthorization}. */
export type NatsCustomUser = NatsUserIdentity & {
  readonly comment: string;
  readonly permissions: NatsRolePermissions;
};

const quote = (text: string): string => JSON.stringify(text);

/** The permissions block of one role, in nats-server configuration syntax. */
export function renderNatsPermissions(permissions: NatsRolePermissions, indent = ''): string {
  const list = (items: readonly string[]) => items.map((item) => `${indent}    ${quote(item)}`).join('\n');
  return [
    `${indent}permissions: {`,
    `${indent}  publish: { allow: [`,
    list(permissions.publish),
    `${indent}  ] }`,
    `${indent}  subscribe: { allow: [`,
    list(permissions.subscribe),
    `${indent}  ] }`,
    ...(permissions.allowResponses ? [`${indent}  allow_responses: true`] : []),
    `${indent}}`,
  ].join('\n');
}

/**
 * An `authorization { users = [...] }` block for nats-server: one entry per user, with the
 * permissions of its role for bot `bot` (or its own). Several bots on one NATS: one user per role
 * and bot.
 */
export function renderNatsAuthorization(
  bot: string,
  users: ReadonlyArray<NatsRoleUser | NatsCustomUser>,
): string {
  const permissions = natsPermissions(bot);
  const entries = users.map((entry) => {
    const identity =
      'nkey' in entry
        ? [`      nkey: ${quote(entry.nkey)}`]
        : [`      user: ${quote(entry.user)}`, `      password: ${quote(entry.password)}`];
    const [comment, rights] = !('role' in entry)
      ? [entry.comment, entry.permissions]
      : entry.role === 'control' && entry.hostId !== undefined
        ? [`control of host ${entry.hostId}`, natsHostPermissions(bot, entry.hostId)]
        : [entry.role, permissions[entry.role]];
    return [`    # ${comment}`, '    {', ...identity, renderNatsPermissions(rights, '      '), '    }'].join(
      '\n',
    );
  });
  return ['authorization: {', '  users: [', entries.join('\n'), '  ]', '}', ''].join('\n');
}
