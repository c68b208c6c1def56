import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { fleetSubjects } from 'discluster-protocol';
import { spawnNode, startNatsServer, stopAll, waitFor, type NatsServerHandle } from 'discluster-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** Configuration errors and the announce retry loop of the foreground bin (no pm2 needed). */

const BIN = path.join(__dirname, '..', 'dist', 'bin.js');
const SECRET = 'hunter2-nats-secret';
const encoder = new TextEncoder();
let nats: NatsServerHandle;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startNatsServer({ jetstream: false });
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  try {
    await nc?.drain().catch(() => undefined);
    await stopAll();
  } finally {
    await nats?.stop();
  }
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('discluster-control configuration', () => {
  it.each([
    [{ DISCLUSTER_RETRY_MS: 'soon' }, 'retry_ms'],
    [{ DISCLUSTER_ROLE: 'leader' }, 'role'],
    [{ DISCLUSTER_RETRYMS: '500' }, 'retryms'],
    [{ 'discluster-control': JSON.stringify({ max_cluster_restarts: '-1' }) }, 'max_cluster_restarts'],
  ])('reports %o naming the key and stays up instead of crash-looping', async (env, key) => {
    const control = spawnNode(BIN, [], {
      env: {
        ...env,
        DISCLUSTER_NATS_URL: nats.url,
        DISCLUSTER_NATS_USER: 'me',
        DISCLUSTER_NATS_PASS: SECRET,
      },
    });
    const line = await control.waitForLine((text) => text.includes('invalid configuration'));
    const record = JSON.parse(line) as { level: number; msg: string; keys: string[] };
    expect(record.level).toBe(50);
    expect(record.keys).toContain(key);
    expect(record.msg).toContain(`${key}:`);
    // Still running a while later: pm2 would otherwise restart it in a loop with the same value.
    const outcome = await Promise.race([control.exited.then(() => 'exited'), sleep(1_500).then(() => 'up')]);
    expect(outcome).toBe('up');
    expect(control.lines.join('\n') + control.stderr()).not.toContain(SECRET);
    const status = await control.stop();
    expect(status.code === 0 || status.signal === 'SIGTERM').toBe(true);
  });

  it('retries its announce every retry_ms until MASTER accepts it', async () => {
    const subjects = fleetSubjects('retrybot');
    const control = spawnNode(BIN, [], {
      env: {
        DISCLUSTER_NATS_URL: nats.url,
        DISCLUSTER_BOT: 'retrybot',
        DISCLUSTER_HOST_ID: 'host-r',
        DISCLUSTER_RETRY_MS: '300',
        DISCLUSTER_NATS_PASS: SECRET,
      },
    });
    // No MASTER at first: the announce gets no answer and is retried.
    await control.waitForLine((text) => text.includes('no MASTER answered'));
    let asked = 0;
    nc.subscribe(subjects.allHostAnnounces, {
      callback: (_error, msg) => {
        asked++;
        // MASTER refuses twice (e.g. not ready), then accepts.
        const reply =
          asked < 3
            ? { v: 1, ok: false, error: { code: 'DISCLUSTER_ERR_INVALID_OPTION', message: 'not yet' } }
            : { v: 1, ok: true };
        msg.respond(encoder.encode(JSON.stringify(reply)));
      },
    });
    await control.waitForLine((text) => text.includes('accepted by MASTER'), 10_000);
    expect(asked).toBe(3);
    // Accepted: no more announces.
    await sleep(900);
    expect(asked).toBe(3);
    expect(control.lines.join('\n')).not.toContain(SECRET);
    await control.stop();
  });
});

describe('discluster-control NATS authentication', () => {
  it.each([
    [
      'user/pass',
      ['--user', 'me', '--pass', SECRET],
      { DISCLUSTER_NATS_USER: 'me', DISCLUSTER_NATS_PASS: SECRET },
    ],
    ['token', ['--auth', SECRET], { DISCLUSTER_NATS_TOKEN: SECRET }],
  ])('connects with %s and heartbeats', async (_name, args, env) => {
    const server = await startNatsServer({ jetstream: false, args });
    try {
      const auth = 'DISCLUSTER_NATS_TOKEN' in env ? { token: SECRET } : { user: 'me', pass: SECRET };
      const master = await connect({ servers: server.url, ...auth });
      let beats = 0;
      master.subscribe(fleetSubjects('authbot').allHeartbeats, {
        callback: () => {
          beats++;
        },
      });
      const control = spawnNode(BIN, [], {
        env: {
          ...env,
          DISCLUSTER_NATS_URL: server.url,
          DISCLUSTER_BOT: 'authbot',
          DISCLUSTER_HEARTBEAT_MS: '100',
        },
      });
      await waitFor(() => beats >= 2, { description: 'heartbeats over an authenticated connection' });
      expect(control.lines.join('\n')).not.toContain(SECRET);
      await control.stop();
      await master.drain();
    } finally {
      await server.stop();
    }
  });
});
