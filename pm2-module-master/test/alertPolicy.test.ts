import { seededRandom } from 'discluster-testing';
import { describe, expect, it } from 'vitest';
import {
  AlertDeduper,
  DefaultBackoffPolicy,
  REDACTED,
  alertKey,
  askedWaitMs,
  backoffMs,
  heldAtFloor,
  hostTransitions,
  natsTransitions,
  redactSecrets,
  renderAlert,
  retryDecision,
  type FleetAlert,
} from '../src/alerts/alertPolicy';

/**
 * The alert policy (issue 17 §2) as properties over many generated cases, from a seeded generator
 * so a failure reproduces: what each event says, that no secret survives rendering, the retry
 * schedule, and deduplication (one message per key per window, nothing lost).
 */

const random = seededRandom(17);
const int = (max: number) => Math.floor(random() * max);
const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const word = (min: number, max: number) =>
  Array.from({ length: min + int(max - min + 1) }, () => pick([...B64])).join('');
/** A string shaped like a Discord bot token: id . timestamp . hmac. */
const tokenLike = () => `${word(24, 26)}.${word(6, 6)}.${word(27, 38)}`;
const prose = () =>
  Array.from({ length: 1 + int(8) }, () =>
    pick(['cluster', 'exited', 'with', 'code', '1:', 'Error', 'at', 'start', 'ECONNREFUSED', 'Bot']),
  ).join(' ');

function anyAlert(reason: string): FleetAlert {
  const hostId = pick(['alpha', 'beta', 'host-7']);
  switch (int(10)) {
    case 0:
      return { kind: 'cluster-failed', hostId, clusterId: int(50), attempts: 1 + int(5), reason };
    case 1:
      return { kind: 'fleet-stopped', reason, code: pick([4004, 4013, null]) };
    case 2:
      return { kind: 'host-lost', hostId, shards: int(100) };
    case 3:
      return { kind: 'host-back', hostId };
    case 4:
      return { kind: 'reshard-finished', reshardId: word(8, 12), from: 16, shardCount: 32 };
    case 5:
      return { kind: 'reshard-rolled-back', reshardId: word(8, 12), from: 16, to: 32, why: reason };
    case 6:
      return { kind: 'session-floor', shards: 1 + int(20), hosts: [hostId], reason };
    case 7:
      return { kind: 'nats-node-lost', urls: [`127.0.0.1:${4000 + int(999)}`], remaining: 2 };
    case 8:
      return {
        kind: 'shards-held',
        hostId,
        clusterId: int(50),
        shards: 1 + int(16),
        failedOn: ['alpha', hostId],
        why: reason,
      };
    default:
      return { kind: 'nats-node-back', urls: [`127.0.0.1:${4000 + int(999)}`], remaining: 3 };
  }
}

/** Every string anywhere in a value. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(strings);
  return [];
}

describe('alert text', () => {
  it('renders every alert in Discord webhook format, within Discord’s limits', () => {
    for (let i = 0; i < 500; i++) {
      const alert = anyAlert(prose().repeat(1 + int(300)));
      const payload = renderAlert(alert, { bot: 'mybot', at: 1_790_000_000_000, count: 1, secrets: [] });
      expect(payload.username).toBe('Discluster');
      expect(payload.content).toMatch(/^\*\*\[mybot\] /);
      expect(payload.content.length).toBeLessThanOrEqual(2_000);
      expect(payload.embeds).toHaveLength(1);
      const [embed] = payload.embeds;
      expect(embed.title.length).toBeGreaterThan(0);
      expect(embed.title.length).toBeLessThanOrEqual(256);
      expect(embed.description.length).toBeLessThanOrEqual(4_096);
      expect(Number.isInteger(embed.color) && embed.color >= 0 && embed.color <= 0xffffff).toBe(true);
      expect(embed.timestamp).toBe(new Date(1_790_000_000_000).toISOString());
      expect(embed.fields.length).toBeLessThanOrEqual(25);
      for (const field of embed.fields) {
        expect(field.name.length).toBeGreaterThan(0);
        expect(field.value.length).toBeGreaterThan(0);
        expect(field.value.length).toBeLessThanOrEqual(1_024);
      }
      expect(embed.fields).toContainEqual({ name: 'Bot', value: 'mybot', inline: true });
    }
  });

  it('says what happened and where', () => {
    const render = (alert: FleetAlert) =>
      renderAlert(alert, { bot: 'b', at: 0, count: 1, secrets: [] }).embeds[0];
    expect(
      render({ kind: 'cluster-failed', hostId: 'alpha', clusterId: 3, attempts: 3, reason: 'exit 1' }),
    ).toMatchObject({
      title: 'Cluster 3 gave up on host alpha',
      fields: expect.arrayContaining([{ name: 'Reason', value: 'exit 1', inline: true }]),
    });
    expect(render({ kind: 'fleet-stopped', reason: 'closed with 4004', code: 4004 })).toMatchObject({
      title: 'Fleet stopped',
      fields: expect.arrayContaining([{ name: 'Close code', value: '4004', inline: true }]),
    });
    expect(render({ kind: 'host-lost', hostId: 'beta', shards: 12 }).title).toBe('Host beta lost');
    expect(render({ kind: 'host-back', hostId: 'beta' }).title).toBe('Host beta back');
    expect(render({ kind: 'reshard-finished', reshardId: 'r1', from: 16, shardCount: 32 }).title).toBe(
      'Reshard finished: 32 shards',
    );
    expect(
      render({ kind: 'reshard-rolled-back', reshardId: 'r1', from: 16, to: 32, why: 'host lost' }).title,
    ).toBe('Reshard to 32 shards rolled back');
    expect(render({ kind: 'session-floor', shards: 4, hosts: ['a'], reason: 'x' }).title).toBe(
      '4 shards held at the session-start floor',
    );
    expect(render({ kind: 'nats-node-lost', urls: ['10.0.0.3:4222'], remaining: 2 }).title).toBe(
      'NATS cluster lost a node',
    );
    expect(
      render({
        kind: 'shards-held',
        hostId: 'beta',
        clusterId: 3,
        shards: 2,
        failedOn: ['alpha', 'beta'],
        why: 'it gave up on alpha, then on beta',
      }),
    ).toMatchObject({
      title: '2 shards of cluster 3 held down',
      description: expect.stringContaining('gave up on alpha, then on beta'),
      fields: expect.arrayContaining([{ name: 'Host', value: 'beta', inline: true }]),
    });
  });

  it('shows the count when it stands for repeats', () => {
    const alert: FleetAlert = { kind: 'host-lost', hostId: 'a', shards: 0 };
    const once = renderAlert(alert, { bot: 'b', at: 0, count: 1, secrets: [] });
    const many = renderAlert(alert, { bot: 'b', at: 0, count: 7, secrets: [] });
    expect(once.embeds[0].fields.some((field) => field.name === 'Count')).toBe(false);
    expect(many.embeds[0].fields).toContainEqual({ name: 'Count', value: '7', inline: true });
    expect(many.content).toContain('7 times');
  });
});

describe('redaction (promise 4)', () => {
  it('no known secret and no token-shaped string survives in any part of any alert', () => {
    for (let i = 0; i < 500; i++) {
      const token = tokenLike();
      const natsPass = word(8, 20);
      const stranger = tokenLike(); // another bot's token: not known, but token-shaped
      const reason = [prose(), token, prose(), `Bot ${stranger}`, natsPass, prose()]
        .sort(() => random() - 0.5)
        .join(pick([' ', '', '\n', ': ', '"']));
      const payload = renderAlert(anyAlert(reason), {
        bot: 'mybot',
        at: 0,
        count: 1 + int(3),
        secrets: [token, natsPass],
      });
      const all = strings(payload).join('\n');
      expect(all).not.toContain(token);
      expect(all).not.toContain(natsPass);
      expect(all).not.toContain(stranger);
      for (const part of [token, stranger])
        for (const piece of part.split('.')) {
          // No third of a token is left to piece it together from (the id part alone is public).
          if (piece.length > 20) expect(all.includes(`${piece}.`) || all.includes(`.${piece}`)).toBe(false);
        }
    }
  });

  it('keeps ordinary text, and marks where a secret was', () => {
    expect(redactSecrets('exit code 1 at start', ['secret-token'])).toBe('exit code 1 at start');
    expect(redactSecrets('login with secret-token failed', ['secret-token'])).toBe(
      `login with ${REDACTED} failed`,
    );
    // A "secret" too short to be one is not matched inside ordinary words.
    expect(redactSecrets('a cluster', ['a'])).toBe('a cluster');
  });
});

describe('retries', () => {
  const policy = DefaultBackoffPolicy;

  it('backs off exponentially from baseMs, never above maxMs', () => {
    let previous = 0;
    for (let attempt = 1; attempt <= 60; attempt++) {
      const wait = backoffMs(attempt, policy);
      expect(wait).toBeGreaterThanOrEqual(previous);
      expect(wait).toBeLessThanOrEqual(policy.maxMs);
      if (attempt === 1) expect(wait).toBe(policy.baseMs);
      if (wait < policy.maxMs && attempt > 1) expect(wait).toBe(2 * previous);
      previous = wait;
    }
    for (let i = 0; i < 200; i++) {
      const custom = { ...policy, baseMs: 1 + int(5_000), maxMs: 1 + int(100_000) };
      for (let attempt = 1; attempt < 40; attempt++)
        expect(backoffMs(attempt, custom)).toBe(Math.min(custom.maxMs, custom.baseMs * 2 ** (attempt - 1)));
    }
  });

  it('honours 429 retry_after (body, seconds) and Retry-After (header, seconds or a date), capped', () => {
    for (let i = 0; i < 300; i++) {
      const seconds = int(100_000) / 1000;
      const decision = retryDecision(
        {
          status: 429,
          retryAfter: null,
          body: { message: 'rate limited', retry_after: seconds, global: false },
        },
        1,
        policy,
        0,
      );
      expect(decision).toEqual({
        retry: true,
        waitMs: Math.min(policy.maxRetryAfterMs, Math.ceil(seconds * 1000)),
      });
    }
    expect(askedWaitMs({ status: 429, retryAfter: '3', body: null }, 0)).toBe(3_000);
    expect(askedWaitMs({ status: 429, retryAfter: 'Thu, 01 Jan 1970 00:00:10 GMT', body: null }, 4_000)).toBe(
      6_000,
    );
    expect(askedWaitMs({ status: 429, retryAfter: 'soon', body: 'not json' }, 0)).toBeNull();
    // Asked nothing: exponential backoff.
    expect(retryDecision({ status: 429, retryAfter: null, body: null }, 3, policy, 0)).toEqual({
      retry: true,
      waitMs: backoffMs(3, policy),
    });
    expect(retryDecision({ status: 429, retryAfter: '99999', body: null }, 1, policy, 0)).toEqual({
      retry: true,
      waitMs: policy.maxRetryAfterMs,
    });
  });

  it('retries 5xx, 408 and no answer; gives up on other 4xx and after maxAttempts', () => {
    for (let i = 0; i < 300; i++) {
      const attempt = 1 + int(policy.maxAttempts - 1);
      const status = pick([500, 502, 503, 504, 408]);
      expect(retryDecision({ status, retryAfter: null, body: null }, attempt, policy, 0)).toMatchObject({
        retry: true,
      });
      expect(retryDecision(null, attempt, policy, 0)).toEqual({
        retry: true,
        waitMs: backoffMs(attempt, policy),
      });
      const client = pick([400, 401, 403, 404, 405, 413]);
      expect(retryDecision({ status: client, retryAfter: null, body: null }, attempt, policy, 0).retry).toBe(
        false,
      );
      expect(
        retryDecision(pick([null, { status, retryAfter: null, body: null }]), policy.maxAttempts, policy, 0),
      ).toEqual({
        retry: false,
        why: `gave up after ${policy.maxAttempts} attempts`,
      });
    }
  });
});

describe('deduplication', () => {
  it('sends each key once per window and reports every repeat exactly once, with its count', () => {
    for (let round = 0; round < 50; round++) {
      const windowMs = 100 + int(10_000);
      const deduper = new AlertDeduper<number>(windowMs);
      const keys = ['a', 'b', 'c'].slice(0, 1 + int(3));
      let now = 0;
      const offered = new Map<string, number>();
      const reported = new Map<string, number>();
      const sentAt = new Map<string, number[]>();
      const note = (key: string, count: number) => {
        reported.set(key, (reported.get(key) ?? 0) + count);
        sentAt.set(key, [...(sentAt.get(key) ?? []), now]);
      };
      for (let step = 0; step < 300; step++) {
        now += int(windowMs / 3);
        for (const due of deduper.takeDue(now)) note(due.key, due.count);
        const key = pick(keys);
        offered.set(key, (offered.get(key) ?? 0) + 1);
        if (deduper.offer(key, step, now) === 'send') note(key, 1);
      }
      // The windows run out: the held repeats come out once, then the keys are forgotten.
      for (let i = 0; i < 3; i++) {
        now += windowMs;
        for (const due of deduper.takeDue(now)) note(due.key, due.count);
      }
      // Nothing is lost: every occurrence was sent or counted into a later message.
      expect(Object.fromEntries(reported)).toEqual(Object.fromEntries(offered));
      // At most one message per key per window (the flush after the end included).
      for (const times of sentAt.values())
        for (let i = 1; i < times.length; i++)
          expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(windowMs);
      expect(deduper.nextDueAt()).toBeNull();
      expect(deduper.size).toBe(0);
    }
  });

  it('keys name the thing, not the wording', () => {
    const failed = (reason: string): FleetAlert => ({
      kind: 'cluster-failed',
      hostId: 'alpha',
      clusterId: 2,
      attempts: 3,
      reason,
    });
    expect(alertKey(failed('one'))).toBe(alertKey(failed('two')));
    expect(alertKey({ kind: 'host-lost', hostId: 'a', shards: 1 })).not.toBe(
      alertKey({ kind: 'host-back', hostId: 'a' }),
    );
    expect(alertKey({ kind: 'nats-node-lost', urls: ['b', 'a'], remaining: 1 })).toBe(
      alertKey({ kind: 'nats-node-lost', urls: ['a', 'b'], remaining: 2 }),
    );
  });
});

describe('what the watch looks for', () => {
  it('host transitions: lost once when it goes, back once when it returns', () => {
    for (let round = 0; round < 100; round++) {
      const hosts = ['a', 'b', 'c', 'd'];
      const wasLost = new Set<string>();
      let truth = new Map(hosts.map((id) => [id, false]));
      const alerts: string[] = [];
      for (let step = 0; step < 50; step++) {
        truth = new Map(hosts.map((id) => [id, random() < 0.3 ? !truth.get(id) : truth.get(id)!]));
        const { lost, back } = hostTransitions(wasLost, truth);
        for (const id of lost) {
          expect(wasLost.has(id)).toBe(false);
          wasLost.add(id);
          alerts.push(`lost:${id}`);
        }
        for (const id of back) {
          expect(wasLost.has(id)).toBe(true);
          wasLost.delete(id);
          alerts.push(`back:${id}`);
        }
        expect([...wasLost].sort()).toEqual(hosts.filter((id) => truth.get(id)));
      }
      // Per host, lost and back alternate, starting with lost.
      for (const id of hosts) {
        const mine = alerts.filter((alert) => alert.endsWith(`:${id}`)).map((alert) => alert.split(':')[0]);
        mine.forEach((kind, i) => expect(kind).toBe(i % 2 === 0 ? 'lost' : 'back'));
      }
    }
  });

  it('finds shards held at the session-start floor by the SDK’s reason, and nothing else', () => {
    const shard = (id: number, state: string, waitingReason: string | null) => ({
      id,
      state: state as 'waiting',
      ping: 0,
      guilds: 0,
      events: 0,
      waitingReason,
      lastCloseCode: null,
    });
    const floor = 'session_start_limit.remaining 10 is at the safety floor 10; resets in 3h 2m';
    const host = (hostId: string, shards: ReturnType<typeof shard>[]) => ({
      hostId,
      clusters: [{ clusterId: 0, state: 'online' as const, restarts: 0, shardIds: [], shards }],
    });
    expect(
      heldAtFloor([
        host('b', [shard(0, 'waiting', floor), shard(1, 'waiting', 'rate limit'), shard(2, 'ready', null)]),
        host('a', [shard(3, 'waiting', floor)]),
        host('c', [shard(4, 'identifying', null)]),
      ]),
    ).toEqual({ shards: 2, hosts: ['a', 'b'], reason: floor });
    expect(heldAtFloor([host('a', [shard(0, 'waiting', 'session_start_limit is unknown')])])).toBeNull();
    expect(heldAtFloor([])).toBeNull();
  });

  it('NATS transitions: a URL no longer advertised is lost once, back once when advertised again', () => {
    const known = new Set(['n1', 'n2', 'n3']);
    const gone = new Set<string>();
    expect(natsTransitions(known, gone, ['n1', 'n2', 'n3'])).toEqual({ lost: [], back: [] });
    expect(natsTransitions(known, gone, ['n1', 'n3'])).toEqual({ lost: ['n2'], back: [] });
    gone.add('n2');
    expect(natsTransitions(known, gone, ['n1', 'n3'])).toEqual({ lost: [], back: [] });
    expect(natsTransitions(known, gone, ['n3', 'n2', 'n1'])).toEqual({ lost: [], back: ['n2'] });
  });
});
