import path from 'node:path';
import { spawnNode, startNatsServer, stopAll, type NatsServerHandle } from 'discluster-testing';
import { afterAll, describe, expect, it } from 'vitest';

/** The foreground `discluster-master` as an operator runs it. */

const BIN = path.join(__dirname, '..', 'dist', 'main.js');
let nats: NatsServerHandle | undefined;

afterAll(async () => {
  await stopAll();
  await nats?.stop();
});

describe('discluster-master (foreground bin)', () => {
  it('stops on SIGINT even when NATS is already gone (bounded clean stop, exit 0)', async () => {
    nats = await startNatsServer({ jetstream: true });
    const master = spawnNode(BIN, [], {
      env: {
        DISCLUSTER_NATS_URL: nats.url,
        DISCLUSTER_BOT: 'binstop',
        DISCLUSTER_TOKEN: 'some-token',
        DISCLUSTER_DISCORD_API: 'http://127.0.0.1:9/api/v10',
        DISCLUSTER_LOG_LEVEL: 'info',
      },
    });
    await master.waitForLine((line) => line.includes('elected leader'), 30_000);
    await nats.stop();
    nats = undefined;
    master.kill('SIGINT');
    const exit = await master.exited;
    expect(exit).toEqual({ code: 0, signal: null });
  });

  it('stays up, idle, naming the key, on a bad setting', async () => {
    const master = spawnNode(BIN, [], { env: { DISCLUSTER_LEASE_MS: 'forever', DISCLUSTER_TOKEN: 't' } });
    const line = await master.waitForLine((text) => text.includes('invalid configuration'), 30_000);
    expect(line).toContain('lease_ms: must be a whole number');
    expect(line).not.toContain('forever');
    master.kill('SIGTERM');
    expect((await master.exited).code).toBe(0);
  });
});
