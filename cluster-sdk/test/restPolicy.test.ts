/**
 * Issue 15: the pure parts of `cluster.rest`'s fleet limits, checked against a model of Discord's
 * limits under many random schedules (processes, latencies, request counts).
 */
import { seededRandom } from 'discluster-testing';
import type { RestRouteRecord } from 'discluster-protocol';
import { describe, expect, it } from 'vitest';
import {
  chooseGlobalSlot,
  decideRoute,
  invalidRequestVerdict,
  isInvalidRequest,
  mergeRouteAnswer,
  readBucket,
  readRateLimited,
  restRouteOf,
} from '../src';

const headers = (values: Record<string, string>) => ({
  get: (name: string) => values[name.toLowerCase()] ?? null,
});

describe('restRouteOf', () => {
  const api = 'https://discord.com/api/v10';
  it('keys message creation per channel, whatever the message id', () => {
    const a = restRouteOf('POST', `${api}/channels/111111111111111111/messages`);
    const b = restRouteOf('post', `http://127.0.0.1:9/api/v10/channels/111111111111111111/messages`);
    expect(a).toMatchObject({
      template: 'POST /channels/:id/messages',
      major: '111111111111111111',
      globalExempt: false,
    });
    expect(b.routeHash).toBe(a.routeHash);
    const edit1 = restRouteOf('PATCH', `${api}/channels/1111111111111111/messages/2222222222222222`);
    const edit2 = restRouteOf('PATCH', `${api}/channels/1111111111111111/messages/3333333333333333`);
    expect(edit1.routeHash).toBe(edit2.routeHash);
    expect(edit1.routeHash).not.toBe(a.routeHash);
  });
  it('puts every emoji of a message in one reaction bucket', () => {
    const one = restRouteOf(
      'PUT',
      `${api}/channels/1111111111111111/messages/2222222222222222/reactions/%F0%9F%91%8D/@me`,
    );
    const two = restRouteOf(
      'PUT',
      `${api}/channels/1111111111111111/messages/2222222222222222/reactions/name:3333333333333333/@me`,
    );
    expect(one.template).toBe('PUT /channels/:id/messages/:id/reactions/:reaction');
    expect(two.routeHash).toBe(one.routeHash);
  });
  it('keys webhooks by id and token without putting the token in a key', () => {
    const route = restRouteOf('POST', `${api}/webhooks/4444444444444444/secret-token-value`);
    expect(route.template).toBe('POST /webhooks/:id/:token');
    expect(route.major).toBe('4444444444444444/secret-token-value');
    expect(route.majorKey).not.toContain('secret');
    expect(route.majorKey).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
  });
  it('exempts interaction callbacks from the global limit only', () => {
    expect(restRouteOf('POST', `${api}/interactions/5555555555555555/tok/callback`)).toMatchObject({
      template: 'POST /interactions/:id/:token/callback',
      globalExempt: true,
    });
    expect(restRouteOf('GET', `${api}/users/@me`)).toMatchObject({ major: 'global', globalExempt: false });
    expect(restRouteOf('GET', `${api}/guilds/6666666666666666/members/7777777777777777`)).toMatchObject({
      template: 'GET /guilds/:id/members/:id',
      major: '6666666666666666',
    });
  });
});

describe('rate-limit headers', () => {
  it('reads a bucket and ignores answers without one', () => {
    expect(
      readBucket(
        headers({
          'x-ratelimit-limit': '5',
          'x-ratelimit-remaining': '4',
          'x-ratelimit-reset-after': '4.999',
          'x-ratelimit-bucket': 'abc',
        }),
      ),
    ).toEqual({ bucket: 'abc', limit: 5, remaining: 4, resetAfterMs: 4999 });
    expect(readBucket(headers({}))).toBeNull();
    expect(
      readBucket(
        headers({ 'x-ratelimit-limit': 'x', 'x-ratelimit-remaining': '1', 'x-ratelimit-reset-after': '1' }),
      ),
    ).toBeNull();
  });
  it('counts 401, 403 and 429 as invalid, but not a shared-scope 429', () => {
    const shared = readRateLimited(429, headers({ 'retry-after': '2', 'x-ratelimit-scope': 'shared' }));
    const user = readRateLimited(429, headers({ 'retry-after': '2' }));
    expect(shared).toEqual({ retryAfterMs: 2000, global: false, scope: 'shared' });
    expect(isInvalidRequest(429, shared)).toBe(false);
    expect(isInvalidRequest(429, user)).toBe(true);
    expect(isInvalidRequest(401, null)).toBe(true);
    expect(isInvalidRequest(403, null)).toBe(true);
    expect(isInvalidRequest(404, null)).toBe(false);
  });
});

describe('chooseGlobalSlot', () => {
  it('never lets a 1-second interval hold more than the limit, and uses the limit at saturation', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const random = seededRandom(seed);
      const perSecond = 1 + Math.floor(random() * 60);
      const spacingMs = 1000 + Math.floor(random() * 60);
      const slots = Array.from({ length: perSecond }, (_, slot) => ({ slot, at: 0 }));
      const sent: number[] = [];
      // Processes at saturation: every millisecond some of them try to claim, in random order.
      for (let now = 1_000_000; now < 1_010_000; now++) {
        const tries = Math.floor(random() * 4);
        for (let t = 0; t < tries; t++) {
          const choice = chooseGlobalSlot(slots, now, spacingMs, random);
          if (choice.kind === 'wait') {
            expect(choice.until).toBeGreaterThan(now);
            break;
          }
          expect(choice.sendAt).toBe(now); // no lead: sent at once
          slots[choice.slot] = { slot: choice.slot, at: now };
          sent.push(now);
        }
      }
      for (let i = perSecond; i < sent.length; i++)
        expect(sent[i]! - sent[i - perSecond]!).toBeGreaterThanOrEqual(1000);
      const rate = sent.length / 10;
      expect(rate).toBeGreaterThanOrEqual(Math.floor((perSecond * 1000) / spacingMs) * 0.95);
    }
  });

  it('with a lead, claims ahead for a send when the slot frees: still never more than the limit in 1 s, and the claim delay no longer costs throughput', () => {
    let withLead = 0;
    let withoutLead = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const random = seededRandom(seed);
      const perSecond = 1 + Math.floor(random() * 60);
      const spacingMs = 1000 + Math.floor(random() * 60);
      // Each request is ready to send `delay` ms after its claim (route reservation, round trips).
      const delayMs = 5 + Math.floor(random() * 40);
      const run = (leadMs: number): number[] => {
        const slots = Array.from({ length: perSecond }, (_, slot) => ({ slot, at: 0 }));
        const sends: number[] = [];
        for (let now = 1_000_000; now < 1_020_000; now++) {
          for (let t = Math.floor(random() * 4); t > 0; t--) {
            const choice = chooseGlobalSlot(slots, now, spacingMs, random, leadMs);
            if (choice.kind === 'wait') {
              expect(choice.until).toBeGreaterThan(now);
              break;
            }
            expect(choice.sendAt).toBeGreaterThanOrEqual(now);
            expect(choice.sendAt - now).toBeLessThanOrEqual(leadMs);
            // Sent when ready and not before its time; a later send moves the slot's time (sentLate).
            const sentAt = Math.max(choice.sendAt, now + delayMs);
            slots[choice.slot] = { slot: choice.slot, at: sentAt };
            sends.push(sentAt);
          }
        }
        return sends.sort((a, b) => a - b);
      };
      const sends = run(delayMs);
      for (let i = perSecond; i < sends.length; i++)
        expect(sends[i]! - sends[i - perSecond]!).toBeGreaterThanOrEqual(1000);
      // Every slot used about once per spacing (a ms of tick granularity), the delay hidden.
      expect(sends.length).toBeGreaterThanOrEqual(perSecond * Math.floor(19_000 / (spacingMs + 2)));
      withLead += sends.length;
      withoutLead += run(0).length;
    }
    // Without the lead each slot's cycle is spacing + delay (the lead gets about 1 % more here).
    expect(withLead / withoutLead).toBeGreaterThan(1.005);
  });
});

/** Discord's per-route bucket: a fixed window that starts at its first request. */
class ModelBucket {
  private start = -Infinity;
  private used = 0;
  public rejected = 0;
  public constructor(
    private readonly limit: number,
    private readonly periodMs: number,
  ) {}
  public arrive(now: number): { ok: boolean; remaining: number; resetAfterMs: number } {
    if (now - this.start >= this.periodMs) {
      this.start = now;
      this.used = 0;
    }
    const ok = this.used < this.limit;
    if (ok) this.used++;
    else this.rejected++;
    return { ok, remaining: this.limit - this.used, resetAfterMs: this.start + this.periodMs - now };
  }
}

describe('decideRoute and mergeRouteAnswer', () => {
  const options = { offsetMs: 50, probeMs: 10_000, pollMs: 50 };

  it('a fleet sharing one record never meets a 429 on the bucket, and every request is sent', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const random = seededRandom(seed);
      const limit = 1 + Math.floor(random() * 6);
      const periodMs = 500 + Math.floor(random() * 5000);
      const maxLatency = Math.floor(random() * 40);
      const bucket = new ModelBucket(limit, periodMs);
      let record: RestRouteRecord | null = null;
      let pending = 20 + Math.floor(random() * 40);
      const total = pending;
      // Events: [time, kind, data], processed in time order (ties in random order).
      const events: Array<{ at: number; run: () => void }> = [];
      const schedule = (at: number, run: () => void): void => void events.push({ at, run });
      let sent = 0;
      const tryNext = (now: number): void => {
        if (pending === 0) return;
        const decision = decideRoute(record, now, options);
        if (decision.kind === 'wait') return schedule(decision.until, () => tryNext(decision.until));
        const probe = record === null || (record.limit === 0 && !record.unlimited);
        if (decision.next) record = decision.next;
        pending--;
        sent++;
        const arrival = now + Math.floor(random() * maxLatency);
        schedule(arrival, () => {
          const answer = bucket.arrive(arrival);
          const receipt = arrival + Math.floor(random() * maxLatency);
          schedule(receipt, () => {
            record = mergeRouteAnswer(
              record,
              {
                status: answer.ok ? 200 : 429,
                bucket: {
                  bucket: 'b',
                  limit,
                  remaining: answer.remaining,
                  resetAfterMs: answer.resetAfterMs,
                },
                rateLimited: answer.ok
                  ? null
                  : { retryAfterMs: answer.resetAfterMs, global: false, scope: 'user' },
                invalid: !answer.ok,
                probe,
              },
              receipt,
            );
            tryNext(receipt);
          });
        });
        // Several processes ask at once: try again in the same millisecond.
        if (random() < 0.7) schedule(now, () => tryNext(now));
      };
      for (let p = 0; p < 8; p++) schedule(Math.floor(random() * 100), () => tryNext(0));
      let guard = 0;
      while (events.length > 0 && guard++ < 1_000_000) {
        events.sort((a, b) => a.at - b.at);
        const next = events.shift()!;
        next.run();
      }
      expect({ seed, rejected: bucket.rejected }).toEqual({ seed, rejected: 0 });
      expect(sent).toBe(total);
    }
  });
});

describe('invalidRequestVerdict', () => {
  const severity = { allow: 0, delay: 1, refuse: 2 } as const;
  it('gets stricter, never looser, as the fleet count and a route’s failures grow', () => {
    for (let failures = 0; failures < 8; failures++) {
      let previous = 0;
      for (let count = 0; count <= 10_000; count += 50) {
        const now = severity[invalidRequestVerdict(count, 10_000, failures).kind];
        expect(now).toBeGreaterThanOrEqual(previous);
        previous = now;
        if (failures > 0)
          expect(now).toBeGreaterThanOrEqual(
            severity[invalidRequestVerdict(count, 10_000, failures - 1).kind],
          );
      }
    }
  });
  it('lets healthy routes through until 80% and refuses everything from there', () => {
    expect(invalidRequestVerdict(7_999, 10_000, 0).kind).toBe('allow');
    expect(invalidRequestVerdict(8_000, 10_000, 0).kind).toBe('refuse');
    expect(invalidRequestVerdict(5_000, 10_000, 1).kind).toBe('refuse');
    expect(invalidRequestVerdict(999, 10_000, 1).kind).toBe('allow');
  });
});
