// The simulator referees identify timing by when its event loop reads an IDENTIFY. On a shared CPU
// it can read one late and see two IDENTIFYs closer than they arrived. Here it really is stopped
// (SIGSTOP) while the first IDENTIFY arrives: the second, sent a full window after the first, is
// read inside the window, and is let through as unjudged, not counted as a violation. Two
// IDENTIFYs sent back to back while it runs are still a violation.
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { startDiscordSimProcess, type DiscordSimProcess } from '../../testing/src/discordSimProcess.js';

const TOKEN = 'referee-lateness-token';
const WINDOW_MS = 2000;
const sims: DiscordSimProcess[] = [];
const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  for (const sim of sims.splice(0)) {
    process.kill(sim.process.pid, 'SIGCONT'); // never leave it stopped
    await sim.stop();
  }
});

interface Frame {
  op: number;
  t?: string | null;
}

/** A raw gateway connection that has had its HELLO. */
async function connect(gateway: string): Promise<{ socket: WebSocket; frames: Frame[] }> {
  const socket = new WebSocket(`${gateway}/?v=10&encoding=json`);
  sockets.push(socket);
  const frames: Frame[] = [];
  socket.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString()) as Frame));
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    const check = () => (frames.some((frame) => frame.op === 10) ? resolve() : setTimeout(check, 10));
    check();
  });
  return { socket, frames };
}

function identify(socket: WebSocket, shardId: number): void {
  socket.send(
    JSON.stringify({
      op: 2,
      d: {
        token: TOKEN,
        intents: 1,
        properties: { os: 'linux', browser: 'test', device: 'test' },
        shard: [shardId, 4],
      },
    }),
  );
}

/** Waits (liveness only) for READY or INVALID_SESSION on a connection. */
async function answerOf(frames: Frame[]): Promise<'ready' | 'invalid'> {
  for (let i = 0; i < 3000; i++) {
    if (frames.some((frame) => frame.t === 'READY')) return 'ready';
    if (frames.some((frame) => frame.op === 9)) return 'invalid';
    await sleep(10);
  }
  throw new Error('no answer to IDENTIFY within 30 s');
}

describe('the identify referee and its own lateness', () => {
  it('an IDENTIFY the simulator read late does not make the next one, sent a window later, a violation; back-to-back IDENTIFYs still are', async () => {
    const sim = await startDiscordSimProcess({
      token: TOKEN,
      guilds: 8,
      shards: 4,
      'max-concurrency': 1,
      'identify-window-ms': WINDOW_MS,
    });
    sims.push(sim);
    const [a, b, c, d] = [
      await connect(sim.gateway),
      await connect(sim.gateway),
      await connect(sim.gateway),
      await connect(sim.gateway),
    ];

    // A arrives while the simulator is stopped; it reads A about 1.5 s late.
    process.kill(sim.process.pid, 'SIGSTOP');
    const sentA = performance.now();
    identify(a!.socket, 0);
    await sleep(1500);
    process.kill(sim.process.pid, 'SIGCONT');
    // B leaves a full window (plus a margin) after A.
    await sleep(Math.max(0, sentA + WINDOW_MS + 100 - performance.now()));
    identify(b!.socket, 1);
    expect(await answerOf(a!.frames)).toBe('ready');
    expect(await answerOf(b!.frames)).toBe('ready');
    let state = await sim.state();
    expect(state['violations']).toMatchObject({ identifyRate: 0 });
    expect(state['identifiesUnjudged']).toBe(1);
    const records = (await (await fetch(`${sim.admin}/identifies`)).json()) as Array<{
      readLateMs: number;
      unjudged: boolean;
    }>;
    expect(records[0]!.readLateMs).toBeGreaterThanOrEqual(1000);
    expect(records[1]!.unjudged).toBe(true);

    // C and D back to back while it runs (after B's window): D is refused and counted.
    await sleep(WINDOW_MS + 100);
    identify(c!.socket, 2);
    identify(d!.socket, 3);
    expect(await answerOf(c!.frames)).toBe('ready');
    expect(await answerOf(d!.frames)).toBe('invalid');
    state = await sim.state();
    expect(state['violations']).toMatchObject({ identifyRate: 1 });
    expect(state['identifiesUnjudged']).toBe(1);
  });
});
