import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { deadlineSignal, linkSignals } from '../src/abortSignals';

/**
 * deadlineSignal against a receiver that never answers, with garbage collections forced while the
 * request waits: `AbortSignal.any([AbortSignal.timeout(ms), ...])` on Node 20 loses its timeout
 * to the first collection and the fetch hangs for good (MASTER's webhook sender did, in a busy CI
 * run); this one must abort at its deadline.
 */

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const servers: http.Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function silentReceiver(): Promise<string> {
  const server = http.createServer(() => {
    // Never answers.
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
}

/** Settles like `promise`, or rejects with 'still waiting' after `ms` (a liveness bound). */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('still waiting')), ms)),
  ]);
}

describe('deadlineSignal', () => {
  it('aborts a fetch to a silent receiver at its deadline, though collections run meanwhile', async () => {
    const url = await silentReceiver();
    const closing = new AbortController();
    const collecting = setInterval(collectGarbage, 20);
    try {
      for (let round = 0; round < 3; round++) {
        const deadline = deadlineSignal(300, [closing.signal]);
        const started = Date.now();
        const outcome = await within(
          fetch(url, { method: 'POST', body: '{}', signal: deadline.signal }).then(
            () => 'answered',
            (error: unknown) => error,
          ),
          // Generous: the deadline is 0.3 s; a lost timeout never ends at all.
          20_000,
        );
        deadline.dispose();
        expect(outcome).toMatchObject({ name: 'TimeoutError' });
        expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      }
    } finally {
      clearInterval(collecting);
    }
  });

  it('aborts with a linked signal’s reason as soon as it aborts', () => {
    const closing = new AbortController();
    const deadline = deadlineSignal(60_000, [new AbortController().signal, closing.signal]);
    expect(deadline.signal.aborted).toBe(false);
    closing.abort(new Error('closing'));
    expect(deadline.signal.aborted).toBe(true);
    expect((deadline.signal.reason as Error).message).toBe('closing');
  });

  it('is aborted from the start when a linked signal already is', () => {
    const deadline = deadlineSignal(60_000, [AbortSignal.abort('gone')]);
    expect(deadline.signal.aborted).toBe(true);
    expect(deadline.signal.reason).toBe('gone');
  });

  it('after dispose() neither the deadline nor a linked signal aborts it', async () => {
    const closing = new AbortController();
    const deadline = deadlineSignal(50, [closing.signal]);
    deadline.dispose();
    closing.abort();
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(deadline.signal.aborted).toBe(false);
  });
});

describe('linkSignals', () => {
  it('follows any source until disposed', () => {
    const a = new AbortController();
    const b = new AbortController();
    const linked = linkSignals([a.signal, b.signal]);
    b.abort('b');
    expect(linked.signal.aborted).toBe(true);
    expect(linked.signal.reason).toBe('b');

    const c = new AbortController();
    const detached = linkSignals([c.signal]);
    detached.dispose();
    c.abort();
    expect(detached.signal.aborted).toBe(false);
  });
});
