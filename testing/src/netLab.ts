/**
 * Real network partitions for tests: hosts in Linux network namespaces made here, each attached by
 * one veth pair per network to a bridge that lives in a "switch" namespace of its own. Nothing is
 * created in the root namespace but the namespace names: no link, address or route, so the
 * machine's own network is never touched. A partition is a link taken down at the switch (a pulled
 * cable: the host notices nothing, its packets just vanish), not a proxy.
 *
 * Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for `ip netns`). Every namespace is named
 * `dct-<pid>-<lab>-…` and removed by destroy(), by an exit hook, and by the next lab made on the
 * machine once the pid that made it is gone.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { lazyExitHook } from './exitHook.js';
import { spawnProcess, type SpawnOptions, type SpawnedProcess } from './processes.js';

/** Every namespace a lab makes starts with this, then the pid of the process that made it. */
export const NET_LAB_PREFIX = 'dct-';
// A small private range, used only inside the lab's namespaces: network i is 10.213.(i+1).0/24.
const SUBNET_PREFIX = '10.213';
const NAME_PATTERN = /^[a-z][a-z0-9]{0,10}$/;
const IP_TIMEOUT_MS = 15_000;
// A locally administered unicast MAC that no port of a lab has: frames sent to it are dropped.
const NOWHERE_MAC = '02:00:5e:de:ad:01';

export interface NetLabOptions {
  /** Networks (a bridge and a /24 each), e.g. `['nats', 'discord']`; default `['lan']`. */
  readonly networks?: readonly string[];
}

export interface LabHostOptions {
  /** The networks this host is plugged into (a link each); default every network of the lab. */
  readonly networks?: readonly string[];
  /** Addresses on each of its links (default 1), e.g. one per cluster for `source_addresses`. */
  readonly addresses?: number;
}

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
}

export interface LabHost {
  readonly name: string;
  /** The host's network namespace. */
  readonly ns: string;
  /** `ip netns exec <ns>`: as `prefix` of spawnProcess()/spawnNode(), runs a command in this host. */
  readonly prefix: readonly string[];
  /** Its first address on `network` (default: its first network). */
  ip(network?: string): string;
  /** Every address of its link on `network` (default: its first network). */
  addresses(network?: string): readonly string[];
  /** Runs a command inside the host to its end; rejects with its stderr on failure. */
  exec(command: string, args?: readonly string[], options?: { env?: NodeJS.ProcessEnv }): Promise<ExecResult>;
  /** Starts a long-running command inside the host (tracked by stopAll(), ended by pid). */
  spawn(command: string, args?: readonly string[], options?: SpawnOptions): SpawnedProcess;
  /** Takes its link on `network` down at the switch (default: every link): the host is cut off. */
  cut(network?: string): Promise<void>;
  /** Brings the link(s) up again. */
  heal(network?: string): Promise<void>;
  isCut(network: string): boolean;
}

/** A loopback port in the test's own namespace that forwards to an address inside the lab. */
export interface Portal {
  readonly port: number;
  url(scheme: string): string;
  close(): Promise<void>;
}

interface Link {
  readonly network: string;
  /** Its end in the switch namespace (the end cut() takes down). */
  readonly switchIf: string;
  readonly addresses: string[];
  cut: boolean;
}

const run = promisify(execFile);
let labCounter = 0;
// Namespaces of labs not destroyed yet, for the exit hook.
const liveNamespaces = new Set<string>();

// 'exit' handlers must be synchronous: SIGKILL what still runs in our namespaces, then delete them.
const installExitHook = lazyExitHook(() => {
  for (const ns of liveNamespaces) removeNamespaceSync(ns);
});

async function ip(args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await run('ip', [...args], { timeout: IP_TIMEOUT_MS });
    return stdout;
  } catch (error) {
    const failed = error as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')} failed: ${(failed.stderr ?? '').trim() || failed.message}`);
  }
}

/** Pids of the processes inside `ns` (never our own: the test runs in the root namespace). */
function pidsInSync(ns: string): number[] {
  try {
    return execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: IP_TIMEOUT_MS })
      .split('\n')
      .map(Number)
      .filter((pid) => Number.isInteger(pid) && pid > 0 && pid !== process.pid);
  } catch {
    return [];
  }
}

function removeNamespaceSync(ns: string): void {
  // Only processes in a namespace a lab made, so only what a test started there.
  for (const pid of pidsInSync(ns)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore', timeout: IP_TIMEOUT_MS });
  } catch {
    // Already deleted.
  }
  liveNamespaces.delete(ns);
}

// How long destroy() waits for the processes it killed to disappear.
const DESTROY_WAIT_MS = 10_000;

/** Resolves once no pid has a /proc entry (dead and reaped), or after `boundMs`. */
async function waitUntilGone(pids: readonly number[], boundMs: number): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (pids.some((pid) => fs.existsSync(`/proc/${pid}`)) && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 20));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Names of every namespace on the machine (`ip netns list` prints `name (id: n)`). */
export async function listNamespaces(): Promise<string[]> {
  return (await ip(['netns', 'list']))
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name !== '');
}

/**
 * Deletes lab namespaces (and the labs' temporary directories) left by test processes that have
 * died: a crashed or SIGKILLed run. Labs of live processes, other runs' included, are left alone.
 */
export async function removeStaleLabs(): Promise<string[]> {
  const stale = (name: string): boolean => {
    const match = new RegExp(`^${NET_LAB_PREFIX}(\\d+)-`).exec(name);
    return match !== null && !pidAlive(Number(match[1]));
  };
  const removed: string[] = [];
  for (const ns of await listNamespaces()) {
    if (!stale(ns)) continue;
    removeNamespaceSync(ns);
    removed.push(ns);
  }
  for (const entry of fs.readdirSync(os.tmpdir()))
    if (stale(entry)) fs.rmSync(path.join(os.tmpdir(), entry), { recursive: true, force: true });
  return removed;
}

const RELAY_SCRIPT = `
const net = require('node:net');
const [socketPath, host, port] = process.argv.slice(1);
net.createServer((client) => {
  const upstream = net.connect(Number(port), host);
  for (const [a, b] of [[client, upstream], [upstream, client]]) {
    a.pipe(b);
    a.on('error', () => b.destroy());
    a.on('close', () => b.destroy());
  }
}).listen(socketPath, () => console.log('ready'));
`;

export class NetLab {
  public readonly hosts = new Map<string, LabHost>();
  private readonly switchNs: string;
  private readonly namespaces: string[] = [];
  private readonly nextAddress = new Map<string, number>();
  private readonly portals: Portal[] = [];
  /** The networks each host is plugged into, by host name. */
  private readonly hostNetworks = new Map<string, readonly string[]>();
  private readonly tmpDir: string;
  private destroyed = false;

  private constructor(
    public readonly name: string,
    public readonly networks: readonly string[],
  ) {
    this.switchNs = `${name}-sw`;
    // Unix sockets live in the filesystem, which every namespace shares: the portals' way in.
    this.tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-`));
  }

  /** Makes the switch namespace with one bridge per network. */
  public static async create(options: NetLabOptions = {}): Promise<NetLab> {
    const networks = options.networks ?? ['lan'];
    for (const network of networks)
      if (!NAME_PATTERN.test(network)) throw new Error(`network name ${network} must match ${NAME_PATTERN}`);
    if (networks.length > 200) throw new Error('at most 200 networks');
    await removeStaleLabs().catch(() => undefined);
    const lab = new NetLab(`${NET_LAB_PREFIX}${process.pid}-${++labCounter}`, networks);
    try {
      await lab.addNamespace(lab.switchNs);
      for (const network of networks) {
        await ip(['-n', lab.switchNs, 'link', 'add', `br-${network}`, 'type', 'bridge']);
        await ip(['-n', lab.switchNs, 'link', 'set', `br-${network}`, 'up']);
      }
    } catch (error) {
      await lab.destroy();
      throw error;
    }
    return lab;
  }

  private async addNamespace(ns: string): Promise<void> {
    try {
      await ip(['netns', 'add', ns]);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new Error(`NetLab needs root / CAP_NET_ADMIN (and CAP_SYS_ADMIN for ip netns): ${why}`);
    }
    installExitHook();
    liveNamespaces.add(ns);
    this.namespaces.push(ns);
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  private allocate(network: string): string {
    const index = this.networks.indexOf(network);
    const next = this.nextAddress.get(network) ?? 1;
    if (next > 254) throw new Error(`network ${network} has no address left`);
    this.nextAddress.set(network, next + 1);
    return `${SUBNET_PREFIX}.${index + 1}.${next}`;
  }

  /** A host: its own namespace, a link into each of its networks, `addresses` IPs on each. */
  public async addHost(name: string, options: LabHostOptions = {}): Promise<LabHost> {
    if (this.destroyed) throw new Error('the lab is destroyed');
    if (!NAME_PATTERN.test(name)) throw new Error(`host name ${name} must match ${NAME_PATTERN}`);
    if (this.hosts.has(name)) throw new Error(`host ${name} exists`);
    const networks = options.networks ?? this.networks;
    for (const network of networks)
      if (!this.networks.includes(network)) throw new Error(`no network ${network} in the lab`);
    const ns = `${this.name}-${name}`;
    const hostIndex = this.hosts.size + 1;
    await this.addNamespace(ns);
    const links = new Map<string, Link>();
    for (const network of networks) {
      // Interface names are per namespace: the switch end is short and unique there, the host end
      // is named after the network. Created in place, so nothing appears in the root namespace.
      const switchIf = `h${hostIndex}n${this.networks.indexOf(network)}`;
      await ip([
        '-n',
        this.switchNs,
        'link',
        'add',
        switchIf,
        'type',
        'veth',
        'peer',
        'name',
        network,
        'netns',
        ns,
      ]);
      await ip(['-n', this.switchNs, 'link', 'set', switchIf, 'master', `br-${network}`, 'up']);
      const addresses: string[] = [];
      for (let i = 0; i < (options.addresses ?? 1); i++) {
        const address = this.allocate(network);
        await ip(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', network]);
        addresses.push(address);
      }
      await ip(['-n', ns, 'link', 'set', network, 'up']);
      links.set(network, { network, switchIf, addresses, cut: false });
    }
    const prefix = ['ip', 'netns', 'exec', ns] as const;
    const linkOf = (network?: string): Link => {
      const link = links.get(network ?? networks[0] ?? '');
      if (!link) throw new Error(`host ${name} has no link on ${network ?? '(any network)'}`);
      return link;
    };
    const setLinks = async (network: string | undefined, state: 'up' | 'down'): Promise<void> => {
      for (const link of network === undefined ? links.values() : [linkOf(network)]) {
        await ip(['-n', this.switchNs, 'link', 'set', link.switchIf, state]);
        link.cut = state === 'down';
      }
    };
    const host: LabHost = {
      name,
      ns,
      prefix,
      ip: (network) => linkOf(network).addresses[0] as string,
      addresses: (network) => [...linkOf(network).addresses],
      async exec(command, args = [], execOptions = {}) {
        const { stdout, stderr } = await run(prefix[0], [...prefix.slice(1), command, ...args], {
          env: { ...process.env, ...execOptions.env },
          timeout: 60_000,
          maxBuffer: 16 * 1024 * 1024,
        }).catch((error: unknown) => {
          const failed = error as { stderr?: string; message: string };
          throw new Error(`${command} in ${ns} failed: ${(failed.stderr ?? '').trim() || failed.message}`);
        });
        return { stdout, stderr };
      },
      spawn: (command, args = [], spawnOptions = {}) =>
        spawnProcess(command, [...args], { ...spawnOptions, prefix }),
      cut: (network) => setLinks(network, 'down'),
      heal: async (network) => {
        await setLinks(network, 'up');
        // Address lookups that failed while the link was down are cached as FAILED for a while: a
        // connect right after the heal would get EHOSTUNREACH. Forget them on every host of the lab.
        for (const other of this.hosts.values())
          await ip(['-n', other.ns, 'neigh', 'flush', 'nud', 'failed']).catch(() => undefined);
      },
      isCut: (network) => linkOf(network).cut,
    };
    this.hosts.set(name, host);
    this.hostNetworks.set(name, networks);
    return host;
  }

  /**
   * Cuts only the traffic between two hosts, both ways, on `network` (default: every network they
   * share), their links staying up: each gets a permanent neighbour entry that sends frames for the
   * other's addresses to a MAC no port has, so they vanish at the switch as after a link cut (no
   * error, unlike a blackhole route). Only the two hosts' own neighbour tables change.
   */
  public async cutBetween(a: LabHost, b: LabHost, network?: string): Promise<void> {
    for (const { from, address, shared } of this.crossAddresses(a, b, network))
      await ip([
        '-n',
        from.ns,
        'neigh',
        'replace',
        address,
        'lladdr',
        NOWHERE_MAC,
        'dev',
        shared,
        'nud',
        'permanent',
      ]);
  }

  /** Undoes cutBetween(): the neighbour entries go, and ARP finds the real ones again. */
  public async healBetween(a: LabHost, b: LabHost, network?: string): Promise<void> {
    for (const { from, address, shared } of this.crossAddresses(a, b, network))
      await ip(['-n', from.ns, 'neigh', 'del', address, 'dev', shared]).catch(() => undefined);
  }

  /** Each host of the pair with each address of the other on a network they share (`network` only, if given). */
  private *crossAddresses(
    a: LabHost,
    b: LabHost,
    network: string | undefined,
  ): Generator<{ from: LabHost; address: string; shared: string }> {
    for (const shared of this.sharedNetworks(a, b, network))
      for (const [from, to] of [
        [a, b],
        [b, a],
      ] as const)
        for (const address of to.addresses(shared)) yield { from, address, shared };
  }

  private sharedNetworks(a: LabHost, b: LabHost, network?: string): string[] {
    const ofA = this.hostNetworks.get(a.name) ?? [];
    const ofB = this.hostNetworks.get(b.name) ?? [];
    const shared = ofA.filter((name) => ofB.includes(name) && (network === undefined || name === network));
    if (shared.length === 0)
      throw new Error(`hosts ${a.name} and ${b.name} share no network${network ? ` ${network}` : ''}`);
    return shared;
  }

  public host(name: string): LabHost {
    const host = this.hosts.get(name);
    if (!host) throw new Error(`no host ${name} in the lab`);
    return host;
  }

  /**
   * A port on 127.0.0.1 of the test's namespace forwarding to `address:port` inside `host`, through
   * a unix socket and a relay running in that host: the test reaches lab servers without any
   * address or route in the root namespace, and the relay never crosses a link a test cuts.
   */
  public async portal(host: LabHost, port: number, address = host.ip()): Promise<Portal> {
    const socketPath = path.join(this.tmpDir, `p${this.portals.length}.sock`);
    const relay = host.spawn(process.execPath, ['-e', RELAY_SCRIPT, socketPath, address, String(port)]);
    await relay.waitForLine((line) => line === 'ready', 30_000);
    const sockets = new Set<net.Socket>();
    const server = net.createServer((client) => {
      const upstream = net.connect({ path: socketPath });
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        sockets.add(a);
        a.pipe(b);
        a.on('error', () => b.destroy());
        a.on('close', () => {
          sockets.delete(a);
          b.destroy();
        });
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const localPort = (server.address() as net.AddressInfo).port;
    let closed = false;
    const portal: Portal = {
      port: localPort,
      url: (scheme) => `${scheme}://127.0.0.1:${localPort}`,
      async close() {
        if (closed) return;
        closed = true;
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await relay.stop(2_000);
      },
    };
    this.portals.push(portal);
    return portal;
  }

  /**
   * Removes everything the lab made: portals, whatever still runs in its namespaces (SIGKILL, by
   * pid), the namespaces (and with them every veth and bridge). Safe to call twice.
   */
  public async destroy(): Promise<void> {
    this.destroyed = true;
    for (const portal of this.portals.splice(0)) await portal.close().catch(() => undefined);
    const killed = this.namespaces.flatMap((ns) => pidsInSync(ns));
    // Hosts first, the switch last (its veth ends go with it).
    for (const ns of this.namespaces.splice(0).reverse()) removeNamespaceSync(ns);
    fs.rmSync(this.tmpDir, { recursive: true, force: true });
    // SIGKILL is asynchronous: wait until the processes are gone (our children also reaped), so
    // nothing a lab started outlives destroy(). Bounded: a process another parent never reaps stays.
    await waitUntilGone(killed, DESTROY_WAIT_MS);
  }
}

/** Shorthand for NetLab.create(). */
export function createNetLab(options: NetLabOptions = {}): Promise<NetLab> {
  return NetLab.create(options);
}
