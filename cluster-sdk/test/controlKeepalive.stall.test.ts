/**
 * CONTROL's keepalive watch across a real stall of the cluster's event loop, with a real IPC
 * channel: a child process stands in for CONTROL and sends keepalives (with `renewedAt`) while this
 * process is blocked. When the loop wakes, Node runs the due silence timer before it reads the
 * socket; the watch must judge the silence only after the keepalives waiting there were read
 * (issue 13: "timers before sockets"). If CONTROL stopped before the stall, the keepalives waiting
 * are stale and the cluster must fence.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlKeepalive } from '../src/cluster/ControlKeepalive';

/** Generous against a loaded machine: the stand-in only has to run once in this time. */
const FENCE_AFTER_MS = 1_500;
const STALL_MS = 3_000;

const STAND_IN = `
  const timer = setInterval(() => process.send({ renewedAt: Date.now() }), 20);
  process.on('disconnect', () => clearInterval(timer));
`;

let child: ChildProcess | undefined;

afterEach(() => {
  if (child?.pid !== undefined && child.exitCode === null) {
    process.kill(child.pid, 'SIGCONT');
    child.kill('SIGKILL');
  }
  child = undefined;
});

/** Blocks this process's event loop, as SIGSTOP or a starved core would. */
function stall(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy: no timer, no socket read
  }
}

async function watched(): Promise<{
  keepalive: ControlKeepalive;
  silences: number[];
  received: () => number;
}> {
  const silences: number[] = [];
  const keepalive = new ControlKeepalive({
    fenceAfterMs: () => FENCE_AFTER_MS,
    onSilent: (silentMs) => silences.push(silentMs),
  });
  child = spawn(process.execPath, ['-e', STAND_IN], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  let count = 0;
  child.on('message', (message: { renewedAt: number }) => {
    count++;
    keepalive.received(message.renewedAt);
  });
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (count >= 5) {
        clearInterval(poll);
        resolve();
      }
    }, 10);
  });
  return { keepalive, silences, received: () => count };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

describe('keepalive watch after a stall of the cluster', () => {
  it('keepalives that waited in the socket while the loop was blocked end the silence: no fence', async () => {
    const { keepalive, silences, received } = await watched();
    const before = received();
    stall(STALL_MS);
    await settle();
    expect(received()).toBeGreaterThan(before);
    expect(silences).toEqual([]);
    keepalive.stop();
  });

  it('CONTROL stopped before the stall: what waits in the socket is stale, the cluster fences once', async () => {
    const { keepalive, silences } = await watched();
    const pid = child?.pid;
    if (pid === undefined) throw new Error('no stand-in process');
    process.kill(pid, 'SIGSTOP');
    stall(STALL_MS);
    await settle();
    expect(silences).toHaveLength(1);
    expect(silences[0]).toBeGreaterThanOrEqual(FENCE_AFTER_MS);
    keepalive.stop();
  });
});
