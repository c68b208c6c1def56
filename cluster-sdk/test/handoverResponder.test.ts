import type { GatewayDispatchPayload } from 'discord-api-types/v10';
import { HandoverReplySchema, handoverSubjects } from 'discluster-protocol';
import { startNatsServer, type NatsServerHandle } from 'discluster-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HandoverGate } from '../src/handover/HandoverGate';
import { HandoverResponder } from '../src/handover/HandoverResponder';
import { Cleanup, connectNats, uniqueBot } from './helpers';

let server: NatsServerHandle;
const cleanup = new Cleanup();

beforeAll(async () => {
  server = await startNatsServer({ jetstream: true });
});

afterAll(async () => {
  await cleanup.run();
  await server?.stop();
});

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const message = (id: number): GatewayDispatchPayload =>
  ({ op: 0, t: 'MESSAGE_CREATE', s: id, d: { id: String(id) } }) as unknown as GatewayDispatchPayload;

/** Two clusters of one bot (an old one and a new one) answering handover steps over real NATS. */
async function pair() {
  const bot = uniqueBot('handover');
  const nc = await connectNats(server.url, 'handover-test');
  cleanup.add(() => nc.close());
  const delivered: Array<[cluster: number, id: string]> = [];
  const make = (clusterId: number, standby: boolean) => {
    const gate = new HandoverGate((packet) => delivered.push([clusterId, (packet.d as { id: string }).id]), {
      standby,
    });
    const responder = new HandoverResponder(nc, bot, clusterId, gate, () => undefined);
    responder.start();
    cleanup.add(() => {
      responder.close();
      gate.close();
    });
    return gate;
  };
  const ask = async (clusterId: number, body: unknown) => {
    const raw = typeof body === 'string' ? body : JSON.stringify(body);
    const reply = await nc.request(handoverSubjects(bot).cluster(clusterId), encoder.encode(raw), {
      timeout: 5000,
    });
    return HandoverReplySchema.parse(JSON.parse(decoder.decode(reply.data)));
  };
  return { old: make(0, false), next: make(1, true), ask, delivered };
}

describe('HandoverResponder over NATS', () => {
  it('runs record → buffer → cutover → go-live: the delivered keys travel through KV, each event once', async () => {
    const { old, next, ask, delivered } = await pair();
    expect(await ask(0, { v: 1, reshardId: 'r1', step: 'record' })).toMatchObject({ ok: true });
    expect(await ask(1, { v: 1, reshardId: 'r1', step: 'buffer' })).toMatchObject({ ok: true });
    old.offer(message(1), 0, false); // both see 1; the old one delivers it
    next.offer(message(1), 0, false);
    next.offer(message(2), 0, false); // 2 reaches the new one first...
    expect(await ask(0, { v: 1, reshardId: 'r1', step: 'cutover' })).toMatchObject({ ok: true, events: 1 });
    old.offer(message(2), 0, false); // ...and the old one after its cutover: dropped there
    const live = await ask(1, { v: 1, reshardId: 'r1', step: 'go-live', oldClusterIds: [0] });
    expect(live).toMatchObject({ ok: true, events: 1, duplicates: 1 });
    next.offer(message(3), 0, false);
    expect(delivered).toEqual([
      [0, '1'],
      [1, '2'],
      [1, '3'],
    ]);
    // Idempotent: a MASTER that took over repeats the steps; nothing is delivered again.
    expect(await ask(0, { v: 1, reshardId: 'r1', step: 'cutover' })).toMatchObject({ ok: true, events: 1 });
    expect(await ask(1, { v: 1, reshardId: 'r1', step: 'go-live', oldClusterIds: [0] })).toMatchObject({
      ok: true,
      events: 0,
    });
    expect(delivered).toHaveLength(3);
  });

  it('answers malformed, wrongly typed, oversized and out-of-order requests with an error and changes nothing', async () => {
    const { old, next, ask } = await pair();
    const junk: unknown[] = [
      'not json',
      '{"v":1',
      { v: 2, reshardId: 'r1', step: 'record' },
      { v: 1, reshardId: 'bad id with spaces', step: 'record' },
      { v: 1, reshardId: 'r1', step: 'explode' },
      { v: 1, reshardId: 'r1', step: 'go-live', oldClusterIds: 'all' },
      { v: 1, reshardId: 'r1', step: 'go-live', oldClusterIds: [-1] },
      { v: 1, reshardId: 'r1'.repeat(100), step: 'cutover' },
      'x'.repeat(500_000),
    ];
    for (const body of junk) {
      const reply = await ask(0, body);
      expect(reply.ok, JSON.stringify(body).slice(0, 80)).toBe(false);
      if (!reply.ok) expect(reply.error.code).toBe('DISCLUSTER_ERR_INVALID_MESSAGE');
    }
    expect(old.mode).toBe('serving');
    // go-live before the old generation cut over: refused (its keys are missing), still holding.
    expect(await ask(1, { v: 1, reshardId: 'r2', step: 'buffer' })).toMatchObject({ ok: true });
    next.offer(message(9), 0, false);
    const early = await ask(1, { v: 1, reshardId: 'r2', step: 'go-live', oldClusterIds: [0] });
    expect(early.ok).toBe(false);
    expect(next.mode).toBe('buffering');
    expect(next.heldCount).toBe(1);
  });
});
