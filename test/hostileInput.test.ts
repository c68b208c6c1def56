import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  ControlConfigSchema,
  FleetStatusSchema,
  MasterConfigSchema,
  fleetSubjects,
  ipcSubjects,
  loadModuleConfig,
} from 'discluster-protocol';
import {
  seededRandom,
  startDiscordSimProcess,
  startNatsServer,
  waitFor,
  type DiscordSimProcess,
  type NatsServerHandle,
} from 'discluster-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError, parseCli } from '../pm2-module-master/src/cli/args';
import { FleetClient } from '../pm2-module-master/src/cli/fleetClient';
import { startMaster, type MasterHandle } from '../pm2-module-master/src/startMaster';
import { FakeHost } from '../pm2-module-master/test/fakeHost';

/**
 * Hostile input (issue 8 §4), fuzzed from a seeded generator so a failure reproduces: configuration
 * values, CLI arguments, and NATS messages on every subject MASTER listens to. Each must give a
 * clear error (or be ignored) and change nothing: no crash, no new epoch, no stop, no command.
 */

const JUNK = [
  '',
  ' ',
  '-1',
  '0',
  '1e309',
  'NaN',
  'null',
  'true',
  '{}',
  '[]',
  '{"v":1}',
  '\u0000',
  '💥'.repeat(50),
  'x'.repeat(70_000),
  '../../etc/passwd',
  'nats://',
  'http://example.com',
  '9'.repeat(400),
  '<script>alert(1)</script>',
  '"; DROP TABLE shards; --',
];

function junk(random: () => number): string {
  if (random() < 0.6) return JUNK[Math.floor(random() * JUNK.length)]!;
  const length = Math.floor(random() * 40);
  let text = '';
  for (let i = 0; i < length; i++) text += String.fromCharCode(Math.floor(random() * 0x2fff));
  return text;
}

/** Valid-looking JSON objects with wrong types, missing and extra fields, wrong versions. */
function junkMessage(random: () => number, type: string): string {
  const fields: Record<string, unknown> = { v: random() < 0.5 ? 1 : junk(random), type };
  const names = [
    'hostId',
    'epoch',
    'clusters',
    'shardCount',
    'token',
    'clusterId',
    'shardId',
    'code',
    'guildId',
  ];
  for (const name of names) {
    const roll = random();
    if (roll < 0.3) continue;
    fields[name] =
      roll < 0.45
        ? junk(random)
        : roll < 0.6
          ? -Math.floor(random() * 1e9)
          : roll < 0.75
            ? [junk(random), { nested: junk(random) }]
            : roll < 0.9
              ? Number.MAX_SAFE_INTEGER
              : null;
  }
  return random() < 0.2 ? junk(random) : JSON.stringify(fields);
}

describe('hostile configuration and CLI input', () => {
  it('every key of both modules, fed junk, is an error naming the key (never the value) or a valid setting', () => {
    const random = seededRandom(7);
    const modules = [
      {
        moduleName: 'discluster-control',
        keys: Object.keys(ControlConfigSchema.shape),
        load: (env: Record<string, string>) =>
          loadModuleConfig(ControlConfigSchema, { moduleName: 'discluster-control', env }),
      },
      {
        moduleName: 'discluster-master',
        keys: Object.keys(MasterConfigSchema.shape),
        load: (env: Record<string, string>) =>
          loadModuleConfig(MasterConfigSchema, { moduleName: 'discluster-master', env }),
      },
    ];
    for (const { moduleName, keys, load } of modules) {
      expect(keys.length).toBeGreaterThan(10);
      for (const key of keys)
        for (let round = 0; round < 25; round++) {
          const value = junk(random);
          const result = load({ [`DISCLUSTER_${key.toUpperCase()}`]: value });
          if (result.ok) continue;
          for (const issue of result.issues) {
            expect(issue.key).toBe(key);
            // Values can be secrets: messages say what is wrong, never echo the value.
            if (value.length >= 10) expect(issue.message).not.toContain(value);
          }
        }
      // The pm2 section itself as junk.
      for (let round = 0; round < 50; round++) {
        const result = load({ [moduleName]: junk(random) });
        if (!result.ok) expect(result.issues.length).toBeGreaterThan(0);
      }
    }
  });

  it('CLI arguments, fuzzed, are parsed or refused with a usage error, never anything else', () => {
    const random = seededRandom(11);
    const words = [
      'status',
      'which',
      'rebalance',
      'restart',
      'reshard',
      'stop',
      '--json',
      '--rolling',
      '--shards',
      '--bot',
      '--nats-url',
      '--timeout-ms',
      '-h',
      '--',
    ];
    for (let round = 0; round < 2_000; round++) {
      const argv = Array.from({ length: Math.floor(random() * 5) }, () =>
        random() < 0.6 ? words[Math.floor(random() * words.length)]! : junk(random),
      );
      try {
        parseCli(argv, {});
      } catch (error) {
        expect(error, JSON.stringify(argv)).toBeInstanceOf(UsageError);
      }
    }
  });
});

describe('hostile NATS messages to a running MASTER', () => {
  const BOT = 'hostile';
  const TOKEN = 'hostile-test-token-3e1a';
  let nats: NatsServerHandle;
  let sim: DiscordSimProcess;
  let nc: NatsConnection;
  let master: MasterHandle;
  const hosts: FakeHost[] = [];

  beforeAll(async () => {
    nats = await startNatsServer({ jetstream: true });
    sim = await startDiscordSimProcess({ token: TOKEN, guilds: 20, shards: 4, 'max-concurrency': 1 });
    nc = await connect({ servers: nats.url });
    for (const id of ['alpha', 'beta']) {
      const host = new FakeHost(nc, { bot: BOT, id, cores: 2 });
      hosts.push(host);
      await host.start();
    }
    master = await startMaster({
      DISCLUSTER_NATS_URL: nats.url,
      DISCLUSTER_BOT: BOT,
      DISCLUSTER_TOKEN: TOKEN,
      DISCLUSTER_DISCORD_API: sim.rest,
      DISCLUSTER_EXPECTED_HOSTS: '2',
      DISCLUSTER_HOST_TIMEOUT_MS: '60000',
      DISCLUSTER_LOG_LEVEL: 'silent',
    });
    await waitFor(() => hosts.every((host) => host.epoch === 1), {
      description: 'the first plan',
      timeoutMs: 20_000,
    });
  });

  afterAll(async () => {
    for (const host of hosts) host.stop();
    await master?.close();
    await nc?.drain().catch(() => undefined);
    await sim?.stop();
    await nats?.stop();
  });

  it('junk on every subject it listens to changes nothing and leaves it answering', async () => {
    const random = seededRandom(23);
    const subjects = fleetSubjects(BOT);
    const targets = [
      [subjects.announce, 'announce'],
      [subjects.heartbeat('alpha'), 'heartbeat'],
      [subjects.heartbeat('gamma'), 'heartbeat'],
      [subjects.fatal, 'fatal'],
      [subjects.clusterFailed, 'cluster.failed'],
      [subjects.master, 'rebalance'],
      [subjects.master, 'which'],
      [ipcSubjects(BOT).broadcast, 'event'],
    ] as const;
    const commandsBefore = hosts.map((host) => host.commands.length);
    for (let round = 0; round < 150; round++)
      for (const [subject, type] of targets)
        nc.publish(subject, new TextEncoder().encode(junkMessage(random, type)));
    // Oversized: beyond what anything should parse (the server's max payload is 1 MiB).
    nc.publish(subjects.announce, new Uint8Array(900_000).fill(123));
    await nc.flush();
    const client = await FleetClient.connect({ nats_url: [nats.url] }, BOT);
    try {
      const status = FleetStatusSchema.parse(await client.askMaster({ v: 1, type: 'status' }, 5_000));
      expect(status.epoch).toBe(1);
      expect(status.stopped).toBeNull();
      expect(status.hosts.map((host) => host.id)).toEqual(['alpha', 'beta']);
    } finally {
      await client.close();
    }
    // MASTER sent no host anything new: no assignment, no stop.
    expect(hosts.map((host) => host.commands.length)).toEqual(commandsBefore);
    expect(hosts.every((host) => host.epoch === 1)).toBe(true);
  });
});
