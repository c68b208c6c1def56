import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DeadlineError,
  STALL_MS,
  fenceVerdict,
  keepaliveVerdict,
  keepaliveWithinMs,
  lateness,
  stallGraceMs,
  withDeadline,
} from '../src/leases/leaseStall';
import { leaseTimes } from '../src/leases/leaseTimes';

/**
 * The lease keeper's stall policy (leaseStall.ts). A CONTROL starved of CPU for 2-3 s woke with its
 * fence check and request timeouts due, ran them before reading the renewal replies waiting in its
 * socket, and fenced all its clusters although NATS had renewed every lease.
 */

const ttls = [1_000, 2_000, 3_000, 6_000, 10_000, 20_000, 30_000, 60_000, 600_000];
const clock = (): number => performance.now();

/** The event loop does nothing else for `ms`: what a CPU-starved process looks like to itself. */
function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy
  }
}

describe('fenceVerdict', () => {
  it('renewed inside the fence time: never fenced, stall or not', () => {
    for (const ttl of ttls) {
      const times = leaseTimes(ttl);
      for (let age = 0; age < times.fenceAfterMs; age += Math.max(1, Math.floor(times.fenceAfterMs / 37))) {
        for (const stallMs of [0, 1, 500, 3_000, 60_000])
          expect(fenceVerdict(1_000, 1_000 + age, times, stallMs)).toBe('renewed');
      }
    }
  });

  it('at or past the fence time: fenced without a stall; after one, the sockets are read first, then one fresh renewal inside the grace', () => {
    for (const ttl of ttls) {
      const times = leaseTimes(ttl);
      const grace = stallGraceMs(times);
      for (const age of [
        times.fenceAfterMs,
        times.fenceAfterMs + 1,
        times.fenceAfterMs + grace - 1,
        times.fenceAfterMs + grace,
        ttl - 1,
        ttl,
        10 * ttl,
      ]) {
        expect(fenceVerdict(1_000, 1_000 + age, times, 0)).toBe('fence');
        expect(fenceVerdict(1_000, 1_000 + age, times, 0, true)).toBe('fence');
        for (const stallMs of [1, STALL_MS, age, 10 * ttl]) {
          expect(fenceVerdict(1_000, 1_000 + age, times, stallMs)).toBe('drain');
          expect(fenceVerdict(1_000, 1_000 + age, times, stallMs, true)).toBe(
            age < times.fenceAfterMs + grace ? 'renew' : 'fence',
          );
        }
      }
    }
  });

  it('promise 2: dated by the send time of the last acknowledged renewal, a lease is fenced with 40 % of it left at least, stall or not', () => {
    for (const ttl of ttls) {
      const times = leaseTimes(ttl);
      expect(stallGraceMs(times)).toBeLessThanOrEqual(ttl / 10);
      for (const sentAt of [0, 123, 99_999]) {
        for (let now = sentAt; now < sentAt + 2 * ttl; now += Math.max(1, Math.floor(ttl / 53))) {
          const leaseLeft = sentAt + ttl - now;
          for (const [stallMs, drained] of [
            [0, false],
            [0, true],
            [500, false],
            [500, true],
            [60_000, true],
          ] as const) {
            const verdict = fenceVerdict(sentAt, now, times, stallMs, drained);
            // Not fenced yet: half the lease left (40 % while one fresh renewal is tried after a stall).
            if (verdict === 'renewed') expect(leaseLeft).toBeGreaterThan(ttl - times.fenceAfterMs);
            if (verdict === 'renew') expect(leaseLeft).toBeGreaterThanOrEqual(0.4 * ttl);
            // Without a stall, fenced the moment half of it is gone.
            if (stallMs === 0 && leaseLeft <= ttl - times.fenceAfterMs) expect(verdict).toBe('fence');
          }
        }
      }
    }
  });
});

describe('keepaliveVerdict', () => {
  it('vouches only for renewals sent within half the fence time: the cluster then fences with a quarter of the lease left', () => {
    for (const ttl of ttls) {
      const times = leaseTimes(ttl);
      const within = keepaliveWithinMs(times);
      expect(within).toBe(Math.floor(times.fenceAfterMs / 2));
      for (let age = 0; age <= ttl; age += Math.max(1, Math.floor(ttl / 41))) {
        const ok = keepaliveVerdict(5_000, 5_000 + age, times);
        expect(ok).toBe(age <= within);
        // A cluster that reads it now serves for the fence time: still well inside the lease.
        if (ok) expect(5_000 + ttl - (5_000 + age + times.fenceAfterMs)).toBeGreaterThanOrEqual(ttl / 4 - 1);
      }
    }
  });
});

describe('lateness', () => {
  it('is how late a timer fired, never negative', () => {
    expect(lateness(100, 90)).toBe(0);
    expect(lateness(100, 100)).toBe(0);
    expect(lateness(100, 2_600)).toBe(2_500);
  });
});

describe('withDeadline', () => {
  let server: Server | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    if (server) await new Promise((resolve) => server!.close(resolve));
    server = undefined;
  });

  /**
   * A client socket and an echo server, both in this process. `echoed` resolves right after the
   * server wrote its answer: the answer is then on its way, and the client reads it in a later poll.
   */
  async function echoPair(): Promise<{ client: Socket; echoed: () => Promise<void> }> {
    let wrote: () => void = () => undefined;
    server = createServer((socket) => {
      sockets.push(socket);
      socket.on('data', (data) => {
        socket.write(data);
        wrote();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    const client = connect(address.port, '127.0.0.1');
    sockets.push(client);
    await once(client, 'connect');
    return { client, echoed: () => new Promise<void>((resolve) => (wrote = resolve)) };
  }

  it('a reply that arrived during a stall counts, although the deadline passed meanwhile', async () => {
    const { client, echoed } = await echoPair();
    const reply = new Promise<string>((resolve) => client.once('data', (data) => resolve(String(data))));
    const answered = echoed();
    client.write('renew');
    await answered;
    // The answer is on its way (as NATS answers while CONTROL is starved); the loop stalls past
    // the deadline before reading it. A plain timeout would fire first and count it as failed.
    const result = withDeadline(reply, 100, clock);
    stall(400);
    await expect(result).resolves.toBe('renew');
  });

  it('no reply at all: a DeadlineError after the deadline (given once more after a stall)', async () => {
    const never = new Promise<string>(() => undefined);
    const startedAt = clock();
    await expect(withDeadline(never, 100, clock)).rejects.toBeInstanceOf(DeadlineError);
    expect(clock() - startedAt).toBeGreaterThanOrEqual(99);
    const stalled = withDeadline(never, 100, clock);
    const stalledAt = clock();
    stall(300);
    await expect(stalled).rejects.toBeInstanceOf(DeadlineError);
    // Waited 100 ms more after the stall rather than failing at once.
    expect(clock() - stalledAt).toBeGreaterThanOrEqual(399);
  });

  it('passes the work’s own result and error on', async () => {
    await expect(withDeadline(Promise.resolve(7), 100, clock)).resolves.toBe(7);
    await expect(withDeadline(Promise.reject(new Error('cas')), 100, clock)).rejects.toThrow('cas');
  });
});
