import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  ErrorCode,
  fleetSubjects,
  generateHostKeyPair,
  sealForHost,
  tokenContext,
} from 'discluster-protocol';
import { spawnNode, startNatsServer, stopAll, waitFor, type NatsServerHandle } from 'discluster-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** Configuration errors and the announce retry loop of the foreground bin (no pm2 needed). */

const BIN = path.join(__dirname, '..', 'dist', 'main.js');
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
  it.each<[Record<string, string>, string, string?]>([
    [{ DISCLUSTER_RETRY_MS: 'soon' }, 'retry_ms'],
    [{ DISCLUSTER_ROLE: 'leader' }, 'role'],
    [{ DISCLUSTER_RETRYMS: '500' }, 'retryms'],
    [{ 'discluster-control': JSON.stringify({ max_cluster_restarts: '-1' }) }, 'max_cluster_restarts'],
    [
      { DISCLUSTER_SOURCE_ADDRESSES: '127.0.0.1,eth0' },
      'source_addresses',
      'source_addresses: entry 2 is not an IPv4 or IPv6 address literal',
    ],
    [
      { DISCLUSTER_SOURCE_ADDRESSES: '127.0.0.1,127.0.0.1' },
      'source_addresses',
      'source_addresses: 127.0.0.1 is listed twice',
    ],
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): no machine has it.
    [
      { DISCLUSTER_SOURCE_ADDRESSES: '127.0.0.1,192.0.2.77' },
      'source_addresses',
      'source_addresses: 192.0.2.77 is not an address of this host',
    ],
  ])('reports %o naming the key and stays up instead of crash-looping', async (env, key, text) => {
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
    expect(record.msg).toContain(text ?? `${key}:`);
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

describe('discluster-control with a host id another running CONTROL uses (issue 13 f)', () => {
  it('logs MASTER’s refusal as a clear error, keeps asking, and ignores commands for the other CONTROL', async () => {
    const bot = 'dupbot';
    const hostId = 'host-d';
    const subjects = fleetSubjects(bot);
    let asked = 0;
    const message =
      `two running CONTROLs use host_id "${hostId}": MASTER refused the second and assigns it nothing. ` +
      'Set a unique host_id on that machine (pm2 set discluster-control:host_id <name>) and restart its CONTROL';
    // MASTER's side: this CONTROL is the second of its host id.
    nc.subscribe(subjects.hostAnnounce(hostId), {
      callback: (_error, msg) => {
        asked++;
        msg.respond(
          encoder.encode(
            JSON.stringify({ v: 1, ok: false, error: { code: ErrorCode.DuplicateHostId, message } }),
          ),
        );
      },
    });
    await nc.flush();
    const control = spawnNode(BIN, [], {
      env: {
        DISCLUSTER_NATS_URL: nats.url,
        DISCLUSTER_BOT: bot,
        DISCLUSTER_HOST_ID: hostId,
        DISCLUSTER_RETRY_MS: '300',
      },
    });
    const line = await control.waitForLine((text) => text.includes('MASTER refused this CONTROL'), 20_000);
    const record = JSON.parse(line) as { level: number; msg: string; hostId: string; code: string };
    expect(record.level).toBe(50);
    expect(record.hostId).toBe(hostId);
    expect(record.code).toBe(ErrorCode.DuplicateHostId);
    expect(record.msg).toContain(`host_id "${hostId}"`);
    expect(record.msg).toContain('pm2 set discluster-control:host_id');
    // It keeps asking (the other CONTROL may go away, or host_id be fixed).
    await waitFor(() => asked >= 3, { description: 'announces retried', timeoutMs: 20_000 });
    // An assignment MASTER meant for the CONTROL it accepted is not this one's: no answer, no action.
    const assign = {
      v: 1,
      type: 'assign',
      epoch: 1,
      hostId,
      instanceId: 'the-other-control-instance',
      shardCount: 1,
      gateway: {
        url: 'wss://gateway.invalid',
        shards: 1,
        session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 1 },
      },
      clusters: [{ clusterId: 0, shardIds: [0] }],
      clusterIds: [0],
      token: sealForHost('some-token', generateHostKeyPair().publicKey, tokenContext(bot, hostId, 1)),
    };
    await expect(
      nc.request(subjects.commands(hostId), encoder.encode(JSON.stringify(assign)), { timeout: 1_500 }),
    ).rejects.toThrow();
    await control.waitForLine((text) =>
      text.includes('ignored a command for another CONTROL with this host_id'),
    );
    expect(control.lines.join('\n')).not.toContain('accepted by MASTER');
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
