import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import {
  fleetSubjects,
  leaseBucket,
  masterBucket,
  natsInboxPrefix,
  planKey,
  renderNatsAuthorization,
  sessionBucket,
  type NatsRole,
} from 'discluster-protocol';
import { waitFor } from 'discluster-testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Fleet, readyShards } from './support/fleet';
import { expectFleetInvariants } from './support/invariants';

/**
 * Issue 8 §2, least privilege: nats-server enforces the permission template of
 * `natsPermissions()` (docs/nats-security.md), one user per role, and one CONTROL user per host
 * (`natsHostPermissions()`, issue 13 h) whose subjects name its own host id. MASTER, both CONTROLs and every
 * cluster (which get the *cluster* user from CONTROL's `cluster_nats_*` settings) run the whole
 * fleet to READY without a single permission violation; then clients holding the cluster, control
 * or operator credentials try to command hosts and are refused by the server, so no CONTROL
 * receives anything, and the cluster user cannot read MASTER's bucket or forge a lease. The
 * operator and events users (issue 17) receive a host's give-up event with `nats sub` as the docs
 * show it; the events user can do nothing else.
 */

const BOT = 'perms';
const SHARDS = 4;
const PASSWORDS: Record<NatsRole, string> = {
  master: 'master-pw-51f0',
  control: 'control-pw-8e2a',
  cluster: 'cluster-pw-c93d',
  operator: 'operator-pw-07b4',
  events: 'events-pw-3a91',
};
const userOf = (role: NatsRole) => `discluster-${role}`;
/** A test-only user that sees every fleet subject, to prove what did and did not arrive. */
const AUDITOR = { user: 'auditor', password: 'auditor-pw-2d6e' };

/** Each machine's CONTROL has a user of its own, allowed only subjects naming its host id. */
const HOST_USERS = {
  alpha: { user: 'discluster-control-alpha', password: 'alpha-pw-6d13' },
  beta: { user: 'discluster-control-beta', password: 'beta-pw-90fa' },
} as const;

const serverConfig = renderNatsAuthorization(BOT, [
  ...(['master', 'control', 'cluster', 'operator', 'events'] as const).map((role) => ({
    role,
    user: userOf(role),
    password: PASSWORDS[role],
  })),
  ...Object.entries(HOST_USERS).map(([hostId, identity]) => ({
    role: 'control' as const,
    hostId,
    ...identity,
  })),
  {
    ...AUDITOR,
    comment: 'test auditor (not part of the template)',
    permissions: { publish: [], subscribe: ['discluster.>', '_INBOX.>'], allowResponses: false },
  },
]);

const credentials = (role: NatsRole) => ({
  DISCLUSTER_NATS_USER: userOf(role),
  DISCLUSTER_NATS_PASS: PASSWORDS[role],
});

let fleet: Fleet | undefined;
const clients: NatsConnection[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) await client.close().catch(() => undefined);
});

afterAll(async () => {
  await auditorState?.nc.close().catch(() => undefined);
  await fleet?.stop();
  fleet = undefined;
}, 120_000);

/** A client that records the server's permission errors. */
async function client(user: string, password: string, inboxPrefix?: string) {
  const nc = await connect({
    servers: fleet!.nats.url,
    user,
    pass: password,
    ...(inboxPrefix ? { inboxPrefix } : {}),
  });
  clients.push(nc);
  const violations: string[] = [];
  void (async () => {
    for await (const status of nc.status())
      if (status.type === 'error' && /permissions violation/i.test(status.error.message))
        violations.push(status.error.message);
  })();
  return { nc, violations };
}

const violationLines = (log: string) => log.split('\n').filter((line) => /violation/i.test(line));

describe('least-privilege permissions per role', () => {
  it(
    'the whole fleet runs to READY under the template: every shard served, no violation',
    { timeout: 180_000 },
    async () => {
      fleet = await Fleet.start({
        bot: BOT,
        hosts: (['alpha', 'beta'] as const).map((id) => ({
          id,
          env: { DISCLUSTER_NATS_USER: HOST_USERS[id].user, DISCLUSTER_NATS_PASS: HOST_USERS[id].password },
        })),
        shards: SHARDS,
        maxConcurrency: 1,
        guilds: 40,
        leaseMs: 6000,
        hostTimeoutMs: 3000,
        nats: {
          server: { config: serverConfig },
          master: credentials('master'),
          control: {
            ...credentials('control'),
            // CONTROL hands its clusters the cluster user, not its own.
            DISCLUSTER_CLUSTER_NATS_USER: userOf('cluster'),
            DISCLUSTER_CLUSTER_NATS_PASS: PASSWORDS.cluster,
          },
          cli: credentials('operator'),
        },
      });
      const f = fleet;
      // The auditor records every fleet command from here on, starting with MASTER's assignments.
      const auditor = await client(AUDITOR.user, AUDITOR.password);
      const commands: Msg[] = [];
      auditor.nc.subscribe(`${fleetSubjects(BOT).allHeartbeats.slice(0, -'heartbeat'.length)}cmd`, {
        callback: (_error, msg) => void commands.push(msg),
      });
      auditor.nc.subscribe(fleetSubjects(BOT).broadcast, {
        callback: (_error, msg) => void commands.push(msg),
      });
      await auditor.nc.flush();
      clients.splice(clients.indexOf(auditor.nc), 1); // kept for the next test
      auditorState = { ...auditor, commands };

      f.startMaster();
      try {
        await waitFor(async () => readyShards(await f.status()).length === SHARDS, {
          description: 'every shard READY under the permission template',
          timeoutMs: 120_000,
        });
      } catch (error) {
        throw new Error(`${String(error)}\n${f.diagnostics()}\n${violationLines(f.nats.log()).join('\n')}`);
      }
      // Not one publish or subscription was refused. The clusters ran as the cluster user: the
      // control and master users may not touch the identify and session buckets they need, so with
      // CONTROL's own identity they would have caused violations and never got READY.
      expect(violationLines(f.nats.log())).toEqual([]);
      // Both hosts serve: every cluster started and saw READY.
      const status = await f.status();
      for (const host of status.hosts) expect(host.clusters.length).toBeGreaterThan(0);
      expect(
        new Set(
          f
            .botLines()
            .filter((l) => l['t'] === 'READY')
            .map((l) => l['shardId']),
        ).size,
      ).toBe(SHARDS);
      // MASTER's assignments reached the auditor (the positive control for the next test).
      expect(commands.some((msg) => msg.subject.endsWith('.host.alpha.cmd'))).toBe(true);

      // Cluster-to-cluster IPC works for the cluster user: a request to cluster 0 is answered.
      const peer = await client(userOf('cluster'), PASSWORDS.cluster, natsInboxPrefix(BOT, 'cluster'));
      const reply = await peer.nc.request(
        `discluster.v1.${BOT}.ipc.cluster.0.request`,
        JSON.stringify({ v: 1, name: 'no-such-handler', from: 99, data: null }),
        { timeout: 10_000 },
      );
      expect(reply.string()).toMatch(/DISCLUSTER_ERR/);
      expect(peer.violations).toEqual([]);
    },
  );

  it(
    'only MASTER may command hosts: an assign or stop-all from a cluster, control or operator user is a violation and no CONTROL receives it',
    { timeout: 120_000 },
    async () => {
      const f = fleet!;
      const audit = auditorState!;
      const subjects = fleetSubjects(BOT);
      const assign = audit.commands.find((msg) => msg.subject === subjects.commands('alpha'));
      expect(assign).toBeDefined();
      const before = audit.commands.length;
      const epochBefore = (await f.status()).epoch;
      const controlLines = () =>
        [...f.hosts.values()].reduce((count, host) => count + host.control.lines.length, 0);

      for (const role of ['cluster', 'control', 'operator'] as const) {
        const attacker = await client(userOf(role), PASSWORDS[role]);
        const controlLinesBefore = [...f.hosts.values()].map((host) => host.control.lines.length);
        // A replay of MASTER's real (validly sealed) assignment, and a fleet-wide stop.
        attacker.nc.publish(subjects.commands('alpha'), assign!.data);
        attacker.nc.publish(subjects.broadcast, JSON.stringify({ v: 1, type: 'stop-all', reason: 'forged' }));
        await attacker.nc.flush();
        await waitFor(() => attacker.violations.length >= 2, {
          description: `the server refused both publishes of the ${role} user`,
          timeoutMs: 10_000,
        });
        expect(attacker.violations.join('\n')).toContain(subjects.commands('alpha'));
        expect(attacker.violations.join('\n')).toContain(subjects.broadcast);
        // Had either been delivered, it was queued to the auditor before the server answered the
        // attacker's flush; the auditor's own flush then drains everything queued to it.
        await audit.nc.flush();
        expect(audit.commands.length).toBe(before);
        // No CONTROL logged a command (or a malformed one) because of it.
        const newLines = [...f.hosts.values()].flatMap((host, i) =>
          host.control.lines.slice(controlLinesBefore[i]),
        );
        expect(newLines.filter((line) => /command|stopping every cluster/i.test(line))).toEqual([]);
      }
      expect(controlLines()).toBeGreaterThan(0);
      expect(violationLines(f.nats.log()).length).toBeGreaterThanOrEqual(6);

      // The fleet is untouched: same epoch, every shard still served.
      const status = await f.status();
      expect(status.epoch).toBe(epochBefore);
      expect(readyShards(status)).toHaveLength(SHARDS);
    },
  );

  it(
    'a host’s own user cannot speak for another host: its heartbeat, announce and events are refused by the server',
    { timeout: 120_000 },
    async () => {
      const f = fleet!;
      const subjects = fleetSubjects(BOT);
      const alpha = await client(
        HOST_USERS.alpha.user,
        HOST_USERS.alpha.password,
        natsInboxPrefix(BOT, 'control'),
      );
      const epochBefore = (await f.status()).epoch;
      const forged = [
        subjects.heartbeat('beta'),
        subjects.hostAnnounce('beta'),
        subjects.hostFatal('beta'),
        subjects.hostClusterFailed('beta'),
        // The legacy subjects carry no host id: a per-host user may not use them either.
        subjects.announce,
        subjects.fatal,
        // Nor command anyone, itself included.
        subjects.commands('alpha'),
      ];
      const event = {
        v: 1,
        type: 'fatal',
        hostId: 'beta',
        clusterId: 0,
        shardId: 0,
        code: 4004,
        reason: 'forged',
      };
      for (const subject of forged) alpha.nc.publish(subject, JSON.stringify(event));
      // And it may not listen to another host's commands.
      const sub = alpha.nc.subscribe(subjects.commands('beta'));
      const subEnd = sub.closed.then(
        (value: unknown) => String(value),
        (error: unknown) => String(error),
      );
      await alpha.nc.flush();
      await waitFor(() => alpha.violations.length >= forged.length + 1, {
        description: 'the server refused every forged publish and the subscription',
        timeoutMs: 10_000,
      });
      const text = alpha.violations.join('\n');
      for (const subject of forged) expect(text).toContain(subject);
      expect(await subEnd).toMatch(/permission/i);
      // Its own subjects are allowed: a heartbeat of its own makes no violation.
      const violations = alpha.violations.length;
      alpha.nc.publish(subjects.heartbeat('alpha'), JSON.stringify({ v: 1 }));
      await alpha.nc.flush();
      expect(alpha.violations).toHaveLength(violations);
      // Nothing reached MASTER: the fleet runs on, not stopped, same epoch.
      const status = await f.status();
      expect(status.stopped).toBeNull();
      expect(status.epoch).toBe(epochBefore);
      expect(readyShards(status)).toHaveLength(SHARDS);
    },
  );

  it('the operator and events users receive a give-up event as docs/operations.md subscribes to it; the events user can do nothing else', async () => {
    const subjects = fleetSubjects(BOT);
    // What `nats sub 'discluster.v1.perms.fleet.event.>'` does with each user: one plain subscription.
    const listeners = await Promise.all(
      (['operator', 'events'] as const).map(async (role) => {
        const listener = await client(userOf(role), PASSWORDS[role]);
        const received: Msg[] = [];
        listener.nc.subscribe(`discluster.v1.${BOT}.fleet.event.>`, {
          callback: (_error, msg) => void received.push(msg),
        });
        await listener.nc.flush();
        return { role, ...listener, received };
      }),
    );
    // A CONTROL gives up on a cluster (one MASTER's plan does not back, so MASTER only logs it).
    const alpha = await client(
      HOST_USERS.alpha.user,
      HOST_USERS.alpha.password,
      natsInboxPrefix(BOT, 'control'),
    );
    const event = {
      v: 1,
      type: 'cluster.failed',
      hostId: 'alpha',
      clusterId: 999,
      attempts: 3,
      reason: 'test',
    };
    alpha.nc.publish(subjects.hostClusterFailed('alpha'), JSON.stringify(event));
    await alpha.nc.flush();
    for (const listener of listeners) {
      await waitFor(() => listener.received.length === 1, {
        description: `the ${listener.role} user received the cluster.failed event`,
        timeoutMs: 10_000,
      });
      expect(listener.received[0]!.subject).toBe(subjects.hostClusterFailed('alpha'));
      expect(listener.received[0]!.json()).toEqual(event);
      expect(listener.violations, listener.role).toEqual([]);
    }
    expect(alpha.violations).toEqual([]);

    // The events user: no publish at all (not even an event), no other subscription.
    const events = listeners.find((listener) => listener.role === 'events')!;
    events.nc.publish(
      subjects.hostFatal('alpha'),
      JSON.stringify({ ...event, type: 'fatal', shardId: 0, code: 4004 }),
    );
    events.nc.publish(subjects.master, JSON.stringify({ v: 1, type: 'status' }));
    const refused = [subjects.allHeartbeats, `discluster.v1.${BOT}.fleet.host.*.cmd`, '_INBOX.>'].map(
      (subject) =>
        events.nc.subscribe(subject).closed.then(
          (value: unknown) => String(value),
          (error: unknown) => String(error),
        ),
    );
    await events.nc.flush();
    await waitFor(() => events.violations.length >= 5, {
      description: 'the server refused both publishes and the three subscriptions of the events user',
      timeoutMs: 10_000,
    });
    const text = events.violations.join('\n');
    expect(text).toContain(subjects.hostFatal('alpha'));
    expect(text).toContain(subjects.master);
    for (const end of await Promise.all(refused)) expect(end).toMatch(/permission/i);
    // Its forged fatal event reached nobody: the operator heard only the one real event.
    await listeners[0]!.nc.flush();
    expect(listeners[0]!.received).toHaveLength(1);
    expect((await fleet!.status()).stopped).toBeNull();
  });

  it('the cluster user cannot change its own buckets’ configuration (no STREAM.UPDATE: not even to raise replicas)', async () => {
    const intruder = await client(userOf('cluster'), PASSWORDS.cluster, natsInboxPrefix(BOT, 'cluster'));
    const stream = `KV_${sessionBucket(BOT)}`;
    const info = (await (await jetstreamManager(intruder.nc, { timeout: 5_000 })).streams.info(stream))
      .config;
    // What a stream update could do beyond replicas: capture host commands into a stream the
    // cluster user may read (docs/nats-security.md, "Raising replicas").
    const update = intruder.nc.request(
      `$JS.API.STREAM.UPDATE.${stream}`,
      JSON.stringify({ ...info, subjects: [...info.subjects, `discluster.v1.${BOT}.fleet.host.*.cmd`] }),
      { timeout: 5_000 },
    );
    await expect(update).rejects.toThrow();
    await waitFor(() => intruder.violations.length >= 1, {
      description: 'the server refused the stream update',
      timeoutMs: 10_000,
    });
    expect(intruder.violations.join('\n')).toContain(`$JS.API.STREAM.UPDATE.${stream}`);
    const after = (await (await jetstreamManager(intruder.nc, { timeout: 5_000 })).streams.info(stream))
      .config;
    expect(after.subjects).toEqual(info.subjects);
  });

  it('the cluster user cannot read MASTER’s bucket, forge a lease, or listen to host commands', async () => {
    const f = fleet!;
    const intruder = await client(userOf('cluster'), PASSWORDS.cluster, natsInboxPrefix(BOT, 'cluster'));
    const kvm = new Kvm(jetstream(intruder.nc, { timeout: 5_000 }));
    // Binding needs no request; reading the plan, its status or watching it does.
    const plan = await kvm.open(masterBucket(BOT));
    await expect(plan.get(planKey())).rejects.toThrow(/permission/i);
    await expect(plan.status()).rejects.toThrow(/permission/i);
    intruder.nc.publish(`$KV.${leaseBucket(BOT)}.4.0`, JSON.stringify({ forged: true }));
    const sub = intruder.nc.subscribe(`discluster.v1.${BOT}.fleet.host.*.cmd`);
    // A subscription the server refuses ends with the permission error.
    const subEnd = sub.closed.then(
      (value: unknown) => String(value),
      (error: unknown) => String(error),
    );
    await intruder.nc.flush();
    await waitFor(() => intruder.violations.length >= 3, {
      description: 'the server refused the KV read, the lease write and the subscription',
      timeoutMs: 10_000,
    });
    const text = intruder.violations.join('\n');
    expect(text).toContain(`$KV.${leaseBucket(BOT)}.4.0`);
    expect(text).toMatch(/subscription to "discluster\.v1\.perms\.fleet\.host\.\*\.cmd"/i);
    expect(await subEnd).toMatch(/permission/i);
    // The default inbox is not the cluster's: even replies it asked for would not reach it there.
    const outsider = await client(userOf('cluster'), PASSWORDS.cluster);
    outsider.nc.subscribe('_INBOX.>');
    await outsider.nc.flush();
    await waitFor(() => outsider.violations.length >= 1, {
      description: 'the server refused a subscription to every inbox',
      timeoutMs: 10_000,
    });
    void f;
  });

  it(
    'a host lost under the template: its shards fail over to the other host and resume, no violation',
    { timeout: 180_000 },
    async () => {
      const f = fleet!;
      const violationsBefore = violationLines(f.nats.log()).length;
      const before = await f.status();
      const moved = before.hosts.find((host) => host.id === 'beta')!.clusters.flatMap((c) => c.shards);
      expect(moved.length).toBeGreaterThan(0);
      await f.killHost('beta');
      try {
        await waitFor(
          async () => {
            const status = await f.status();
            const alpha = status.hosts.find((host) => host.id === 'alpha');
            const served = alpha?.clusters.flatMap((c) => c.shards).filter((s) => s.state === 'ready') ?? [];
            return served.length === SHARDS;
          },
          {
            description: 'every shard READY on alpha after beta was lost',
            timeoutMs: 150_000,
            intervalMs: 500,
          },
        );
      } catch (error) {
        throw new Error(`${String(error)}\n${f.diagnostics()}\n${violationLines(f.nats.log()).join('\n')}`);
      }
      // Lease expiry, revocation and takeover needed nothing outside the template.
      expect(violationLines(f.nats.log()).slice(violationsBefore)).toEqual([]);
      const state = await f.state();
      expectFleetInvariants(state);
      // The moved shards resumed their sessions from KV (the cluster user reads sessions).
      expect(Number(state['resumes'])).toBeGreaterThanOrEqual(moved.length);
    },
  );

  it(
    'a reshard under the template: handover steps and the handover bucket need nothing outside it',
    { timeout: 180_000 },
    async () => {
      const f = fleet!;
      const violationsBefore = violationLines(f.nats.log()).length;
      const started = await f.cli('reshard', '--shards', String(SHARDS * 2), '--json');
      expect(started.code, `${started.stderr}${started.stdout}`).toBe(0);
      try {
        await waitFor(
          async () => {
            const status = await f.status();
            return (
              status.shardCount === SHARDS * 2 && !status.reshard && readyShards(status).length === SHARDS * 2
            );
          },
          { description: `the fleet resharded to ${SHARDS * 2} shards`, timeoutMs: 150_000, intervalMs: 500 },
        );
      } catch (error) {
        throw new Error(`${String(error)}\n${f.diagnostics()}\n${violationLines(f.nats.log()).join('\n')}`);
      }
      expect(violationLines(f.nats.log()).slice(violationsBefore)).toEqual([]);
      // Every old cluster cut over: the handover reached each of them under the template.
      expect(
        f.masters[0]!.lines.some(
          (line) => line.includes('reshard finished') && line.includes('"unanswered":[]'),
        ),
      ).toBe(true);
    },
  );
});

let auditorState: { nc: NatsConnection; violations: string[]; commands: Msg[] } | undefined;
