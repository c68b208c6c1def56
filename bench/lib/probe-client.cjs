'use strict';
// The bot-process side of bench/lib/probe.mjs: connects to the bench's probe server, says hello and
// answers its requests with registered handlers. Loaded by every bot script of bench/peers (peers'
// discord.js bots, Discluster's fleet bot, bare @discordjs/ws), so each is observed the same way.
const net = require('node:net');
const { onJsonLines } = require('./jsonLines.cjs');
const { countNonce, nonceFigures, nonceRun, parseNonce } = require('./nonces.cjs');

/**
 * Connects to `address` ("tcp://127.0.0.1:PORT"). `hello` is sent first. Handlers: `{ [cmd]: async
 * (message) => answer }`; `stats` is built in (pid, RSS, heap, CPU µs) and extended by
 * `handlers.stats` when given. Returns { event(message), close() }. Never throws: a bot must run
 * the same with or without a bench listening.
 */
function connectProbe(address, hello, handlers = {}) {
  const port = Number(/:(\d+)$/.exec(address ?? '')?.[1]);
  const queued = [];
  let socket = null;
  let open = false;
  const write = (message) => {
    const line = `${JSON.stringify(message)}\n`;
    if (open) socket.write(line);
    else queued.push(line);
  };
  if (Number.isInteger(port) && port > 0) {
    socket = net.connect(port, '127.0.0.1', () => {
      open = true;
      socket.setNoDelay(true);
      for (const line of queued.splice(0)) socket.write(line);
    });
    socket.unref();
    socket.on('error', () => {});
    onJsonLines(socket, (message) => void answer(message));
  }
  async function answer(message) {
    try {
      let result = {};
      if (message.cmd === 'stats') {
        const memory = process.memoryUsage();
        const cpu = process.cpuUsage();
        result = {
          pid: process.pid,
          rssMiB: Math.round((memory.rss / 1048576) * 10) / 10,
          heapUsedMiB: Math.round((memory.heapUsed / 1048576) * 10) / 10,
          cpuUs: cpu.user + cpu.system,
          ...(handlers.stats ? await handlers.stats(message) : {}),
        };
      } else if (handlers[message.cmd]) {
        result = (await handlers[message.cmd](message)) ?? {};
      } else {
        throw new Error(`unknown probe command ${message.cmd}`);
      }
      write({ id: message.id, ...result });
    } catch (error) {
      write({ id: message.id, error: error && error.message ? error.message : String(error) });
    }
  }
  write({ hello: true, pid: process.pid, ...hello });
  return {
    event: (message) => write(message),
    close: () => socket?.destroy(),
  };
}

/** MESSAGE_CREATE nonces `<run>:<n>` counted per run: distinct, duplicates, first/last arrival. */
function nonceCounter() {
  const runs = new Map();
  const now = () => performance.timeOrigin + performance.now();
  return {
    count(nonce) {
      const parsed = parseNonce(nonce);
      if (!parsed) return;
      let run = runs.get(parsed.runId);
      if (!run) {
        run = nonceRun({ cpuAtFirst: 0 });
        runs.set(parsed.runId, run);
      }
      if (run.count === 0) {
        const cpu = process.cpuUsage();
        run.cpuAtFirst = cpu.user + cpu.system;
      }
      countNonce(run, parsed.n, now());
    },
    snapshot() {
      const out = {};
      for (const [id, run] of runs) {
        out[id] = { ...nonceFigures(run), cpuAtFirstUs: run.cpuAtFirst };
      }
      return out;
    },
  };
}

module.exports = { connectProbe, nonceCounter };
