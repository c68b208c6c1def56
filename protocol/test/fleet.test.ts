import { describe, expect, it } from 'vitest';
import {
  AssignCommandSchema,
  FleetEventSchema,
  FleetReplySchema,
  HostAnnounceSchema,
  HostCommandSchema,
  HostHeartbeatSchema,
} from '../src/fleet';
import { generateHostKeyPair, sealForHost, tokenContext } from '../src/sealedToken';
import { fleetSubjects } from '../src/subjects';

const keys = generateHostKeyPair();
const facts = {
  v: 1,
  hostId: 'host-a',
  instanceId: 'b2c1f0d2-instance',
  role: 'active',
  cores: 2,
  load15: 0.5,
  memory: { total: 1024, free: 512 },
  shardsPerCluster: 10,
  version: '0.1.0',
  publicKey: keys.publicKey,
  epoch: null,
  clusters: [],
  sentAt: 1,
} as const;
const gateway = {
  url: 'wss://gateway.discord.gg',
  shards: 4,
  session_start_limit: { total: 1000, remaining: 999, reset_after: 1000, max_concurrency: 1 },
};
const assign = {
  v: 1,
  type: 'assign',
  epoch: 3,
  hostId: 'host-a',
  shardCount: 4,
  gateway,
  clusters: [
    { clusterId: 0, shardIds: [0, 1] },
    { clusterId: 1, shardIds: [2] },
  ],
  clusterIds: [0, 1, 2],
  token: sealForHost('secret-token', keys.publicKey, tokenContext('default', 'host-a', 3)),
};

describe('fleet messages', () => {
  it('accepts an announce and a heartbeat with host facts and a public key', () => {
    expect(HostAnnounceSchema.safeParse({ ...facts, type: 'announce' }).success).toBe(true);
    const heartbeat = {
      ...facts,
      type: 'heartbeat',
      epoch: 3,
      clusters: [{ clusterId: 0, state: 'online', restarts: 1, shardIds: [0, 1] }],
    };
    expect(HostHeartbeatSchema.safeParse(heartbeat).success).toBe(true);
    expect(HostAnnounceSchema.safeParse({ ...facts, type: 'announce', publicKey: 'short' }).success).toBe(
      false,
    );
    expect(HostAnnounceSchema.safeParse({ ...facts, type: 'announce', hostId: 'a.b' }).success).toBe(false);
  });

  it('accepts a valid assignment and refuses inconsistent ones', () => {
    expect(AssignCommandSchema.safeParse(assign).success).toBe(true);
    expect(HostCommandSchema.safeParse(assign).success).toBe(true);
    const outOfRange = { ...assign, clusters: [{ clusterId: 0, shardIds: [4] }] };
    const repeated = {
      ...assign,
      clusters: [
        { clusterId: 0, shardIds: [1] },
        { clusterId: 1, shardIds: [1] },
      ],
    };
    const unknownCluster = { ...assign, clusters: [{ clusterId: 9, shardIds: [1] }] };
    const plainToken = { ...assign, token: 'secret-token' };
    for (const bad of [outOfRange, repeated, unknownCluster, plainToken, { ...assign, epoch: -1 }]) {
      expect(AssignCommandSchema.safeParse(bad).success).toBe(false);
    }
  });

  it('parses the other commands, replies and events', () => {
    for (const command of [
      { v: 1, type: 'revoke', epoch: 4, clusterIds: [1], reason: 'rebalance' },
      { v: 1, type: 'stop-all', reason: 'fatal 4004' },
      { v: 1, type: 'rolling-restart', epoch: 4 },
    ]) {
      expect(HostCommandSchema.safeParse(command).success).toBe(true);
    }
    expect(HostCommandSchema.safeParse({ v: 1, type: 'format-disk' }).success).toBe(false);
    expect(FleetReplySchema.safeParse({ v: 1, ok: true, epoch: 3 }).success).toBe(true);
    expect(FleetReplySchema.safeParse({ v: 1, ok: false, error: { code: 'X', message: 'y' } }).success).toBe(
      true,
    );
    expect(
      FleetEventSchema.safeParse({
        v: 1,
        type: 'cluster.failed',
        hostId: 'host-a',
        clusterId: 2,
        attempts: 3,
        reason: 'exited before ready',
      }).success,
    ).toBe(true);
    expect(
      FleetEventSchema.safeParse({
        v: 1,
        type: 'fatal',
        hostId: 'host-a',
        clusterId: 2,
        shardId: 5,
        code: 4004,
        reason: 'Authentication failed',
      }).success,
    ).toBe(true);
  });
});

describe('fleetSubjects', () => {
  it('builds subjects under discluster.v1.<bot>', () => {
    const subjects = fleetSubjects('mybot');
    expect(subjects.announce).toBe('discluster.v1.mybot.fleet.announce');
    expect(subjects.heartbeat('host-a')).toBe('discluster.v1.mybot.fleet.host.host-a.heartbeat');
    expect(subjects.commands('host-a')).toBe('discluster.v1.mybot.fleet.host.host-a.cmd');
    expect(subjects.allHeartbeats).toBe('discluster.v1.mybot.fleet.host.*.heartbeat');
    expect(subjects.allEvents).toBe('discluster.v1.mybot.fleet.event.>');
  });

  it('refuses host ids that would change the subject', () => {
    const subjects = fleetSubjects('mybot');
    for (const bad of ['a.b', 'a*', '>', '', 'a b']) expect(() => subjects.commands(bad)).toThrow();
    expect(() => fleetSubjects('bad.bot')).toThrow();
  });
});
