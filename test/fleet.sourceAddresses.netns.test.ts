import fs from 'node:fs';
import path from 'node:path';
import { makePm2Home, pm2Env, waitFor, type SpawnedProcess } from 'discluster-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLabRig, type LabRig } from './faults/labFleet';
import type { FaultRig } from './faults/support';

/**
 * Issue 17 §4 "An IP per cluster" (seed 000): CONTROL's `source_addresses` in a real fleet whose
 * machines are network namespaces (testing's NetLab). Host `alpha` has three addresses on its link
 * to the `discord` network, all three in its `source_addresses`; it runs three clusters of two
 * shards (max_concurrency 2). discord-sim, in a host of its own, sees each cluster's gateway
 * sessions and REST requests come from that cluster's address: cluster `id` uses address
 * `id % 3`. Bad settings (not an IP, a duplicate, an address the host does not have) stop CONTROL
 * at start with an error naming the key, and nothing starts: no pm2 daemon, no host in the fleet.
 *
 * Needs root (CAP_NET_ADMIN). The lab's namespaces are removed in afterAll, by an exit hook, and by
 * the next lab made on the machine if this process was killed.
 */

const SHARDS = 6;
const ADDRESSES = 3;
const CONTROL_BIN = path.join(__dirname, '..', 'pm2-module-control', 'dist', 'main.js');

let lab: LabRig;
let rig: FaultRig;
let sourceAddresses: readonly string[];

interface SimState {
  liveSessions: Array<{ shard: [number, number]; remoteAddress: string }>;
  rest: { byClient: Record<string, number> };
}

const simState = async (): Promise<SimState> => (await rig.fleet.state()) as unknown as SimState;

beforeAll(async () => {
  lab = await startLabRig({
    bot: 'source-addresses',
    controls: ['alpha'],
    masterHosts: ['master'],
    shards: SHARDS,
    maxConcurrency: 2,
    guilds: 60,
    leaseMs: 6000,
    hostTimeoutMs: 3000,
    controlAddresses: ADDRESSES,
    controlEnv: (host) => ({ DISCLUSTER_SOURCE_ADDRESSES: host.addresses('discord').join(',') }),
  });
  rig = lab.rig;
  sourceAddresses = lab.lab.host('alpha').addresses('discord');
  const master = lab.startMaster('master');
  await master.waitForLine((line) => line.includes('elected leader'), 60_000);
  await rig.allReady('every shard ready', 180_000);
}, 300_000);

afterAll(async () => {
  await lab?.stop();
}, 120_000);

describe('source_addresses: an IP per cluster (network namespaces)', () => {
  it('binds each cluster’s gateway sessions to its own address: cluster id → address id % count', async () => {
    expect(sourceAddresses).toHaveLength(ADDRESSES);
    const status = await rig.fleet.status();
    const clusters = status.hosts.flatMap((host) => host.clusters);
    expect(clusters.map((cluster) => cluster.id).sort()).toEqual([0, 1, 2]);
    const expected = new Map<number, string>();
    for (const cluster of clusters)
      for (const shard of cluster.shards) expected.set(shard.id, sourceAddresses[cluster.id % ADDRESSES]!);
    const live = (await simState()).liveSessions;
    expect(live).toHaveLength(SHARDS);
    for (const session of live)
      expect(session.remoteAddress, `shard ${session.shard[0]}`).toBe(expected.get(session.shard[0]));
    // Every address serves a cluster.
    expect(new Set(live.map((session) => session.remoteAddress))).toEqual(new Set(sourceAddresses));
  });

  it('sends each cluster’s REST requests from its own address', async () => {
    const channels = (
      (await (await fetch(`${rig.fleet.sim.admin}/channels?limit=3`)).json()) as Array<{ id: string }>
    ).map((channel) => channel.id);
    const before = (await simState()).rest.byClient;
    const runId = 'srcaddr';
    const until = Date.now() + 3_000;
    fs.writeFileSync(
      path.join(rig.fleet.host('alpha').home, 'fleetbot-rest.json'),
      JSON.stringify({ runId, channels, until }),
    );
    const postedBy = (clusterId: number): number =>
      rig.fleet
        .botLines('alpha')
        .filter(
          (line) => line['t'] === 'posted' && String(line['nonce']).startsWith(`${runId}:${clusterId}:`),
        ).length;
    await waitFor(() => [0, 1, 2].every((id) => postedBy(id) > 0), {
      timeoutMs: 60_000,
      intervalMs: 250,
      description: 'every cluster posted',
    });
    // Let the storm end and drain.
    await waitFor(() => Date.now() > until + 2_000, { timeoutMs: 60_000, description: 'the storm to end' });
    const after = (await simState()).rest.byClient;
    for (const id of [0, 1, 2]) {
      const address = sourceAddresses[id]!;
      const sent = (after[address] ?? 0) - (before[address] ?? 0);
      expect(sent, `requests from ${address} (cluster ${id})`).toBeGreaterThanOrEqual(postedBy(id));
    }
    // Nothing else on alpha sent REST: every request of the run came from the three addresses.
    const others = Object.keys(after).filter(
      (address) => !sourceAddresses.includes(address) && (after[address] ?? 0) !== (before[address] ?? 0),
    );
    expect(others).toEqual([]);
  });

  it.each([
    [
      'not an IP',
      (own: readonly string[]) => `${own[0]},gateway.local`,
      /entry 2 is not an IPv4 or IPv6 address literal/,
    ],
    ['a duplicate', (own: readonly string[]) => `${own[0]},${own[1]},${own[0]}`, /is listed twice/],
    [
      'an address of another host',
      (_own: readonly string[]) => lab.lab.host('sim').ip('discord'),
      /is not an address of this host/,
    ],
  ])('refuses %s at CONTROL start, naming the key, and starts nothing', async (what, value, message) => {
    const name = `bad${lab.lab.hosts.size}`;
    const host = await lab.lab.addHost(name, { addresses: 2 });
    const home = makePm2Home();
    let control: SpawnedProcess | undefined;
    try {
      const setting = value(host.addresses('discord'));
      control = host.spawn(process.execPath, [CONTROL_BIN], {
        env: {
          ...pm2Env(home),
          DISCLUSTER_NATS_URL: lab.natsUrl,
          DISCLUSTER_BOT: 'source-addresses',
          DISCLUSTER_HOST_ID: name,
          DISCLUSTER_SCRIPT: path.join(__dirname, 'fixtures', 'fleetBot.js'),
          DISCLUSTER_RETRY_MS: '500',
          DISCLUSTER_SOURCE_ADDRESSES: setting,
        },
      });
      const line = await control.waitForLine((text) => text.includes('invalid configuration'), 30_000);
      const record = JSON.parse(line) as { level: number; msg: string; keys: string[] };
      expect(record.level).toBe(50);
      expect(record.keys).toEqual(['source_addresses']);
      expect(record.msg).toMatch(message);
      if (what === 'an address of another host') expect(record.msg).toContain(setting);
      // Nothing started: CONTROL never announced itself, and no pm2 daemon runs for it.
      const status = await rig.fleet.status();
      expect(status.hosts.map((entry) => entry.id)).not.toContain(name);
      expect(fs.readdirSync(home)).toEqual([]);
    } finally {
      await control?.stop();
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
