import { describe, expect, it } from 'vitest';
import { fleetSubjects } from '../src/subjects';
import { natsInboxPrefix, natsPermissions, renderNatsAuthorization } from '../src/natsSecurity';

describe('least-privilege permission template', () => {
  const perms = natsPermissions('mybot');
  const fleet = fleetSubjects('mybot');
  const hostCommands = 'discluster.v1.mybot.fleet.host.*.cmd';

  it('only the master role may publish host commands and fleet-wide commands', () => {
    expect(perms.master.publish).toEqual(expect.arrayContaining([hostCommands, fleet.broadcast]));
    for (const role of ['control', 'cluster', 'operator', 'events'] as const) {
      for (const subject of perms[role].publish) {
        expect(subject, role).not.toMatch(/\.cmd(\.|$)/);
        expect(subject, role).not.toBe('>');
        expect(subject, role).not.toMatch(/^discluster\.v1\.mybot\.fleet\.>$|^discluster\.>$/);
      }
    }
  });

  it('clusters may create their buckets but never update a stream (an update could add subjects or sources)', () => {
    expect(perms.cluster.publish).toContain('$JS.API.STREAM.CREATE.KV_discluster_mybot_sessions');
    expect(perms.cluster.publish.filter((subject) => subject.includes('STREAM.UPDATE'))).toEqual([]);
  });

  it('clusters get IPC, handover steps and their own buckets: no fleet subject, no lease, plan or leader bucket', () => {
    const all = [...perms.cluster.publish, ...perms.cluster.subscribe].join('\n');
    expect(all).not.toMatch(/\.fleet\./);
    expect(all).not.toMatch(/discluster_mybot_(master|leases|leader)/);
    expect(perms.cluster.publish).toContain('discluster.v1.mybot.ipc.>');
    expect(perms.cluster.publish).toContain('$KV.discluster_mybot_handover.>');
    // Clusters receive handover steps but cannot send them: only MASTER may.
    expect(perms.cluster.publish).not.toContain('discluster.v1.mybot.handover.*');
    expect(perms.master.publish).toContain('discluster.v1.mybot.handover.*');
    expect(perms.cluster.subscribe).toEqual([
      'discluster.v1.mybot.ipc.>',
      'discluster.v1.mybot.handover.*',
      '_INBOX.discluster.mybot.cluster.>',
    ]);
  });

  it('CONTROL keeps leases but cannot read the plan; the operator reads the plan and writes nothing', () => {
    expect(perms.control.publish).toContain('$KV.discluster_mybot_leases.>');
    expect(perms.control.publish.join('\n')).not.toMatch(/discluster_mybot_(master|leader)/);
    expect(perms.operator.publish).toContain('$JS.API.DIRECT.GET.KV_discluster_mybot_master');
    expect(perms.operator.publish.join('\n')).not.toMatch(/^\$KV\./m);
    expect(perms.operator.publish.join('\n')).not.toMatch(/STREAM\.(CREATE|UPDATE)/);
  });

  it('the events role only listens to the fleet events; the operator may listen to them too (issue 17)', () => {
    expect(perms.events).toEqual({ publish: [], subscribe: [fleet.allEvents], allowResponses: false });
    expect(fleet.allEvents).toBe('discluster.v1.mybot.fleet.event.>');
    // Both give-up events travel under it: the per-host and the legacy subjects.
    for (const subject of [fleet.hostClusterFailed('alpha'), fleet.clusterFailed, fleet.hostFatal('alpha')])
      expect(subject.startsWith(fleet.allEvents.slice(0, -1))).toBe(true);
    expect(perms.operator.subscribe).toContain(fleet.allEvents);
    const text = renderNatsAuthorization('mybot', [{ role: 'events', user: 'e', password: 'pw' }]);
    expect(text).toContain('publish: { deny: [ ">" ] }');
    expect(text).not.toContain('allow_responses');
  });

  it('each daemon role subscribes to its own inboxes only', () => {
    for (const role of ['master', 'control', 'cluster'] as const) {
      const inboxes = perms[role].subscribe.filter((subject) => subject.startsWith('_INBOX'));
      expect(inboxes).toEqual([`${natsInboxPrefix('mybot', role)}.>`]);
    }
  });

  it('renders an authorization block nats-server reads (checked by the permissions integration test)', () => {
    const text = renderNatsAuthorization('mybot', [
      { role: 'master', user: 'm', password: 'pw' },
      { role: 'cluster', nkey: 'UABC' },
    ]);
    expect(text).toMatch(/^authorization: \{\n {2}users: \[\n/);
    expect(text).toContain('user: "m"');
    expect(text).toContain('nkey: "UABC"');
    expect(text).toContain(`"${hostCommands}"`);
    expect(text.match(/allow_responses: true/g)).toHaveLength(2);
  });

  it('rejects a bot name that is not a subject token', () => {
    expect(() => natsPermissions('my.bot')).toThrow(/bot/);
  });
});
