// The REST rules as pure logic, with explicit clocks: what HTTP tests cannot reach in reasonable time
// (the 10-minute invalid-request window, bucket resets, the message cap).
import { describe, expect, it } from 'vitest';
import { RouteBuckets, bucketHash } from '../src/rest/buckets.js';
import { GlobalLimit } from '../src/rest/globalLimit.js';
import { INVALID_REQUEST_WINDOW_MS, InvalidRequests } from '../src/rest/invalidRequests.js';
import { MessageStore } from '../src/rest/messages.js';
import { matchRoute, noMajor, type RouteDef } from '../src/rest/router.js';
import { RestError } from '../src/rest/errors.js';

describe('RouteBuckets', () => {
  const spec = { id: 'test', limit: 2, periodMs: 1000 };

  it('counts per major parameter, refuses past the limit until the window ends', () => {
    const buckets = new RouteBuckets();
    expect(buckets.take(spec, 'a', 0).headers['x-ratelimit-remaining']).toBe('1');
    expect(buckets.take(spec, 'a', 100).headers['x-ratelimit-remaining']).toBe('0');
    const refused = buckets.take(spec, 'a', 400);
    expect(refused.retryAfterMs).toBe(600);
    expect(refused.headers['x-ratelimit-reset-after']).toBe('0.600');
    expect(refused.headers['x-ratelimit-reset']).toBe('1.000');
    expect(buckets.take(spec, 'b', 400).retryAfterMs).toBeNull();
    expect(buckets.take(spec, 'a', 1000).retryAfterMs).toBeNull();
  });

  it('one opaque hash per route group, the same for every major parameter', () => {
    const buckets = new RouteBuckets();
    expect(buckets.take(spec, 'a', 0).headers['x-ratelimit-bucket']).toBe(bucketHash('test'));
    expect(buckets.take(spec, 'b', 0).headers['x-ratelimit-bucket']).toBe(bucketHash('test'));
    expect(bucketHash('test')).not.toBe(bucketHash('other'));
  });
});

describe('GlobalLimit', () => {
  it('allows perSecond per key per one-second window', () => {
    const global = new GlobalLimit(2);
    expect(global.take('bot', 0).retryAfterMs).toBeNull();
    expect(global.take('bot', 10).retryAfterMs).toBeNull();
    expect(global.take('bot', 250).retryAfterMs).toBe(750);
    expect(global.take('ip:1', 250).retryAfterMs).toBeNull();
    expect(global.take('bot', 1000).retryAfterMs).toBeNull();
  });
});

describe('InvalidRequests', () => {
  it('bans an IP at the limit, for banMs, then counts afresh', () => {
    const invalid = new InvalidRequests(3, 5000);
    expect(invalid.record('a', 0)).toBe(false);
    expect(invalid.record('a', 1)).toBe(false);
    expect(invalid.bannedFor('a', 2)).toBeNull();
    expect(invalid.record('a', 2)).toBe(true);
    expect(invalid.bannedFor('a', 3)).toBe(4999);
    expect(invalid.bannedFor('b', 3)).toBeNull();
    expect(invalid.bannedFor('a', 5002)).toBeNull();
    expect(invalid.record('a', 5003)).toBe(false);
    expect(invalid.bans).toBe(1);
  });

  it('forgets invalid requests older than 10 minutes (sliding window)', () => {
    const invalid = new InvalidRequests(3, 5000);
    invalid.record('a', 0);
    invalid.record('a', 1000);
    // The first one has left the window; the second has not.
    expect(invalid.record('a', INVALID_REQUEST_WINDOW_MS + 500)).toBe(false);
    expect(invalid.record('a', INVALID_REQUEST_WINDOW_MS + 600)).toBe(true);
  });
});

describe('MessageStore', () => {
  const fields = {
    channel_id: '1',
    guild_id: null,
    content: 'x',
    message_reference: null,
    embeds: [],
    components: [],
    flags: 0,
    interaction_id: null,
    webhook_id: null,
  };

  it('keeps at most `limit` messages, dropping the oldest and its nonce', () => {
    const store = new MessageStore(2);
    const a = store.create({ ...fields, nonce: 'a' });
    store.create({ ...fields, nonce: 'b' });
    store.create({ ...fields, nonce: 'c' });
    expect(store.list().map((m) => m.nonce)).toEqual(['b', 'c']);
    expect(store.get(a.id)).toBeUndefined();
    expect(store.findByNonce('1', 'a')).toBeUndefined();
    expect(store.findByNonce('1', 'c')?.nonce).toBe('c');
  });
});

describe('matchRoute', () => {
  const route = (method: RouteDef['method']): RouteDef => ({
    method,
    path: /^\/things\/([^/]+)$/,
    bucket: null,
    major: noMajor,
    auth: true,
    interaction: false,
    body: false,
    handle: () => ({ status: 204 }),
  });

  it('finds the route, decodes parameters, and answers 404, 405 and 400 in Discord JSON', () => {
    const routes = [route('GET'), route('PATCH')];
    expect(matchRoute(routes, 'PATCH', '/things/%F0%9F%91%8D').params).toEqual(['👍']);
    const fail = (method: string, path: string): RestError => {
      try {
        matchRoute(routes, method, path);
      } catch (error) {
        return error as RestError;
      }
      throw new Error('matched');
    };
    expect(fail('GET', '/nothing')).toMatchObject({
      status: 404,
      body: { message: '404: Not Found', code: 0 },
    });
    expect(fail('DELETE', '/things/1')).toMatchObject({ status: 405, headers: { allow: 'GET, PATCH' } });
    expect(fail('GET', '/things/%E0%A4%A')).toMatchObject({ status: 400, body: { code: 0 } });
  });
});
