// One writer process of bench/nats-load: writes exactly what CONTROL and the SDK write to NATS KV
// for a set of shards, at their rates, and counts what it managed.
//   - shard leases (pm2-module-control/src/leases/leaseRecords.ts): one key per shard (or, in the
//     `cluster-leases` variant, per cluster), created once, then updated on its revision every
//     lease_ms / 8 (leaseTimes.ts `renewEveryMs`), every key of a round sent at once;
//   - sessions (cluster-sdk/src/session/NatsSessionStore.ts): one key per shard, updated on its
//     revision every `sessionFlushIntervalMs` while the shard is busy (its sequence moved).
// Records have the size of the real ones (ShardLeaseRecord, SessionRecord).
//
// Forked by run.mjs: {cmd:'start', writer, servers, bot, shardIds, shardCount, leaseMs, flushMs,
// leaseGroup} → {id, started}; {cmd:'stats', id} → {id, stats} (and resets the counters);
// {cmd:'stop', id} → {id, stopped}.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(path.join(root, 'cluster-sdk', 'package.json'));
const { connect } = require('@nats-io/transport-node');
const { Kvm } = require('@nats-io/kv');

const encoder = new TextEncoder();
let running = null;

function fresh() {
  return { lease: 0, session: 0, failed: 0, lateRounds: 0, rounds: 0, latencies: [] };
}

function leaseRecord(key, run, renewedAt) {
  return encoder.encode(
    JSON.stringify({
      v: 1,
      shardId: key.id,
      shardCount: run.shardCount,
      hostId: `bench-host-${run.writer}`,
      instanceId: `bench-instance-${process.pid}`,
      clusterId: Math.floor(key.id / 16),
      epoch: 7,
      renewedAt,
    }),
  );
}

function sessionRecord(shardId, run, sequence) {
  return encoder.encode(
    JSON.stringify({
      v: 1,
      sessionId: `a6b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5-${shardId}`,
      sequence,
      shardId,
      shardCount: run.shardCount,
      resumeURL: 'wss://gateway-us-east1-b.discord.gg',
      updatedAt: Date.now(),
      owner: `bench-instance-${process.pid}`,
    }),
  );
}

async function timed(run, write) {
  const started = performance.now();
  try {
    await write();
    run.stats.latencies.push(performance.now() - started);
    return true;
  } catch {
    run.stats.failed++;
    return false;
  }
}

/** Every `periodMs`, `body()` for every item at once; a round still running when the next is due is late. */
function every(run, periodMs, offsetMs, body) {
  let busy = false;
  const tick = async () => {
    if (!run.active) return;
    if (busy) {
      run.stats.lateRounds++;
      return;
    }
    busy = true;
    run.stats.rounds++;
    await body().catch(() => undefined);
    busy = false;
  };
  const start = setTimeout(() => {
    void tick();
    run.timers.push(setInterval(() => void tick(), periodMs));
  }, offsetMs);
  run.timers.push(start);
}

async function start(message) {
  const nc = await connect({ servers: message.servers, name: `bench-writer-${message.writer}` });
  const kvm = new Kvm(nc);
  const leases = await kvm.open(`discluster_${message.bot}_leases`);
  const sessions = await kvm.open(`discluster_${message.bot}_sessions`);
  const run = { ...message, nc, active: true, timers: [], stats: fresh() };
  // Lease keys: one per shard, or one per group of `leaseGroup` shards (a cluster).
  const leaseKeys = [];
  for (const id of message.shardIds)
    if (id % message.leaseGroup === 0 || message.leaseGroup === 1)
      leaseKeys.push({ id, key: `${message.shardCount}.${id}`, revision: 0 });
  for (const key of leaseKeys) {
    await leases.delete(key.key).catch(() => undefined);
    key.revision = await leases.put(key.key, leaseRecord(key, run, Date.now()));
  }
  const sessionKeys = [];
  for (const id of message.shardIds) {
    const key = `${message.shardCount}.${id}`;
    sessionKeys.push({ id, key, revision: await sessions.put(key, sessionRecord(id, run, 1)), sequence: 1 });
  }
  const renewEveryMs = Math.max(25, Math.floor(message.leaseMs / 8));
  // Writers start their rounds spread over a period, as hosts do.
  const offset = (period) => Math.floor(Math.random() * period);
  every(run, renewEveryMs, offset(renewEveryMs), () =>
    Promise.all(
      leaseKeys.map((key) =>
        timed(run, async () => {
          key.revision = await leases.update(key.key, leaseRecord(key, run, Date.now()), key.revision);
          run.stats.lease++;
        }),
      ),
    ),
  );
  every(run, message.flushMs, offset(message.flushMs), () =>
    Promise.all(
      sessionKeys.map((key) =>
        timed(run, async () => {
          key.sequence += 40;
          key.revision = await sessions.update(
            key.key,
            sessionRecord(key.id, run, key.sequence),
            key.revision,
          );
          run.stats.session++;
        }),
      ),
    ),
  );
  running = run;
}

async function stop() {
  if (!running) return;
  running.active = false;
  for (const timer of running.timers) clearTimeout(timer);
  await running.nc.close().catch(() => undefined);
  running = null;
}

process.on('message', (message) => {
  void (async () => {
    try {
      if (message.cmd === 'start') {
        await start(message);
        process.send({ id: message.id, started: true });
      } else if (message.cmd === 'stats') {
        const stats = running ? running.stats : fresh();
        if (running) running.stats = fresh();
        process.send({ id: message.id, stats });
      } else if (message.cmd === 'stop') {
        await stop();
        process.send({ id: message.id, stopped: true });
      }
    } catch (error) {
      process.send({ id: message.id, error: error?.message ?? String(error) });
    }
  })();
});
process.on('disconnect', () => void stop().finally(() => process.exit(0)));
