'use strict';
/**
 * ecosystem.config.js with a 3-node NATS cluster instead of one nats-server, all on this machine:
 * `pm2 start ecosystem.nats-cluster.config.js`. For trying out a replicated NATS (stop a node with
 * `pm2 stop nats-2` and watch the fleet keep serving); production runs the nodes on separate
 * machines (docs/operations.md, "Many machines"). Documented in docs/operations.md.
 *
 * Every variable of ecosystem.config.js applies (DISCORD_TOKEN, BOT_SCRIPT, DISCLUSTER_DATA_DIR, …)
 * except NATS_PORT; instead:
 * | variable             | default            | meaning                                            |
 * | -------------------- | ------------------ | -------------------------------------------------- |
 * | `NATS_PORTS`         | `4222,4223,4224`   | the client ports of the three nodes (loopback)     |
 * | `NATS_CLUSTER_PORTS` | `6222,6223,6224`   | their route ports (loopback)                       |
 *
 * Each node keeps its JetStream store in `<data>/nats-cluster/nats-<n>`. MASTER and CONTROL get
 * every node's URL and `kv_replicas` 3, so every KV bucket of the bot has a copy on each node.
 */
const os = require('node:os');
const path = require('node:path');

const single = require('./ecosystem.config.js');

const env = process.env;
const dataDir = path.resolve(env.DISCLUSTER_DATA_DIR || path.join(os.homedir(), '.discluster'));

function ports(variable, defaults) {
  const list = (env[variable] || defaults).split(',').map((port) => port.trim());
  if (list.length !== 3 || !list.every((port) => /^\d+$/.test(port)))
    throw new Error(`ecosystem.nats-cluster.config.js: ${variable} must be three ports, comma-separated`);
  return list;
}

const clientPorts = ports('NATS_PORTS', '4222,4223,4224');
const routePorts = ports('NATS_CLUSTER_PORTS', '6222,6223,6224');
const routes = routePorts.map((port) => `nats://127.0.0.1:${port}`).join(',');
const natsUrl = clientPorts.map((port) => `nats://127.0.0.1:${port}`).join(',');

const singleNats = single.apps.find((app) => app.name === 'nats-server');

/** Node `n` (1-3): its own name, ports and store; every node lists every route (its own is ignored). */
function natsNode(n) {
  return {
    ...singleNats,
    name: `nats-${n}`,
    args: [
      '-a',
      '127.0.0.1',
      '-p',
      clientPorts[n - 1],
      '-js',
      '-sd',
      path.join(dataDir, 'nats-cluster', `nats-${n}`),
      '-n',
      `${os.hostname()}-nats-${n}`,
      '--cluster_name',
      'discluster',
      '--cluster',
      `nats://127.0.0.1:${routePorts[n - 1]}`,
      '--routes',
      routes,
    ],
  };
}

const replicated = { DISCLUSTER_NATS_URL: natsUrl, DISCLUSTER_KV_REPLICAS: '3' };

module.exports = {
  apps: [
    natsNode(1),
    natsNode(2),
    natsNode(3),
    ...single.apps
      .filter((app) => app !== singleNats)
      .map((app) =>
        app.name === 'discluster-master' || app.name === 'discluster-control'
          ? { ...app, env: { ...app.env, ...replicated } }
          : app,
      ),
  ],
};
