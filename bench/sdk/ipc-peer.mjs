// One process of bench/sdk/ipc.mjs: hosts one or more discluster-sdk `ClusterIpc`s, each on its own
// NATS connection, answering `echo` requests, plus a raw NATS responder per cluster (no SDK layer:
// `msg.respond(msg.data)`) for the in-run comparison. The first hosted cluster can also run the
// timed request loops. Forked with an IPC channel: {cmd:'start'}, {cmd:'run'}, {cmd:'stop'}.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { connect } = require('@nats-io/transport-node');
const { ClusterIpc } = require('discluster-sdk');

/** clusterId → { nc, ipc } */
const hosted = new Map();
let allIds = [];
let bot = '';
const errors = [];

const rawSubject = (clusterId) => `discluster-bench.${bot}.raw.${clusterId}`;

async function start({ natsUrl, botName, hostedIds, clusterIds, natsOptions = {} }) {
  bot = botName;
  allIds = clusterIds;
  for (const clusterId of hostedIds) {
    const nc = await connect({ servers: natsUrl, name: `bench-ipc-${clusterId}`, ...natsOptions });
    const ipc = new ClusterIpc({
      nc,
      bot,
      clusterId,
      clusterIds: () => allIds,
      onError: (error) => errors.push(error.message),
    });
    ipc.handle('echo', (data) => data);
    await ipc.start();
    nc.subscribe(rawSubject(clusterId), {
      callback: (error, msg) => {
        if (!error) msg.respond(msg.data);
      },
    });
    await nc.flush();
    hosted.set(clusterId, { nc, ipc });
  }
}

/** A JSON value whose serialisation is exactly `bytes` long (for bytes ≥ 40). */
function payloadOf(bytes) {
  const base = { guildId: '1234567890123456789', op: 'echo', s: '' };
  const fill = Math.max(0, bytes - JSON.stringify(base).length);
  return { ...base, s: 'x'.repeat(fill) };
}

const cpuMicros = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

async function run({ kind, from, target, payloadBytes, warmup, n, timeoutMs }) {
  const { nc, ipc } = hosted.get(from);
  const data = payloadOf(payloadBytes);
  // The raw variant carries the same bytes the SDK puts on the wire for this request.
  const wire = new TextEncoder().encode(JSON.stringify({ v: 1, name: 'echo', from, data }));
  const targets = allIds;
  let bad = 0;
  let failed = 0;
  const once = {
    sdk: async () => {
      const value = await ipc.request(target, 'echo', data, { timeoutMs });
      if (value?.s?.length !== data.s.length) bad++;
    },
    raw: async () => {
      const msg = await nc.request(rawSubject(target), wire, { timeout: timeoutMs });
      if (msg.data.length !== wire.length) bad++;
    },
    sdkAll: async () => {
      const results = await ipc.requestAll('echo', data, { timeoutMs });
      if (results.length !== targets.length) bad++;
      for (const result of results) {
        if (!result.ok) failed++;
        else if (result.value?.s?.length !== data.s.length) bad++;
      }
    },
    rawAll: async () => {
      const msgs = await Promise.all(
        targets.map((clusterId) => nc.request(rawSubject(clusterId), wire, { timeout: timeoutMs })),
      );
      for (const msg of msgs) if (msg.data.length !== wire.length) bad++;
    },
  }[kind];
  for (let i = 0; i < warmup; i++) {
    try {
      await once();
    } catch {
      failed++;
    }
  }
  const warmupFailed = failed;
  failed = 0;
  bad = 0;
  const latencies = new Float64Array(n);
  const cpuStart = cpuMicros();
  const wallStart = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    try {
      await once();
    } catch (error) {
      failed++;
      if (errors.length < 20) errors.push(error?.message ?? String(error));
    }
    latencies[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  const wallUs = Number(process.hrtime.bigint() - wallStart) / 1000;
  const cpuUs = cpuMicros() - cpuStart;
  const inOrder = Array.from(latencies);
  latencies.sort();
  const pct = (p) => latencies[Math.min(n, Math.max(1, Math.ceil(p * n))) - 1];
  let sum = 0;
  for (const value of latencies) sum += value;
  // Histogram in 10 µs buckets below 2 ms, 100 µs buckets to 20 ms, the rest listed.
  const fine = new Map();
  const overflow = [];
  for (const value of latencies) {
    if (value < 2000) fine.set(Math.floor(value / 10) * 10, (fine.get(Math.floor(value / 10) * 10) ?? 0) + 1);
    else if (value < 20_000)
      fine.set(Math.floor(value / 100) * 100, (fine.get(Math.floor(value / 100) * 100) ?? 0) + 1);
    else overflow.push(Math.round(value));
  }
  // Where the slowest requests fell in the sequence (GC pauses, other processes): index and µs.
  const slowest = inOrder
    .map((value, index) => [index, Math.round(value)])
    .sort((a, b) => b[1] - a[1])
    .slice(0, 10);
  return {
    kind,
    from,
    target: kind.endsWith('All') ? targets.length : target,
    payloadBytes,
    wireBytes: wire.length,
    n,
    warmup,
    warmupFailed,
    failed,
    bad,
    us: {
      p50: round2(pct(0.5)),
      p90: round2(pct(0.9)),
      p99: round2(pct(0.99)),
      p999: round2(pct(0.999)),
      max: round2(latencies[n - 1]),
      min: round2(latencies[0]),
      mean: round2(sum / n),
    },
    perSec: Math.round((n * 1e6) / wallUs),
    requesterCpuUsPerOp: round2(cpuUs / n),
    histogramUs: [...fine.entries()].sort((a, b) => a[0] - b[0]),
    overflowUs: overflow,
    slowest,
  };
}

const round2 = (value) => Math.round(value * 100) / 100;

async function stop() {
  const hard = setTimeout(() => process.exit(0), 3000);
  for (const { nc, ipc } of hosted.values()) {
    ipc.close();
    await nc.close().catch(() => {});
  }
  clearTimeout(hard);
  process.exit(0);
}

process.on('message', (message) => {
  const reply = (body) => process.send({ id: message.id, ...body });
  if (message?.cmd === 'start') {
    start(message).then(
      () => reply({ started: true }),
      (error) => reply({ error: error?.stack ?? String(error) }),
    );
  } else if (message?.cmd === 'run') {
    run(message).then(
      (result) => reply({ result, errors: errors.splice(0) }),
      (error) => reply({ error: error?.stack ?? String(error) }),
    );
  } else if (message?.cmd === 'stop') {
    void stop();
  }
});
process.on('SIGTERM', () => void stop());
process.on('disconnect', () => void stop());
process.send({ hello: true, pid: process.pid });
