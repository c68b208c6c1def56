import fs from 'node:fs';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { HostHeartbeatSchema, fleetSubjects, type HostHeartbeat } from 'discluster-protocol';
import { startNatsServer, waitFor, type NatsServerHandle } from 'discluster-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killPm2, makePm2Home, teardownPm2, pm2Cli, pm2List, processesMentioning } from './pm2Cli';

/**
 * The module entry under a real pm2 daemon, configured the way an operator does it:
 * `pm2 set discluster-control:<key> <value>` (pm2 writes module_conf.json, restarts the app named
 * `discluster-control` and hands it the section as `process.env['discluster-control']`).
 * `pm2 install <tgz>` itself is not exercised here (see the package README).
 */

const MAIN = path.join(__dirname, '..', 'dist', 'main.js');
const NAME = 'discluster-control';
const subjects = fleetSubjects('pmbot');
const decoder = new TextDecoder();
const encoder = new TextEncoder();

let nats: NatsServerHandle;
let nc: NatsConnection;
let home: string;
const heartbeats: HostHeartbeat[] = [];

const describeModule = async () => (await pm2List(home)).processes.find((proc) => proc['name'] === NAME);
const outLog = () => {
  try {
    return fs.readFileSync(path.join(home, 'logs', `${NAME}-out.log`), 'utf8');
  } catch {
    return '';
  }
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  nats = await startNatsServer({ jetstream: false });
  nc = await connect({ servers: nats.url });
  nc.subscribe(subjects.announce, {
    callback: (_error, msg) => msg.respond(encoder.encode(JSON.stringify({ v: 1, ok: true }))),
  });
  nc.subscribe(subjects.allHeartbeats, {
    callback: (_error, msg) =>
      heartbeats.push(HostHeartbeatSchema.parse(JSON.parse(decoder.decode(msg.data)))),
  });
  home = makePm2Home();
  for (const [key, value] of [
    ['nats_url', nats.url],
    ['bot', 'pmbot'],
    ['host_id', 'host-p'],
    ['heartbeat_ms', '200'],
  ]) {
    await pm2Cli(home, 'set', `${NAME}:${key}`, value!);
  }
});

afterAll(async () => {
  // Each step runs even if an earlier one fails: nothing may outlive the suite.
  try {
    await nc?.drain().catch(() => undefined);
    if (home) await teardownPm2(home);
  } finally {
    await nats?.stop();
  }
});

describe('discluster-control under pm2', () => {
  it('reads its pm2 settings and heartbeats', async () => {
    await pm2Cli(home, 'start', MAIN, '--name', NAME);
    await waitFor(() => heartbeats.some((beat) => beat.hostId === 'host-p'), {
      description: 'heartbeat from the pm2-run CONTROL',
      timeoutMs: 20_000,
    });
  });

  it('a bad `pm2 set` value is reported naming the key, and the module stays online', async () => {
    await pm2Cli(home, 'set', `${NAME}:retry_ms`, 'soon');
    await waitFor(() => outLog().includes('retry_ms: must be a whole number'), {
      description: 'config error in the module log',
      timeoutMs: 20_000,
    });
    const restarts = (await describeModule())?.['pm2_env']['restart_time'];
    const beats = heartbeats.length;
    await sleep(2_000);
    const proc = await describeModule();
    expect(proc?.['pm2_env']['status']).toBe('online');
    // No crash loop, and no heartbeats from a CONTROL that is not configured.
    expect(proc?.['pm2_env']['restart_time']).toBe(restarts);
    expect(heartbeats.length).toBeLessThanOrEqual(beats + 1);
  });

  it('fixing the value with `pm2 set` brings it back', async () => {
    await pm2Cli(home, 'set', `${NAME}:retry_ms`, '500');
    const beats = heartbeats.length;
    await waitFor(() => heartbeats.length > beats + 2, {
      description: 'heartbeats resume',
      timeoutMs: 20_000,
    });
  });

  it('leaves no process behind once torn down', async () => {
    await pm2Cli(home, 'delete', NAME);
    await killPm2(home);
    await waitFor(() => processesMentioning(home).length === 0, {
      description: `no process of ${home} left`,
      timeoutMs: 15_000,
    });
  });
});
