import fs from 'node:fs';
import net from 'node:net';
import {
  connect,
  credsAuthenticator,
  type NatsConnection,
  type NodeConnectionOptions,
} from '@nats-io/transport-node';
import { type NatsAccess } from 'discluster-protocol/clusterControl';
import { natsInboxPrefix, type NatsSettings } from 'discluster-protocol/natsSecurity';

/**
 * Connecting a Discluster process to NATS (docs/nats-security.md): the plaintext warning, clear
 * errors for refused connections (naming the setting to fix), a connect loop that keeps retrying
 * instead of crash-looping, and the connection options every process builds from its settings.
 */

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

// ---- connection options -----------------------------------------------------------------------------

/** Who connects, and how it behaves when the server goes away. */
export interface NatsClientOptions {
  /** The connection's name in nats-server's monitoring, e.g. `discluster-control:<host>`. */
  readonly name: string;
  /** Where replies arrive: the role's own inboxes (`natsInboxPrefix`, docs/nats-security.md). */
  readonly inboxPrefix?: string;
  /**
   * `daemon`: never give up reconnecting (the client's default closes for good after ~10
   * attempts), wait for a server that is not up yet, and ping often, so a link that silently stops
   * forwarding (a partition) is replaced within seconds after the network heals, not minutes.
   * `once` (the CLI): one attempt, no reconnects.
   */
  readonly mode: 'daemon' | 'once';
  /** `daemon`: the wait between reconnect attempts. Default 1000 ms. */
  readonly reconnectTimeWaitMs?: number;
}

/** Token, user/password and creds, the same for every kind of settings. */
interface NatsIdentity {
  readonly token?: string | undefined;
  readonly user?: string | undefined;
  readonly pass?: string | undefined;
  readonly creds?: Uint8Array | undefined;
}

function withIdentity(options: NodeConnectionOptions, identity: NatsIdentity): NodeConnectionOptions {
  if (identity.token !== undefined) options.token = identity.token;
  if (identity.user !== undefined) options.user = identity.user;
  if (identity.pass !== undefined) options.pass = identity.pass;
  if (identity.creds !== undefined) options.authenticator = credsAuthenticator(identity.creds);
  return options;
}

/** NATS connection options from the `nats_*` settings of MASTER, CONTROL or the CLI (files by path). */
export function natsConnectOptions(settings: NatsSettings, client: NatsClientOptions): NodeConnectionOptions {
  const options: NodeConnectionOptions = {
    servers: [...settings.nats_url],
    name: client.name,
    noAsyncTraces: true,
    ...(client.inboxPrefix !== undefined ? { inboxPrefix: client.inboxPrefix } : {}),
    ...(client.mode === 'daemon'
      ? {
          maxReconnectAttempts: -1,
          waitOnFirstConnect: true,
          reconnectTimeWait: client.reconnectTimeWaitMs ?? 1_000,
          pingInterval: 5_000,
          maxPingOut: 2,
        }
      : { maxReconnectAttempts: 0, timeout: 5_000 }),
  };
  withIdentity(options, {
    token: settings.nats_token,
    user: settings.nats_user,
    pass: settings.nats_pass,
    creds: settings.nats_creds !== undefined ? fs.readFileSync(settings.nats_creds) : undefined,
  });
  if (natsRequiresTls(settings)) {
    // Set even without files (a tls:// URL alone): the client then refuses a server without TLS.
    options.tls = {
      ...(settings.nats_tls_ca ? { caFile: settings.nats_tls_ca } : {}),
      ...(settings.nats_tls_cert ? { certFile: settings.nats_tls_cert } : {}),
      ...(settings.nats_tls_key ? { keyFile: settings.nats_tls_key } : {}),
    };
  }
  return options;
}

/**
 * Connection options for the NATS access CONTROL sent a cluster with its assignment. Credentials
 * arrive as contents, not paths (the cluster may run as another user than CONTROL), so creds and
 * TLS material are passed to the client in memory and never touch the disk or the environment.
 * Replies arrive under the cluster role's inbox prefix of `bot`, the only inboxes the permission
 * template lets a cluster subscribe to (docs/nats-security.md).
 */
export function natsAccessOptions(access: NatsAccess, bot: string): NodeConnectionOptions {
  const base: NodeConnectionOptions = {
    servers: [...access.servers],
    inboxPrefix: natsInboxPrefix(bot, 'cluster'),
  };
  const options = withIdentity(base, {
    token: access.token,
    user: access.user,
    pass: access.pass,
    creds: access.creds !== undefined ? new TextEncoder().encode(access.creds) : undefined,
  });
  const tls = access.tls;
  // A tls:// server alone also makes TLS required: the client then refuses a server without it.
  if (tls !== undefined || access.servers.some((url) => /^(tls|wss):\/\//i.test(url))) {
    options.tls = {
      ...(tls?.ca !== undefined && { ca: tls.ca }),
      ...(tls?.cert !== undefined && { cert: tls.cert }),
      ...(tls?.key !== undefined && { key: tls.key }),
    };
  }
  return options;
}

/** Longest wait between two failed first-connect attempts. */
const MAX_CONNECT_RETRY_MS = 5_000;
/** One connect attempt; a server that rejects our client certificate after a TLS 1.3 handshake shows only as this timeout. */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * Connects a daemon (MASTER, CONTROL) to NATS: warns loudly if the traffic would be plaintext
 * across a network, and retries until the server accepts it. A refusal (wrong password, untrusted
 * CA, …) is logged as an error naming the setting to fix; the process never exits over it (pm2
 * would restart it into the same refusal, in a loop). Once connected, the client reconnects by
 * itself for ever. `maxDelayMs`: the longest wait between attempts (at most 5 s).
 */
export async function connectNatsDaemon(
  settings: NatsSettings,
  client: Omit<NatsClientOptions, 'mode'>,
  logger: NatsConnectLogger,
  maxDelayMs = MAX_CONNECT_RETRY_MS,
): Promise<NatsConnection> {
  const warning = plaintextNatsWarning(settings);
  if (warning) logger.warn({ nats: settings.nats_url.map(redactNatsUrl), plaintext: true }, warning);
  return connectNatsWithRetry({
    settings,
    logger,
    maxDelayMs: Math.min(maxDelayMs, MAX_CONNECT_RETRY_MS),
    // Our loop explains each failed first attempt; the client's own wait would retry silently.
    connect: async () =>
      connect({
        ...natsConnectOptions(settings, { ...client, mode: 'daemon' }),
        waitOnFirstConnect: false,
        timeout: CONNECT_TIMEOUT_MS,
      }),
  });
}
