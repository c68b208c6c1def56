// The simulator closes a connection with 4000 when no heartbeat came for interval + tolerance. When
// its own event loop is busy (a co-located test, a starved core), Node runs the due deadline timer
// before it reads the socket, where the client's heartbeats may be waiting: the referee must read
// them before it judges. Here the simulator runs in this process, which is kept busy while a client
// in another process heartbeats on time.
import { spawnNode, type SpawnedProcess } from '../../testing/src/processes.js';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAllSims, startSim } from './support/gateway.js';

const CLIENT = `
  const { WebSocket } = require('ws');
  const socket = new WebSocket(process.argv[1] + '/?v=10&encoding=json');
  let beat = null;
  socket.on('message', (data) => {
    const frame = JSON.parse(data.toString());
    if (frame.op === 10 && !beat) {
      beat = setInterval(() => socket.send(JSON.stringify({ op: 1, d: null })), 100);
      console.log('hello');
    }
  });
  socket.on('close', (code) => { console.log('close ' + code); process.exit(0); });
  process.on('SIGUSR2', () => clearInterval(beat));
`;

let client: SpawnedProcess | undefined;

afterEach(async () => {
  client?.kill('SIGKILL');
  client = undefined;
  await closeAllSims();
});

/** Blocks this process (and the simulator in it) without letting it read any socket. */
function busy(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // running JS: no timer, no socket read
  }
}

describe('the heartbeat referee and its own lateness', () => {
  it('a client that heartbeat on time while the simulator was busy is not closed; one that stops is', async () => {
    const sim = await startSim({
      guilds: 8,
      shards: 1,
      heartbeatIntervalMs: 200,
      heartbeatToleranceMs: 200,
    });
    client = spawnNode('-e', [CLIENT, sim.urls.gateway], { cwd: process.cwd() });
    await client.waitForLine((line) => line === 'hello', 20_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    busy(2_000); // five deadlines, while the client's heartbeats queue up in the socket
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(client.lines.filter((line) => line.startsWith('close'))).toEqual([]);
    // A client that really stops heartbeating is still closed with 4000.
    client.kill('SIGUSR2');
    await client.waitForLine((line) => line.startsWith('close'), 20_000);
    expect(client.lines).toContain('close 4000');
  });
});
