import net from 'node:net';
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import {
  NET_LAB_PREFIX,
  NetLab,
  findNatsServerBinary,
  startDiscordSimProcess,
  type DiscordSimProcess,
  type LabHost,
  type NatsServerHandle,
  type Portal,
  type SpawnedProcess,
} from 'discluster-testing';
import { simFlags, type FleetOptions } from '../support/fleet';
import { FaultRig } from './support';

/**
 * A fault-matrix fleet whose machines are Linux network namespaces (testing's NetLab), so a
 * partition is a link taken down, not a proxy: nats-server, discord-sim, each MASTER and each
 * CONTROL (with its pm2 daemon and clusters) run in hosts of their own, each with its own
 * addresses on two networks, `nats` and `discord`. Cutting a host's `nats` link makes it lose NATS
 * but keep Discord, and the other way round. The test process reaches nats-server and the
 * simulator's admin API through loopback portals, which no cut touches.
 */

export const NATS_PORT = 4222;
export const SIM_PORT = 8080;

export interface LabRig {
  readonly lab: NetLab;
  readonly rig: FaultRig;
  /** MASTER processes by host name. */
  readonly masters: Map<string, SpawnedProcess>;
  /** The NATS URL as lab hosts reach it. */
  readonly natsUrl: string;
  startMaster(hostName: string): SpawnedProcess;
  /** Ends every process, then removes the lab; also after a failed test. */
  stop(): Promise<void>;
}

export interface LabRigOptions extends Omit<FleetOptions, 'hosts' | 'servers' | 'nats'> {
  /** CONTROL hosts (stand-in machines), in start order. */
  readonly controls: readonly string[];
  /** Hosts prepared for a MASTER each (started with startMaster()). */
  readonly masterHosts: readonly string[];
  /** Addresses on each link of every CONTROL host (default 1), e.g. for `source_addresses`. */
  readonly controlAddresses?: number;
  /** Extra `DISCLUSTER_*` settings of a CONTROL, from its lab host (e.g. its addresses). */
  readonly controlEnv?: (host: LabHost) => Readonly<Record<string, string>>;
}

/** Resolves once a client through `portal` receives nats-server's INFO greeting. */
function greets(portal: Portal): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(portal.port, '127.0.0.1');
    let received = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2_000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
    socket.on('data', (chunk) => {
      received += chunk.toString('utf8');
      if (received.includes('\r\n')) done(received.startsWith('INFO '));
    });
  });
}

/** nats-server with JetStream inside `host`, bound to its address on the `nats` network only. */
async function startLabNats(lab: NetLab, host: LabHost): Promise<NatsServerHandle> {
  const bin = findNatsServerBinary();
  // Named like the lab's own directories, so a sweep after a SIGKILLed run removes it too.
  const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), `${NET_LAB_PREFIX}${process.pid}-nats-`));
  const args = ['-js', '-sd', storeDir, '-a', host.ip('nats'), '-p', String(NATS_PORT)];
  const launch = async (): Promise<SpawnedProcess> => {
    const server = host.spawn(bin, args);
    const deadline = Date.now() + 30_000;
    while (!(await greets(portal))) {
      if (Date.now() > deadline || server.pid < 0)
        throw new Error(`nats-server in ${host.ns} did not greet within 30 s:\n${server.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return server;
  };
  const portal = await lab.portal(host, NATS_PORT, host.ip('nats'));
  let server = await launch();
  let log = '';
  return {
    url: portal.url('nats'),
    port: portal.port,
    get pid() {
      return server.pid;
    },
    storeDir,
    async stop() {
      await server.stop();
      await portal.close();
      fs.rmSync(storeDir, { recursive: true, force: true });
    },
    async restart() {
      log += server.stderr();
      await server.stop();
      server = await launch();
    },
    log: () => log + server.stderr(),
  };
}

/** discord-sim inside `host` on its `discord` address; `admin` (and state()) go through a portal. */
async function startLabSim(lab: NetLab, host: LabHost, options: FleetOptions): Promise<DiscordSimProcess> {
  const sim = await startDiscordSimProcess(
    { ...simFlags(options), host: host.ip('discord'), port: SIM_PORT },
    { prefix: host.prefix },
  );
  const portal = await lab.portal(host, SIM_PORT, host.ip('discord'));
  const admin = `${portal.url('http')}/_sim`;
  return {
    rest: sim.rest,
    gateway: sim.gateway,
    admin,
    process: sim.process,
    state: async () => (await fetch(`${admin}/state`)).json() as Promise<Record<string, unknown>>,
    async stop() {
      await sim.stop();
      await portal.close();
    },
  };
}

/**
 * Makes the lab (hosts `nats`, `sim`, the MASTER hosts and the CONTROL hosts) and starts the fleet
 * in it; the lab is removed if anything fails.
 */
export async function startLabRig(options: LabRigOptions): Promise<LabRig> {
  const lab = await NetLab.create({ networks: ['nats', 'discord'] });
  try {
    const natsHost = await lab.addHost('nats', { networks: ['nats'] });
    const simHost = await lab.addHost('sim', { networks: ['discord'] });
    for (const name of options.masterHosts) await lab.addHost(name);
    for (const name of options.controls)
      await lab.addHost(name, { addresses: options.controlAddresses ?? 1 });
    const natsUrl = `nats://${natsHost.ip('nats')}:${NATS_PORT}`;
    const fleetOptions: FleetOptions = {
      ...options,
      hosts: options.controls.map((id) => ({
        id,
        prefix: lab.host(id).prefix,
        env: { DISCLUSTER_NATS_URL: natsUrl, ...options.controlEnv?.(lab.host(id)) },
      })),
      servers: async () => {
        const nats = await startLabNats(lab, natsHost);
        try {
          return { nats, sim: await startLabSim(lab, simHost, fleetOptions) };
        } catch (error) {
          await nats.stop();
          throw error;
        }
      },
    };
    const rig = await FaultRig.start(fleetOptions);
    const masters = new Map<string, SpawnedProcess>();
    return {
      lab,
      rig,
      masters,
      natsUrl,
      startMaster(hostName) {
        const master = rig.fleet.startMaster(
          { DISCLUSTER_NATS_URL: natsUrl, DISCLUSTER_DISCORD_API: rig.fleet.sim.rest },
          lab.host(hostName).prefix,
        );
        masters.set(hostName, master);
        return master;
      },
      async stop() {
        try {
          await rig.stop();
        } finally {
          await lab.destroy();
        }
      },
    };
  } catch (error) {
    await lab.destroy();
    throw error;
  }
}
