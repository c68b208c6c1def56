// The bench's side channel to bot processes it does not fork itself (peer managers' children, pm2
// apps): a loopback TCP server speaking JSON lines. Every bot process that loads
// bench/lib/probe-client.cjs connects, says hello ({pid, role, …}) and answers requests
// ({id, cmd, …} → {id, …}). The channel is the same for every system under test, so no figure
// depends on a peer's own IPC (except the IPC benchmark, which measures exactly that).
import { createRequire } from 'node:module';
import net from 'node:net';

const { onJsonLines } = createRequire(import.meta.url)('./jsonLines.cjs');

/**
 * Starts the probe server. Returns { url, bots, waitForBots(n), request(pid, cmd), requestAll(cmd),
 * close() }; `bots` maps pid → { hello, socket, lastStats }.
 */
export async function startProbeServer() {
  const bots = new Map();
  const waiters = new Set();
  const pending = new Map();
  let nextId = 1;
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    let pid = null;
    onJsonLines(socket, (message) => {
      if (message.hello) {
        pid = message.pid;
        bots.set(pid, { hello: message, socket, connectedAt: Date.now(), events: [] });
        for (const waiter of waiters) waiter();
      } else if (typeof message.id === 'number' && pending.has(message.id)) {
        pending.get(message.id)(message);
        pending.delete(message.id);
      } else if (pid !== null && bots.has(pid)) {
        // Unsolicited: an event the bot reports (ready, …).
        bots.get(pid).events.push({ ...message, receivedAt: Date.now() });
        for (const waiter of waiters) waiter();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      if (pid !== null && bots.get(pid)?.socket === socket) bots.get(pid).closed = true;
      for (const waiter of waiters) waiter();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();

  const live = () => [...bots.values()].filter((bot) => !bot.closed);

  /** Resolves once `predicate(liveBots)` holds; rejects after `timeoutMs`. */
  const waitUntil = (predicate, timeoutMs, what) =>
    new Promise((resolve, reject) => {
      const check = () => {
        let result;
        try {
          result = predicate(live());
        } catch (error) {
          return finish(error);
        }
        if (result) finish(null, result);
      };
      const timer = setTimeout(
        () => finish(new Error(`probe: no ${what} within ${timeoutMs} ms (${live().length} bots)`)),
        timeoutMs,
      );
      const finish = (error, value) => {
        clearTimeout(timer);
        waiters.delete(check);
        if (error) reject(error);
        else resolve(value);
      };
      waiters.add(check);
      check();
    });

  const request = (bot, cmd, extra = {}, timeoutMs = 60_000) =>
    new Promise((resolve, reject) => {
      if (bot.closed) return reject(new Error(`probe: bot ${bot.hello.pid} has disconnected`));
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`probe: bot ${bot.hello.pid} did not answer ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, (message) => {
        clearTimeout(timer);
        if (message.error) reject(new Error(`bot ${bot.hello.pid}: ${message.error}`));
        else resolve(message);
      });
      bot.socket.write(`${JSON.stringify({ id, cmd, ...extra })}\n`);
    });

  return {
    url: `tcp://127.0.0.1:${port}`,
    port,
    bots,
    live,
    waitUntil,
    request,
    /** Asks every live bot; resolves with their answers (in the order of `live()`). */
    requestAll: (cmd, extra, timeoutMs) =>
      Promise.all(live().map((bot) => request(bot, cmd, extra, timeoutMs))),
    /** Forgets every bot (between runs). */
    reset() {
      for (const bot of bots.values()) bot.socket.destroy();
      bots.clear();
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
