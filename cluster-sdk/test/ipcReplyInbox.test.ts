import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { connect } from '@nats-io/transport-node';
import { startNatsServer, type NatsServerHandle } from 'discluster-testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ReplyInbox, type ReplyOutcome } from '../src/ipc/ReplyInbox';
import { Cleanup, uniqueBot } from './helpers';

let server: NatsServerHandle;
const cleanup = new Cleanup();

beforeAll(async () => {
  server = await startNatsServer({ jetstream: false });
});
afterEach(async () => {
  await cleanup.run();
});
afterAll(async () => {
  await server?.stop();
});

async function connection(url = server.url, extra: object = {}): Promise<NatsConnection> {
  const nc = await connect({ servers: url, name: 'inbox', ...extra });
  cleanup.add(async () => {
    if (!nc.isClosed()) await nc.close();
  });
  return nc;
}

function ask(inbox: ReplyInbox, subject: string, data: string, timeoutMs: number): Promise<ReplyOutcome> {
  return new Promise((resolve) => inbox.request(subject, new TextEncoder().encode(data), timeoutMs, resolve));
}

describe('ReplyInbox (one reply subscription for every IPC request)', () => {
  it('matches replies that come back in any order to their requests, once each', async () => {
    const subject = `${uniqueBot('inbox')}.echo`;
    const responder = await connection();
    const held: Msg[] = [];
    const total = 200;
    responder.subscribe(subject, {
      callback: (_error, msg) => {
        held.push(msg);
        // Answer everything at once, last request first.
        if (held.length === total) for (const m of held.reverse()) m.respond(m.data);
      },
    });
    await responder.flush();
    const inbox = new ReplyInbox(await connection());
    const outcomes = await Promise.all(
      Array.from({ length: total }, (_, i) => ask(inbox, subject, `n${i}`, 30_000 + (i % 3) * 1000)),
    );
    outcomes.forEach((outcome, i) => {
      expect(outcome.kind).toBe('reply');
      expect(outcome.kind === 'reply' && outcome.msg.string()).toBe(`n${i}`);
    });
    expect(inbox.size).toBe(0);
  });

  it('reports no responders, and a timeout for a subscriber that never answers', async () => {
    const bot = uniqueBot('inbox');
    const silent = await connection();
    silent.subscribe(`${bot}.silent`, { callback: () => undefined });
    await silent.flush();
    const inbox = new ReplyInbox(await connection());
    expect((await ask(inbox, `${bot}.nobody`, 'x', 30_000)).kind).toBe('no-responders');
    expect((await ask(inbox, `${bot}.silent`, 'x', 50)).kind).toBe('timeout');
    expect(inbox.size).toBe(0);
  });

  it('fails waiting requests when the connection closes instead of leaving them to their timeout', async () => {
    const bot = uniqueBot('inbox');
    const silent = await connection();
    silent.subscribe(`${bot}.silent`, { callback: () => undefined });
    await silent.flush();
    const nc = await connection();
    const inbox = new ReplyInbox(nc);
    const waiting = ask(inbox, `${bot}.silent`, 'x', 600_000);
    await nc.flush();
    await nc.close();
    expect((await waiting).kind).toBe('failed');
    // And a request on the closed connection fails at once.
    expect((await ask(inbox, `${bot}.silent`, 'x', 600_000)).kind).toBe('failed');
  });

  it('fails a request the server refuses to forward (publish permission) instead of waiting for its timeout', async () => {
    const guarded = await startNatsServer({
      jetstream: false,
      config: `authorization { users: [ { user: a, password: b, permissions: { publish: { deny: ["forbidden.>"] } } } ] }`,
    });
    cleanup.add(() => guarded.stop());
    const nc = await connection(guarded.url, { user: 'a', pass: 'b' });
    const inbox = new ReplyInbox(nc);
    const outcome = await ask(inbox, 'forbidden.x', 'x', 600_000);
    expect(outcome.kind).toBe('failed');
    expect(inbox.size).toBe(0);
  });

  it("receives its replies under the connection's inbox prefix (a user allowed only its own inboxes)", async () => {
    const guarded = await startNatsServer({
      jetstream: false,
      config: `authorization { users: [
        { user: a, password: b, permissions: { publish: ["svc"], subscribe: ["_INBOX.discluster.x.cluster.>"] } },
        { user: s, password: t, permissions: { subscribe: ["svc"], allow_responses: true } } ] }`,
    });
    cleanup.add(() => guarded.stop());
    const responder = await connection(guarded.url, { user: 's', pass: 't' });
    responder.subscribe('svc', { callback: (_error, msg) => msg.respond(msg.data) });
    await responder.flush();
    const nc = await connection(guarded.url, {
      user: 'a',
      pass: 'b',
      inboxPrefix: '_INBOX.discluster.x.cluster',
    });
    const outcome = await ask(new ReplyInbox(nc), 'svc', 'hi', 600_000);
    expect(outcome.kind === 'reply' && outcome.msg.string()).toBe('hi');
  });
});
