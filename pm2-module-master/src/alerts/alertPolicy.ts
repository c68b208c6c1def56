import type { HostHeartbeat } from 'discluster-protocol';

/**
 * What MASTER alerts on (`alert_webhook_url`, issue 17 §2) and how, as pure functions: which event
 * becomes which alert text and fields, the key that deduplicates it, the retry schedule, and the
 * redaction every alert passes through (promise 4: the bot token never appears in an alert).
 * The sending itself (queue, HTTP, timers) is {@link WebhookAlertSender}; the watching of the fleet
 * is {@link AlertWatch}.
 */

/** One thing that happened to the fleet, worth waking someone for. */
export type FleetAlert =
  | {
      readonly kind: 'cluster-failed';
      readonly hostId: string;
      readonly clusterId: number;
      readonly attempts: number;
      readonly reason: string;
    }
  | {
      /** A failed cluster's shards stay down: it gave up after a move, or `failed_cluster_action` is hold. */
      readonly kind: 'shards-held';
      readonly hostId: string;
      readonly clusterId: number;
      readonly shards: number;
      /** Every host it gave up on, in order. */
      readonly failedOn: readonly string[];
      readonly why: string;
    }
  | { readonly kind: 'fleet-stopped'; readonly reason: string; readonly code: number | null }
  | { readonly kind: 'host-lost'; readonly hostId: string; readonly shards: number }
  | { readonly kind: 'host-back'; readonly hostId: string }
  | {
      readonly kind: 'reshard-finished';
      readonly reshardId: string;
      readonly from: number;
      readonly shardCount: number;
    }
  | {
      readonly kind: 'reshard-rolled-back';
      readonly reshardId: string;
      readonly from: number;
      readonly to: number;
      readonly why: string;
    }
  | {
      readonly kind: 'session-floor';
      readonly shards: number;
      readonly hosts: readonly string[];
      readonly reason: string;
    }
  | { readonly kind: 'nats-node-lost'; readonly urls: readonly string[]; readonly remaining: number }
  | { readonly kind: 'nats-node-back'; readonly urls: readonly string[]; readonly remaining: number };

export type FleetAlertKind = FleetAlert['kind'];

/** One field of a Discord embed. */
export interface WebhookField {
  readonly name: string;
  readonly value: string;
  readonly inline: boolean;
}

/** The JSON body of a Discord "execute webhook" request (what {@link WebhookAlertSender} POSTs). */
export interface WebhookPayload {
  readonly content: string;
  readonly username: 'Discluster';
  readonly embeds: readonly [
    {
      readonly title: string;
      readonly description: string;
      readonly color: number;
      readonly fields: readonly WebhookField[];
      /** ISO 8601, as Discord wants it. */
      readonly timestamp: string;
    },
  ];
}

/** Embed colours: red for an outage, orange for a risk, green for a recovery. */
export const AlertColor = {
  Outage: 0xe74c3c,
  Risk: 0xe67e22,
  Recovered: 0x2ecc71,
} as const;

/**
 * The key that deduplicates an alert: the same key within the window is sent once, with a count.
 * Keys name the thing (host, cluster, reshard, NATS servers), not the wording, so a reason that
 * changes from one failure to the next still counts as the same alert.
 */
export function alertKey(alert: FleetAlert): string {
  switch (alert.kind) {
    case 'cluster-failed':
      return `cluster-failed:${alert.hostId}:${alert.clusterId}`;
    case 'shards-held':
      return `shards-held:${alert.hostId}:${alert.clusterId}`;
    case 'fleet-stopped':
      return `fleet-stopped:${alert.code ?? 'none'}`;
    case 'host-lost':
    case 'host-back':
      return `${alert.kind}:${alert.hostId}`;
    case 'reshard-finished':
    case 'reshard-rolled-back':
      return `${alert.kind}:${alert.reshardId}`;
    case 'session-floor':
      return 'session-floor';
    case 'nats-node-lost':
    case 'nats-node-back':
      return `${alert.kind}:${[...alert.urls].sort().join(',')}`;
  }
}

/** Discord's limits (characters) on the parts of a webhook message. */
const LIMITS = { content: 2_000, title: 256, description: 4_096, fieldName: 256, fieldValue: 1_024 };

/** The text that replaces a secret. */
export const REDACTED = '[redacted]';

/**
 * Shorter secrets would match ordinary words; no real token or password is this short (the SDK's
 * redaction uses the same bound).
 */
const MIN_SECRET_LENGTH = 6;

/**
 * A Discord bot token's shape: three base64url parts (user id, timestamp, HMAC) joined by dots. A
 * string of that shape is redacted even when it is not this bot's token (another bot's, an old one).
 */
const TOKEN_SHAPE = /[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}/g;

/** `text` with every known secret and every token-shaped string replaced by {@link REDACTED}. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let result = text;
  // Longest first: a secret that contains another is replaced whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length))
    if (secret.length >= MIN_SECRET_LENGTH && result.includes(secret))
      result = result.split(secret).join(REDACTED);
  return result.replace(TOKEN_SHAPE, REDACTED);
}

/** Cuts `text` to `limit` characters, marking the cut. */
function clip(text: string, limit: number): string {
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`;
}

/** What {@link renderAlert} needs besides the alert. */
export interface AlertContext {
  /** The bot namespace (`bot`): several fleets may share one channel. */
  readonly bot: string;
  /** When it happened (ms since the epoch). */
  readonly at: number;
  /**
   * How many occurrences this message stands for: 1, or the repeats held back by deduplication
   * since the last message about the same thing (this one describes the latest of them).
   */
  readonly count: number;
  /** Known secrets (the bot token, NATS passwords and tokens): redacted wherever they appear. */
  readonly secrets: readonly string[];
}

interface AlertText {
  readonly title: string;
  readonly description: string;
  readonly color: number;
  readonly fields: readonly (readonly [name: string, value: string])[];
}

function describe(alert: FleetAlert, bot: string): AlertText {
  switch (alert.kind) {
    case 'cluster-failed':
      return {
        title: `Cluster ${alert.clusterId} gave up on host ${alert.hostId}`,
        description:
          `It failed to start ${alert.attempts} times in a row and its CONTROL does not restart it. ` +
          `Read \`pm2 logs discluster-${bot}-cluster-${alert.clusterId}\` on ${alert.hostId}.`,
        color: AlertColor.Outage,
        fields: [
          ['Host', alert.hostId],
          ['Cluster', String(alert.clusterId)],
          ['Attempts', String(alert.attempts)],
          ['Reason', alert.reason || '(none given)'],
        ],
      };
    case 'shards-held':
      return {
        title: `${alert.shards} shard${alert.shards === 1 ? '' : 's'} of cluster ${alert.clusterId} held down`,
        description:
          `Cluster ${alert.clusterId} gave up on ${alert.failedOn.join(', then on ')} and MASTER does not move it (again): ` +
          'its shards stay down until `discluster rebalance`, once the cause is fixed.',
        color: AlertColor.Outage,
        fields: [
          ['Host', alert.hostId],
          ['Cluster', String(alert.clusterId)],
          ['Shards', String(alert.shards)],
          ['Why', alert.why],
        ],
      };
    case 'fleet-stopped':
      return {
        title: 'Fleet stopped',
        description:
          'Every cluster is stopped and nothing restarts until `discluster restart`, once the cause is fixed.',
        color: AlertColor.Outage,
        fields: [
          ['Reason', alert.reason],
          ...(alert.code !== null ? ([['Close code', String(alert.code)]] as const) : []),
        ],
      };
    case 'host-lost':
      return {
        title: `Host ${alert.hostId} lost`,
        description:
          alert.shards > 0
            ? `No heartbeat within host_timeout_ms: its ${alert.shards} shards move to the hosts still online once their leases expire, resuming their sessions.`
            : 'No heartbeat within host_timeout_ms. It held no shards.',
        color: AlertColor.Outage,
        fields: [
          ['Host', alert.hostId],
          ['Shards', String(alert.shards)],
        ],
      };
    case 'host-back':
      return {
        title: `Host ${alert.hostId} back`,
        description: 'Its heartbeats arrive again.',
        color: AlertColor.Recovered,
        fields: [['Host', alert.hostId]],
      };
    case 'reshard-finished':
      return {
        title: `Reshard finished: ${alert.shardCount} shards`,
        description: 'The new generation serves; the old one closes.',
        color: AlertColor.Recovered,
        fields: [
          ['Reshard', alert.reshardId],
          ['Shards', `${alert.from} → ${alert.shardCount}`],
        ],
      };
    case 'reshard-rolled-back':
      return {
        title: `Reshard to ${alert.to} shards rolled back`,
        description: `The old generation (${alert.from} shards) keeps serving; \`discluster reshard\` starts it again.`,
        color: AlertColor.Risk,
        fields: [
          ['Reshard', alert.reshardId],
          ['Why', alert.why],
        ],
      };
    case 'session-floor':
      return {
        title: `${alert.shards} shard${alert.shards === 1 ? '' : 's'} held at the session-start floor`,
        description:
          "Discord's daily session_start_limit is at the safety floor: these shards do not IDENTIFY until it resets. " +
          'Shards that RESUME are not affected.',
        color: AlertColor.Risk,
        fields: [
          ['Hosts', alert.hosts.join(', ')],
          ['Why', alert.reason],
        ],
      };
    case 'nats-node-lost':
      return {
        title: 'NATS cluster lost a node',
        description:
          `The NATS cluster no longer advertises ${alert.urls.join(', ')}. ` +
          'Replicated KV buckets keep working while a majority of their replicas is up.',
        color: AlertColor.Risk,
        fields: [
          ['Gone', alert.urls.join(', ')],
          ['Still advertised', String(alert.remaining)],
        ],
      };
    case 'nats-node-back':
      return {
        title: 'NATS node back',
        description: `The NATS cluster advertises ${alert.urls.join(', ')} again.`,
        color: AlertColor.Recovered,
        fields: [
          ['Back', alert.urls.join(', ')],
          ['Advertised', String(alert.remaining)],
        ],
      };
  }
}

/**
 * The webhook body for `alert`: `content` is one line a phone notification shows, the embed has the
 * details. Every text is redacted and cut to Discord's limits.
 */
export function renderAlert(alert: FleetAlert, context: AlertContext): WebhookPayload {
  const clean = (text: string, limit: number) => clip(redactSecrets(text, context.secrets), limit);
  const text = describe(alert, context.bot);
  const repeats =
    context.count > 1 ? ` (${context.count} times since the last message about it; this is the latest)` : '';
  const fields: WebhookField[] = [
    ...text.fields.map(([name, value]) => ({
      name: clean(name, LIMITS.fieldName),
      value: clean(value || '-', LIMITS.fieldValue),
      inline: value.length <= 40,
    })),
    { name: 'Bot', value: clean(context.bot, LIMITS.fieldValue), inline: true },
    ...(context.count > 1 ? [{ name: 'Count', value: String(context.count), inline: true }] : []),
  ];
  return {
    content: clean(`**[${context.bot}] ${text.title}**${repeats}`, LIMITS.content),
    username: 'Discluster',
    embeds: [
      {
        title: clean(text.title, LIMITS.title),
        description: clean(text.description, LIMITS.description),
        color: text.color,
        fields,
        timestamp: new Date(context.at).toISOString(),
      },
    ],
  };
}

// ---- retries ------------------------------------------------------------------------------------------

/** The retry schedule of one alert. */
export interface BackoffPolicy {
  /** The first retry's wait. */
  readonly baseMs: number;
  /** No wait is longer than this (except a 429's own `retry_after`, up to `maxRetryAfterMs`). */
  readonly maxMs: number;
  /** Attempts in all (the first one included) before the alert is given up, with a log line. */
  readonly maxAttempts: number;
  /** A receiver asking for a longer wait than this is waited for this long. */
  readonly maxRetryAfterMs: number;
}

export const DefaultBackoffPolicy = {
  baseMs: 1_000,
  maxMs: 60_000,
  maxAttempts: 8,
  maxRetryAfterMs: 900_000,
} as const satisfies BackoffPolicy;

/** The wait before attempt `attempt + 1` after attempt `attempt` (1-based) failed: exponential, capped. */
export function backoffMs(attempt: number, policy: BackoffPolicy): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 52));
  return Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
}

/** What a receiver answered, as far as retrying goes. */
export interface WebhookAnswer {
  readonly status: number;
  /** The `Retry-After` header, if any (seconds, or an HTTP date). */
  readonly retryAfter: string | null;
  /** The body, if it was JSON (Discord's 429 carries `retry_after` in seconds, fractions allowed). */
  readonly body: unknown;
}

/** After a failed attempt: wait `waitMs`, then try again; or give up (the answer will not change). */
export type RetryDecision =
  { readonly retry: true; readonly waitMs: number } | { readonly retry: false; readonly why: string };

/** How long a receiver asks us to wait, in ms, or null if it does not say. */
export function askedWaitMs(answer: WebhookAnswer, now: number): number | null {
  const body = answer.body;
  if (typeof body === 'object' && body !== null && 'retry_after' in body) {
    const seconds = Number((body as { retry_after: unknown }).retry_after);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1000);
  }
  if (answer.retryAfter !== null) {
    const text = answer.retryAfter.trim();
    if (/^\d+(\.\d+)?$/.test(text)) return Math.ceil(Number(text) * 1000);
    const date = Date.parse(text);
    if (!Number.isNaN(date)) return Math.max(0, date - now);
  }
  return null;
}

/**
 * Whether and when to retry after attempt `attempt` got `answer` (null: no answer at all, a network
 * error or a timeout). 429 waits what the receiver asks; 408, 5xx and no answer back off; any
 * other 4xx will not change (a deleted webhook, a malformed URL) and is given up at once.
 */
export function retryDecision(
  answer: WebhookAnswer | null,
  attempt: number,
  policy: BackoffPolicy,
  now: number,
): RetryDecision {
  if (attempt >= policy.maxAttempts) return { retry: false, why: `gave up after ${attempt} attempts` };
  if (answer === null) return { retry: true, waitMs: backoffMs(attempt, policy) };
  const { status } = answer;
  if (status === 429 || status === 503) {
    const asked = askedWaitMs(answer, now);
    const waitMs = asked ?? backoffMs(attempt, policy);
    return { retry: true, waitMs: Math.min(policy.maxRetryAfterMs, waitMs) };
  }
  if (status === 408 || status >= 500) return { retry: true, waitMs: backoffMs(attempt, policy) };
  return { retry: false, why: `the webhook answered ${status}, which a retry would not change` };
}

// ---- deduplication ------------------------------------------------------------------------------------

interface Window<T> {
  /** When the window of this key ends (ms, the deduper's clock). */
  endsAt: number;
  /** Occurrences held back within it, and the latest of them. */
  held: number;
  latest: T | null;
}

/**
 * Deduplicates by key: the first occurrence of a key is sent at once and opens a window; repeats
 * within it are held back and counted; when the window ends with repeats held, the latest repeat
 * is sent once with their count (and opens a new window). A storm thus costs one message per key
 * per window, and nothing that happened goes unreported.
 */
export class AlertDeduper<T> {
  private readonly windows = new Map<string, Window<T>>();

  public constructor(private readonly windowMs: number) {}

  /** `send`: pass `item` on now; `held`: counted, to come out of {@link takeDue} with the others. */
  public offer(key: string, item: T, now: number): 'send' | 'held' {
    this.prune(now);
    const open = this.windows.get(key);
    if (open && now < open.endsAt) {
      open.held++;
      open.latest = item;
      return 'held';
    }
    this.windows.set(key, { endsAt: now + this.windowMs, held: 0, latest: null });
    return 'send';
  }

  /** The windows that ended with repeats held: the latest repeat of each and how many there were. */
  public takeDue(now: number): { key: string; item: T; count: number }[] {
    const due: { key: string; item: T; count: number }[] = [];
    for (const [key, window] of this.windows)
      if (now >= window.endsAt && window.held > 0 && window.latest !== null) {
        due.push({ key, item: window.latest, count: window.held });
        this.windows.set(key, { endsAt: now + this.windowMs, held: 0, latest: null });
      }
    this.prune(now);
    return due;
  }

  /** When the next window with repeats held ends, or null if none holds any. */
  public nextDueAt(): number | null {
    let next: number | null = null;
    for (const window of this.windows.values())
      if (window.held > 0 && (next === null || window.endsAt < next)) next = window.endsAt;
    return next;
  }

  /** How many keys have an open window (for tests: memory stays bounded by the keys in use). */
  public get size(): number {
    return this.windows.size;
  }

  private prune(now: number): void {
    for (const [key, window] of this.windows)
      if (now >= window.endsAt && window.held === 0) this.windows.delete(key);
  }
}

// ---- what the watch looks for -------------------------------------------------------------------------

/** Hosts that became lost and hosts that came back, given who was lost before and who is now. */
export function hostTransitions(
  wasLost: ReadonlySet<string>,
  isLost: ReadonlyMap<string, boolean>,
): { lost: string[]; back: string[] } {
  const lost: string[] = [];
  const back: string[] = [];
  for (const [hostId, nowLost] of isLost) {
    if (nowLost && !wasLost.has(hostId)) lost.push(hostId);
    if (!nowLost && wasLost.has(hostId)) back.push(hostId);
  }
  return { lost: lost.sort(), back: back.sort() };
}

/**
 * The SDK's wording of a shard held at the floor (cluster-sdk/src/identify/budgetPolicy.ts
 * `checkBudget`): `session_start_limit.remaining N is at the safety floor F; …`.
 */
const FLOOR_REASON = /session_start_limit\.remaining \d+ is at the safety floor/;

/** The shards the hosts report waiting at the session-start floor, where, and one of the reasons. */
export function heldAtFloor(
  hosts: readonly Pick<HostHeartbeat, 'hostId' | 'clusters'>[],
): { shards: number; hosts: string[]; reason: string } | null {
  let shards = 0;
  let reason = '';
  const where = new Set<string>();
  for (const host of hosts)
    for (const cluster of host.clusters)
      for (const shard of cluster.shards ?? [])
        if (
          shard.state === 'waiting' &&
          shard.waitingReason !== null &&
          FLOOR_REASON.test(shard.waitingReason)
        ) {
          shards++;
          where.add(host.hostId);
          reason ||= shard.waitingReason;
        }
  return shards === 0 ? null : { shards, hosts: [...where].sort(), reason };
}

/**
 * NATS servers that stopped being advertised and ones advertised again. `known` is every client
 * URL the cluster advertised while this MASTER watched (it only grows); `gone` those missing last
 * time. A server listening on several interfaces advertises several URLs: they go and come together.
 */
export function natsTransitions(
  known: ReadonlySet<string>,
  gone: ReadonlySet<string>,
  advertised: readonly string[],
): { lost: string[]; back: string[] } {
  const now = new Set(advertised);
  return {
    lost: [...known].filter((url) => !now.has(url) && !gone.has(url)).sort(),
    back: [...gone].filter((url) => now.has(url)).sort(),
  };
}
