// Many simulated CONTROLs in one process for bench/peers/scale.mjs, each with its own NATS
// connection, speaking the real MASTER ↔ CONTROL protocol: they are the `FakeHost` of MASTER's own
// tests (pm2-module-master/test/fakeHost.ts, transpiled here at load time rather than copied),
// which announces, heartbeats its epoch and clusters, opens the sealed token of each assignment and
// answers every command. Here each also reports every shard of an assignment `ready` in a heartbeat
// right after applying it (a real CONTROL reports once its clusters are up), and tells the bench
// when it was assigned. Not simulated: clusters, shard leases in KV, sessions.
//
// Forked by the bench: {cmd:'start', natsUrl, bot, hosts, cores, heartbeatMs} → {id, announced};
// {cmd:'stats'} → {id, stats}; {cmd:'stop'}.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const requireFromMaster = createRequire(path.join(root, 'pm2-module-master', 'package.json'));

function loadFakeHost() {
  const ts = requireFromMaster('typescript');
  const source = fs.readFileSync(path.join(root, 'pm2-module-master', 'test', 'fakeHost.ts'), 'utf8');
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      esModuleInterop: true,
    },
  });
  const module = { exports: {} };
  new Function('require', 'module', 'exports', outputText)(requireFromMaster, module, module.exports);
  return module.exports.FakeHost;
}

const FakeHost = loadFakeHost();
const { connect } = requireFromMaster('@nats-io/transport-node');
const hosts = [];
const connections = [];
const assignedAt = new Map();
const errors = [];

async function start({ natsUrl, bot, hosts: count, cores, heartbeatMs }) {
  // Connections first (one per CONTROL, as on separate machines), then the announcements together.
  for (let i = 0; i < count; i++) {
    const nc = await connect({ servers: natsUrl, name: `fake-control-${i}` });
    connections.push(nc);
    const host = new FakeHost(nc, { bot, id: `host-${String(i).padStart(3, '0')}`, cores, heartbeatMs });
    const apply = host.apply.bind(host);
    host.apply = (command) => {
      apply(command);
      assignedAt.set(host.options.id, {
        at: Date.now(),
        shards: host.shardIds().length,
        epoch: command.epoch,
      });
      host.heartbeat();
    };
    hosts.push(host);
  }
  const announcedAt = [];
  await Promise.all(
    hosts.map(async (host, i) => {
      // Heartbeats start at a random phase of the interval, as independent machines would.
      await new Promise((resolve) => setTimeout(resolve, (i * 7) % 50));
      await host.start();
      announcedAt.push(Date.now());
    }),
  );
  return { announcedFirst: Math.min(...announcedAt), announcedLast: Math.max(...announcedAt) };
}

process.on('message', (message) => {
  if (message?.cmd === 'start') {
    start(message).then(
      (announced) => process.send({ id: message.id, announced }),
      (error) => process.send({ id: message.id, error: String(error?.stack ?? error) }),
    );
  } else if (message?.cmd === 'stats') {
    const times = [...assignedAt.values()].map((a) => a.at);
    process.send({
      id: message.id,
      stats: {
        hosts: hosts.length,
        assignedHosts: assignedAt.size,
        assignedShards: [...assignedAt.values()].reduce((n, a) => n + a.shards, 0),
        firstAssignAt: times.length ? Math.min(...times) : null,
        lastAssignAt: times.length ? Math.max(...times) : null,
        errors: errors.slice(-5),
      },
    });
  } else if (message?.cmd === 'stop') {
    for (const host of hosts) host.stop();
    Promise.all(connections.map((nc) => nc.close().catch(() => undefined))).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 3000);
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ hello: true, pid: process.pid });
