import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { getFreePort, spawnNode, stopAll } from '../src/index.js';

const child = path.join(__dirname, 'fixtures', 'child.mjs');

afterEach(async () => {
  await stopAll();
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('spawnNode', () => {
  it('passes env, reads stdout lines and stops by pid', async () => {
    const proc = spawnNode(child, [], { env: { CHILD_GREETING: 'hello' } });
    const ready = await proc.waitForLine((line) => line.startsWith('ready'));
    expect(ready).toBe(`ready ${proc.pid} hello`);
    await proc.waitForLine((line) => line === 'tick 3');

    const status = await proc.stop();
    expect(status).toEqual({ code: 0, signal: null });
    expect(proc.lines).toContain('stopping');
    expect(isAlive(proc.pid)).toBe(false);
  });

  it('iterates stdout lines until the process exits', async () => {
    const proc = spawnNode(child, ['exit']);
    const seen: string[] = [];
    for await (const line of proc.stdoutLines) seen.push(line);
    expect(seen).toEqual(['bye']);
    expect(await proc.exited).toEqual({ code: 3, signal: null });
  });

  it('rejects waitForLine when the process exits first', async () => {
    const proc = spawnNode(child, ['exit']);
    await expect(proc.waitForLine((line) => line === 'never')).rejects.toThrow(/exited \(code 3\)/);
  });

  it('escalates to SIGKILL when SIGTERM is ignored', async () => {
    const proc = spawnNode(child, ['stubborn']);
    await proc.waitForLine((line) => line.startsWith('ready'));
    const status = await proc.stop(300);
    expect(status.signal).toBe('SIGKILL');
    expect(isAlive(proc.pid)).toBe(false);
  });

  it('stopAll() ends every process still running', async () => {
    const procs = [spawnNode(child), spawnNode(child)];
    await Promise.all(procs.map((p) => p.waitForLine((line) => line.startsWith('ready'))));
    await stopAll();
    for (const p of procs) expect(isAlive(p.pid)).toBe(false);
  });
});

describe('getFreePort', () => {
  it('returns a port that can be bound on 127.0.0.1', async () => {
    const port = await getFreePort();
    expect(port).toBeGreaterThan(0);
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});
