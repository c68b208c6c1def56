import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Kvm } from '@nats-io/kv';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { ControlConfigSchema, MasterConfigSchema, loadModuleConfig } from 'discluster-protocol';
import { getFreePort, spawnProcess, stopAll, waitFor } from 'discluster-testing';
import { afterEach, describe, expect, it } from 'vitest';

/**
 * ecosystem.nats-cluster.config.js (issue 13 §3): the one-machine fleet with three nats-server
 * nodes. Loaded, its apps are a 3-node cluster that MASTER and CONTROL reach with every URL and
 * kv_replicas 3; started as the file says (the nodes only, without pm2), the nodes form a JetStream
 * cluster that serves a 3-replica KV bucket.
 */

const ROOT = path.resolve(__dirname, '..');
const VARIANT = path.join(ROOT, 'ecosystem.nats-cluster.config.js');
const SINGLE = path.join(ROOT, 'ecosystem.config.js');
const requireFresh = createRequire(__filename);
const VARIABLES = ['DISCORD_TOKEN', 'DISCLUSTER_DATA_DIR', 'NATS_PORTS', 'NATS_CLUSTER_PORTS', 'BOT_SCRIPT'];

interface App {
  name: string;
  script: string;
  interpreter?: string;
  args?: string[];
  env?: Record<string, string>;
  [key: string]: unknown;
}

const dirs: string[] = [];
afterEach(async () => {
  await stopAll();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** Requires the variant (and the file it builds on) afresh with exactly these variables set. */
function load(vars: Record<string, string>): App[] {
  const saved = Object.fromEntries(VARIABLES.map((name) => [name, process.env[name]]));
  for (const name of VARIABLES) delete process.env[name];
  Object.assign(process.env, vars);
  try {
    for (const file of [VARIANT, SINGLE]) delete requireFresh.cache[requireFresh.resolve(file)];
    return (requireFresh(VARIANT) as { apps: App[] }).apps;
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

function app(apps: App[], name: string): App {
  const found = apps.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no app ${name} in ${apps.map((one) => one.name).join(', ')}`);
  return found;
}

function flag(entry: App, name: string): string | undefined {
  const args = entry.args ?? [];
  const at = args.indexOf(name);
  return at < 0 ? undefined : args[at + 1];
}

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-eco-cluster-'));
  dirs.push(dir);
  return dir;
}

describe('ecosystem.nats-cluster.config.js', () => {
  it('three nats-server nodes, and MASTER and CONTROL with every URL and kv_replicas 3', () => {
    const data = tempDir();
    const apps = load({ DISCLUSTER_DATA_DIR: data });
    expect(apps.map((one) => one.name)).toEqual([
      'nats-1',
      'nats-2',
      'nats-3',
      'discord-sim',
      'discluster-master',
      'discluster-control',
    ]);
    const nodes = ['nats-1', 'nats-2', 'nats-3'].map((name) => app(apps, name));
    expect(nodes.map((node) => flag(node, '-p'))).toEqual(['4222', '4223', '4224']);
    expect(new Set(nodes.map((node) => flag(node, '-sd'))).size).toBe(3);
    expect(new Set(nodes.map((node) => flag(node, '-n'))).size).toBe(3);
    for (const node of nodes) {
      expect(node.interpreter).toBe('none');
      expect(node.args).toContain('-js');
      expect(flag(node, '--routes')).toBe(
        'nats://127.0.0.1:6222,nats://127.0.0.1:6223,nats://127.0.0.1:6224',
      );
      expect((node['kill_timeout'] as number) >= 10_000).toBe(true);
    }
    const urls = ['nats://127.0.0.1:4222', 'nats://127.0.0.1:4223', 'nats://127.0.0.1:4224'];
    const master = loadModuleConfig(MasterConfigSchema, {
      moduleName: 'discluster-master',
      env: app(apps, 'discluster-master').env ?? {},
    });
    expect(master.ok && master.config).toMatchObject({ nats_url: urls, kv_replicas: 3 });
    const control = loadModuleConfig(ControlConfigSchema, {
      moduleName: 'discluster-control',
      env: app(apps, 'discluster-control').env ?? {},
    });
    expect(control.ok && control.config).toMatchObject({ nats_url: urls, kv_replicas: 3 });
  });

  it('its nodes form a JetStream cluster that serves a bucket with 3 replicas', async () => {
    const data = tempDir();
    const clientPorts = [await getFreePort(), await getFreePort(), await getFreePort()];
    const routePorts = [await getFreePort(), await getFreePort(), await getFreePort()];
    const apps = load({
      DISCLUSTER_DATA_DIR: data,
      NATS_PORTS: clientPorts.join(','),
      NATS_CLUSTER_PORTS: routePorts.join(','),
    });
    for (const name of ['nats-1', 'nats-2', 'nats-3']) {
      const node = app(apps, name);
      spawnProcess(node.script, node.args ?? []);
    }
    const nc = await connect({
      servers: clientPorts.map((port) => `nats://127.0.0.1:${port}`),
      waitOnFirstConnect: true,
    });
    try {
      const kvm = new Kvm(jetstream(nc, { timeout: 5_000 }));
      // Bounded: until the nodes have found each other and elected a JetStream meta leader.
      await waitFor(
        async () => {
          const kv = await kvm.create('eco_cluster', { replicas: 3, history: 1 });
          await kv.put('k', 'v');
          return (await kv.status()).replicas === 3;
        },
        { description: 'a 3-replica KV bucket on the ecosystem nodes', timeoutMs: 60_000, intervalMs: 500 },
      );
    } finally {
      await nc.close();
    }
  }, 120_000);
});
