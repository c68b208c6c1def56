// One bot process of bench/rest: a @discordjs/rest client set up as one of the compared systems
// uses it, driven over the fork IPC channel by bench/peers/rest.mjs.
//   discluster:    cluster.rest's client (FleetRestLimiter through makeRequest, NATS KV)
//   uncoordinated: @discordjs/rest alone, its limits inside this process (discord.js, discord-hybrid-sharding, eris-fleet bots)
//   proxy:         @discordjs/rest pointed at one @discordjs/proxy process
// REST_BENCH_TRACE=<file>: the first three processes append the limiter's per-stage times of the
// latency phase to <file> (where a call's time goes).
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(path.join(root, 'cluster-sdk', 'package.json'));
const { REST } = require('@discordjs/rest');
const { connect } = require('@nats-io/transport-node');
const { FleetRestLimiter } = require(path.join(root, 'cluster-sdk', 'dist', 'index.js'));

const config = JSON.parse(process.argv[2]);
let rest;
let close = async () => undefined;

async function init() {
  if (config.mode === 'discluster') {
    const nc = await connect({ servers: config.natsUrl, name: `rest-bench-${config.index}` });
    const limiter = await FleetRestLimiter.open(nc, {
      bot: config.bot,
      token: config.token,
      processes: config.processes,
      globalPerSecond: config.globalPerSecond,
      onWarn: (message) => process.stderr.write(`${message}\n`),
    });
    rest = new REST({
      version: '10',
      api: config.api,
      globalRequestsPerSecond: Number.MAX_SAFE_INTEGER,
      makeRequest: limiter.makeRequest,
    });
    if (process.env.REST_BENCH_TRACE) trace(limiter);
    close = async () => {
      limiter.close();
      await nc.close();
    };
  } else {
    rest = new REST({ version: '10', api: config.mode === 'proxy' ? config.proxyApi : config.api });
  }
  rest.setToken(config.token);
}

async function post(channel, nonce) {
  await rest.post(`/channels/${channel}/messages`, { body: { content: 'bench', nonce } });
}

let n = 0;
const nonce = () => `${config.index}:${process.pid}:${n++}`;

/** Every channel its own loop, as fast as the client lets it, until `untilMs`. */
async function saturate({ channels, untilMs }) {
  const outcome = { ok: 0, failed: 0 };
  await Promise.all(
    channels.map(async (channel) => {
      while (Date.now() < untilMs) {
        try {
          await post(channel, nonce());
          outcome.ok++;
        } catch {
          outcome.failed++;
        }
      }
    }),
  );
  return outcome;
}

/** Sequential calls per channel, spaced so that no limit binds: what each call costs. */
async function latency({ channels, untilMs, spacingMs }) {
  const latencies = [];
  await Promise.all(
    channels.map(async (channel) => {
      while (Date.now() < untilMs) {
        const started = process.hrtime.bigint();
        try {
          await post(channel, nonce());
          latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
        } catch {
          // counted by the simulator
        }
        const waited = Number(process.hrtime.bigint() - started) / 1e6;
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, spacingMs - waited)));
      }
    }),
  );
  return latencies;
}

process.on('message', (message) => {
  const answer = (body) => process.send({ id: message.id, ...body });
  const fail = (error) => answer({ error: String(error?.stack ?? error) });
  if (message.cmd === 'init') init().then(() => answer({ ok: true }), fail);
  else if (message.cmd === 'saturate') saturate(message).then((outcome) => answer({ outcome }), fail);
  else if (message.cmd === 'latency') latency(message).then((latencies) => answer({ latencies }), fail);
  else if (message.cmd === 'stop') void close().finally(() => process.exit(0));
});

// REST_BENCH_TRACE=1: per-stage times of the limiter (for finding where a call's time goes).
const stages = {};
function trace(limiter) {
  const wrap = (object, name) => {
    const original = object[name].bind(object);
    object[name] = async (...args) => {
      const started = performance.now();
      try {
        return await original(...args);
      } finally {
        (stages[name] ??= []).push(performance.now() - started);
      }
    };
  };
  for (const [object, names] of [
    [limiter.slots, ['take']],
    [limiter.routes, ['tryReserve', 'waitForRoom', 'report']],
    [limiter.invalid, ['fleetCount']],
  ])
    for (const name of names) wrap(object, name);
}
process.on('message', (message) => {
  if (!process.env.REST_BENCH_TRACE || message.cmd !== 'latency') return;
  for (const key of Object.keys(stages)) stages[key] = [];
  setTimeout(
    () => {
      const line = Object.entries(stages)
        .map(([k, v]) => {
          v.sort((a, b) => a - b);
          return `${k} p50 ${v[Math.floor(v.length / 2)]?.toFixed(1)} p90 ${v[Math.floor(v.length * 0.9)]?.toFixed(1)}`;
        })
        .join(', ');
      if (config.index < 3)
        fs.appendFileSync(process.env.REST_BENCH_TRACE, `[trace ${config.index}] ${line}\n`);
    },
    message.untilMs - Date.now() + 500,
  );
});
