import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetLab, listNamespaces, removeStaleLabs, type LabHost } from '../src/netLab';
import { stopAll } from '../src/processes';
import { waitFor } from '../src/waitFor';

// Needs root (CI runs as root): without CAP_NET_ADMIN the lab's creation fails the suite with a
// message saying so (checked below by a child that drops its privileges).

const run = promisify(execFile);
let lab: NetLab;

/** A TCP echo-once server inside `host` on `address:port`, reporting 'listening' when bound. */
async function serveIn(host: LabHost, address: string, port: number): Promise<void> {
  const server = host.spawn(process.execPath, [
    '-e',
    // A client that resets its socket must not crash the server: hence the error handler.
    `require('node:net').createServer((s) => { s.on('error', () => {}); s.end('hello from ${host.name}\\n'); })` +
      `.listen(${port}, '${address}', () => console.log('listening'))`,
  ]);
  await server.waitForLine((line) => line === 'listening', 20_000);
}

/**
 * After a heal: the first connection may still meet a neighbour entry that failed during the cut
 * (EHOSTUNREACH) on a loaded machine; connectivity must come back, so connect until it does.
 */
async function connectAfterHeal(host: LabHost, address: string, port: number): Promise<string> {
  let last = '';
  await waitFor(
    async () => {
      last = await connectFrom(host, address, port);
      return !last.startsWith('error') && last !== 'timeout';
    },
    { description: `a connection to ${address}:${port} after the heal`, timeoutMs: 30_000, intervalMs: 250 },
  ).catch(() => undefined);
  return last;
}

/** Connects from inside `host` (a child in its namespace) and returns what it read or the error. */
async function connectFrom(host: LabHost, address: string, port: number, timeoutMs = 2_000): Promise<string> {
  const { stdout } = await host.exec(process.execPath, [
    '-e',
    `const s = require('node:net').connect(${port}, '${address}');` +
      `const done = (t) => { console.log(t); process.exit(0); };` +
      `s.setTimeout(${timeoutMs}, () => done('timeout'));` +
      `s.on('data', (d) => done(String(d).trim()));` +
      `s.on('error', (e) => done('error ' + e.code));`,
  ]);
  return stdout.trim();
}

beforeAll(async () => {
  lab = await NetLab.create({ networks: ['nats', 'discord'] });
}, 60_000);

afterAll(async () => {
  await stopAll(2_000);
  await lab?.destroy();
}, 60_000);

describe('NetLab', () => {
  it('gives each host its own addresses, on the networks it is plugged into only', async () => {
    const server = await lab.addHost('server', { networks: ['nats'] });
    const both = await lab.addHost('both', { addresses: 3 });
    expect(server.ip()).toBe('10.213.1.1');
    expect(both.addresses('nats')).toEqual(['10.213.1.2', '10.213.1.3', '10.213.1.4']);
    expect(both.ip('discord')).toBe('10.213.2.1');
    expect(() => server.ip('discord')).toThrow(/no link on discord/);
    // Addresses exist only inside the namespaces: the root namespace has none of them.
    const { stdout: rootAddrs } = await run('ip', ['-o', 'addr']);
    expect(rootAddrs).not.toMatch(/10\.213\./);
    const { stdout: inside } = await both.exec('ip', ['-o', '-4', 'addr', 'show', 'dev', 'nats']);
    expect(inside).toMatch(/10\.213\.1\.3\/24/);
  });

  it('spawns inside a host: same pid as the command, in the host namespace, env passed', async () => {
    const host = lab.host('both');
    const child = host.spawn(
      process.execPath,
      ['-e', 'console.log(process.env.LAB_MARK); setInterval(() => {}, 1000)'],
      {
        env: { LAB_MARK: 'marked' },
      },
    );
    await child.waitForLine((line) => line === 'marked');
    // `ip netns exec` execs in place: the pid we hold is node's, so kill() reaches it.
    expect(fs.readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim()).toBe('node');
    const { stdout } = await run('ip', ['netns', 'identify', String(child.pid)]);
    expect(stdout.trim()).toBe(host.ns);
    await child.stop(2_000);
  });

  it('connects between hosts over TCP; a cut link drops traffic silently, a healed one carries it', async () => {
    const server = lab.host('server');
    const client = lab.host('both');
    await serveIn(server, server.ip(), 4000);
    expect(await connectFrom(client, server.ip(), 4000)).toBe('hello from server');
    // Each of the client's addresses is usable as a source (per-cluster source addresses).
    const { stdout } = await client.exec(process.execPath, [
      '-e',
      `const s = require('node:net').connect({ port: 4000, host: '${server.ip()}', localAddress: '${client.addresses('nats')[2]}' });` +
        `s.on('connect', () => { console.log(s.localAddress); s.destroy(); });`,
    ]);
    expect(stdout.trim()).toBe(client.addresses('nats')[2]);

    await client.cut('nats');
    expect(client.isCut('nats')).toBe(true);
    // A pulled cable: no error, no reset, just nothing.
    expect(await connectFrom(client, server.ip(), 4000)).toBe('timeout');
    await client.heal('nats');
    expect(await connectAfterHeal(client, server.ip(), 4000)).toBe('hello from server');
  });

  it('cuts one network of a host and leaves its other link working', async () => {
    const client = lab.host('both');
    const sim = await lab.addHost('sim', { networks: ['discord'] });
    await serveIn(sim, sim.ip(), 5000);
    await client.cut('nats');
    expect(await connectFrom(client, sim.ip(), 5000)).toBe('hello from sim');
    expect(await connectFrom(client, lab.host('server').ip(), 4000)).toBe('timeout');
    await client.heal();
    expect(await connectAfterHeal(client, lab.host('server').ip(), 4000)).toBe('hello from server');
  });

  it('cuts only the traffic between two hosts, silently, and heals it', async () => {
    const server = lab.host('server');
    const client = lab.host('both');
    const third = await lab.addHost('third', { networks: ['nats'] });
    await lab.cutBetween(client, server);
    expect(await connectFrom(client, server.ip(), 4000)).toBe('timeout');
    // Every address of the client is cut off, not just its first.
    expect(await connectFrom(server, client.addresses('nats')[2]!, 1)).toBe('timeout');
    expect(await connectFrom(third, server.ip(), 4000)).toBe('hello from server');
    await lab.healBetween(client, server);
    expect(await connectAfterHeal(client, server.ip(), 4000)).toBe('hello from server');
  });

  it('reaches a lab server from the test process through a loopback portal, whatever links are cut', async () => {
    const sim = lab.host('sim');
    const portal = await lab.portal(sim, 5000);
    const read = () =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect(portal.port, '127.0.0.1');
        socket.on('data', (data) => resolve(String(data).trim()));
        socket.on('error', reject);
      });
    expect(await read()).toBe('hello from sim');
    await sim.cut();
    expect(await read()).toBe('hello from sim');
    await sim.heal();
    await portal.close();
  });

  it('destroy() leaves no namespace, link or process behind, even with servers still running', async () => {
    const other = await NetLab.create();
    const a = await other.addHost('a');
    await serveIn(a, a.ip(), 4100);
    const [server] = (await run('ip', ['netns', 'pids', a.ns])).stdout.trim().split('\n').map(Number);
    expect(server).toBeGreaterThan(0);
    const before = await listNamespaces();
    expect(before.filter((ns) => ns.startsWith(`${other.name}-`)).sort()).toEqual(
      [a.ns, `${other.name}-sw`].sort(),
    );
    await other.destroy();
    expect((await listNamespaces()).filter((ns) => ns.startsWith(`${other.name}-`))).toEqual([]);
    expect(fs.existsSync(`/proc/${String(server)}`)).toBe(false);
    // Nothing was ever created in the root namespace.
    const { stdout: links } = await run('ip', ['-o', 'link']);
    expect(links).not.toMatch(/br-lan|h1n0/);
  });

  it('sweeps away the labs of a test process that was SIGKILLed (no hook could run)', async () => {
    const netLab = path.resolve(__dirname, '..', 'dist', 'netLab.js');
    const { stdout } = await run(process.execPath, [
      '-e',
      `require(${JSON.stringify(netLab)}).NetLab.create().then(async (lab) => {` +
        `const host = await lab.addHost('a'); console.log(host.ns); process.kill(process.pid, 'SIGKILL'); })`,
    ]).catch((error: { stdout: string }) => error);
    const orphan = stdout.trim();
    expect(orphan).toMatch(/^dct-\d+-1-a$/);
    expect(await listNamespaces()).toContain(orphan);
    const removed = await removeStaleLabs();
    expect(removed).toContain(orphan);
    expect(removed.every((ns) => !ns.startsWith(`dct-${process.pid}-`))).toBe(true);
    expect(await listNamespaces()).not.toContain(orphan);
    // Its temporary directory (the portals' sockets) goes too.
    const orphanPid = orphan.split('-')[1];
    expect(fs.readdirSync(os.tmpdir()).filter((entry) => entry.startsWith(`dct-${orphanPid}-`))).toEqual([]);
  });

  it('fails with a message naming root / CAP_NET_ADMIN when it may not make namespaces', async () => {
    const netLab = path.resolve(__dirname, '..', 'dist', 'netLab.js');
    // A child without any capability (setpriv drops them all), as a non-root CI would run.
    const result = await run('setpriv', [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      '--inh-caps=-all',
      '--bounding-set=-all',
      process.execPath,
      '-e',
      `require(${JSON.stringify(netLab)}).NetLab.create().then(() => console.log('created'), (e) => console.log(e.message))`,
    ]);
    expect(result.stdout).toMatch(/NetLab needs root \/ CAP_NET_ADMIN/);
    expect(result.stdout).not.toMatch(/created/);
  });
});
