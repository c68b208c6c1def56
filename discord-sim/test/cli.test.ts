// The `discord-sim` command as discord-sim/README.md and docs/architecture.md ("Contracts") specify it: one JSON line with its URLs on stdout, runs
// until SIGINT/SIGTERM and then exits 0, usage errors exit 2 naming the flag. Runs the built
// dist/cli.js (`npx tsc -b` first), each child stopped by pid in afterEach.
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { spawnNode, type SpawnedProcess } from '../../testing/src/processes.js';

const CLI = path.resolve(__dirname, '../dist/cli.js');
const DOCUMENTED_ARGS = [
  '--port',
  '0',
  '--token',
  'T',
  '--guilds',
  '50',
  '--shards',
  '2',
  '--max-concurrency',
  '2',
];
DOCUMENTED_ARGS.push('--identify-window-ms', '100');
// Liveness bound for the child to print or exit; not a performance assertion.
const WAIT_MS = 20_000;

const children: SpawnedProcess[] = [];
const servers: net.Server[] = [];

afterEach(async () => {
  // By pid: SIGTERM, then SIGKILL if it is still alive after the grace period.
  await Promise.all(children.splice(0).map((child) => child.stop(5000)));
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

function startCli(args: string[]): SpawnedProcess {
  const child = spawnNode(CLI, args);
  children.push(child);
  return child;
}

interface Urls {
  rest: string;
  gateway: string;
  admin: string;
}

async function urlsOf(child: SpawnedProcess): Promise<Urls> {
  const line = await child.waitForLine((l) => l.trim() !== '', WAIT_MS);
  return JSON.parse(line) as Urls;
}

async function exitOf(child: SpawnedProcess): Promise<{ code: number | null; signal: string | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`pid ${child.pid} did not exit within ${WAIT_MS} ms:\n${child.stderr()}`)),
      WAIT_MS,
    );
  });
  try {
    return await Promise.race([child.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Opens a gateway session against the child so shutdown has a live socket to deal with. */
async function identify(gateway: string, token: string): Promise<WebSocket> {
  const ws = new WebSocket(`${gateway}?v=10&encoding=json`);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no READY from the CLI simulator')), WAIT_MS);
    ws.on('message', (data) => {
      const message = JSON.parse(String(data)) as { op: number; t: string | null };
      if (message.op === 10) {
        ws.send(
          JSON.stringify({
            op: 2,
            d: { token, intents: 1, properties: { os: 'x', browser: 'x', device: 'x' }, shard: [0, 2] },
          }),
        );
      }
      if (message.t === 'READY') {
        clearTimeout(timer);
        resolve();
      }
    });
    ws.on('close', (code) => reject(new Error(`closed with ${code} before READY`)));
    ws.on('error', () => {});
  });
  return ws;
}

describe('discord-sim CLI', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    'prints one JSON line with rest/gateway/admin, serves the configured sim, exits 0 on %s',
    async (signal) => {
      const child = startCli(DOCUMENTED_ARGS);
      const urls = await urlsOf(child);
      expect(Object.keys(urls).sort()).toEqual(['admin', 'gateway', 'rest']);
      const port = /^ws:\/\/127\.0\.0\.1:(\d+)$/.exec(urls.gateway)?.[1];
      expect(port, urls.gateway).toBeDefined();
      expect(Number(port)).toBeGreaterThan(0);
      expect(urls.rest).toBe(`http://127.0.0.1:${port}/api/v10`);
      expect(urls.admin).toBe(`http://127.0.0.1:${port}/_sim`);

      const state = (await (await fetch(`${urls.admin}/state`)).json()) as Record<string, unknown>;
      expect(state).toMatchObject({
        shardCount: 2,
        maxConcurrency: 2,
        identifyWindowMs: 100,
        guilds: 50,
        identifies: 0,
      });
      const bot = await fetch(`${urls.rest}/gateway/bot`, { headers: { authorization: 'Bot T' } });
      expect(await bot.json()).toMatchObject({
        url: urls.gateway,
        shards: 2,
        session_start_limit: { max_concurrency: 2 },
      });

      // Shut down with a live session open: the process must still exit promptly and cleanly.
      const ws = await identify(urls.gateway, 'T');
      const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
      expect(child.kill(signal)).toBe(true);
      expect(await exitOf(child)).toEqual({ code: 0, signal: null });
      await closed;
      // stdout carried exactly the one line (logs go to stderr).
      expect(child.lines.filter((l) => l.trim() !== '')).toHaveLength(1);
    },
  );

  it('a non-number flag value exits 2 with a message naming the flag', async () => {
    const child = startCli(['--shards', 'abc']);
    expect(await exitOf(child)).toEqual({ code: 2, signal: null });
    const firstLine = child.stderr().split('\n')[0];
    expect(firstLine).toMatch(/--shards/);
    expect(firstLine).toMatch(/abc/);
    expect(child.lines.filter((l) => l.trim() !== '')).toEqual([]);
  });

  it('an out-of-range value exits 2 naming the option', async () => {
    const child = startCli(['--shards', '0']);
    expect(await exitOf(child)).toEqual({ code: 2, signal: null });
    expect(child.stderr().split('\n')[0]).toMatch(/shards/);
  });

  it('an unknown flag exits 2 naming it', async () => {
    const child = startCli(['--shardz', '2']);
    expect(await exitOf(child)).toEqual({ code: 2, signal: null });
    expect(child.stderr().split('\n')[0]).toMatch(/--shardz/);
  });

  it('--help prints the usage on stdout and exits 0', async () => {
    const child = startCli(['--help']);
    expect(await exitOf(child)).toEqual({ code: 0, signal: null });
    const out = child.lines.join('\n');
    expect(out).toMatch(/^Usage: discord-sim/);
    for (const flag of [
      '--port',
      '--token',
      '--guilds',
      '--shards',
      '--max-concurrency',
      '--identify-window-ms',
    ]) {
      expect(out).toContain(flag);
    }
    expect(out).toContain('--session-start-total');
    expect(out).toContain('--heartbeat-interval-ms');
  });

  it('a port already in use exits 1 with a clear message', async () => {
    const blocker = net.createServer();
    servers.push(blocker);
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    const child = startCli(['--port', String(port)]);
    expect(await exitOf(child)).toEqual({ code: 1, signal: null });
    expect(child.stderr()).toMatch(/could not start/);
    expect(child.lines.filter((l) => l.trim() !== '')).toEqual([]);
  });
});
