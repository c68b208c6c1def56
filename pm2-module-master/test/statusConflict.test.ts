import type { HostHeartbeat } from 'discluster-protocol';
import { describe, expect, it } from 'vitest';
import { renderStatus } from '../src/cli/render';
import { buildFleetStatus } from '../src/statusView';

/** `discluster status` shows a duplicated host id (issue 13 f), from MASTER and from the CONTROLs. */

function facts(hostId: string, instanceId: string): Omit<HostHeartbeat, 'type'> {
  return {
    v: 1,
    hostId,
    instanceId,
    role: 'active',
    cores: 2,
    load15: 0.5,
    memory: { total: 8e9, free: 4e9 },
    shardsPerCluster: 10,
    version: '0.1.0',
    publicKey: 'k'.repeat(43),
    epoch: null,
    clusters: [],
    sentAt: 0,
  };
}

describe('a duplicated host id in discluster status', () => {
  it('MASTER: the refused instances, with what to do, in --json and in the text', () => {
    const status = buildFleetStatus({
      bot: 'b',
      plan: null,
      hosts: [{ facts: facts('alpha', 'first-instance'), online: true }],
      masterUp: true,
      source: 'master',
      refused: new Map([['alpha', ['second-instance']]]),
    });
    const alpha = status.hosts[0]!;
    expect(alpha.conflict?.refusedInstanceIds).toEqual(['second-instance']);
    expect(alpha.conflict?.message).toContain('host_id "alpha"');
    const text = renderStatus(status);
    expect(text).toContain('DUPLICATE host_id alpha');
    expect(text).toContain('second-instance');
  });

  it('MASTER down: two CONTROLs answering for one host id are shown as a conflict', () => {
    const status = buildFleetStatus({
      bot: 'b',
      plan: null,
      hosts: [
        { facts: facts('alpha', 'first-instance'), online: true },
        { facts: facts('alpha', 'second-instance'), online: true },
        { facts: facts('beta', 'beta-instance'), online: true },
      ],
      masterUp: false,
      source: 'controls',
    });
    expect(status.hosts.map((host) => host.id)).toEqual(['alpha', 'beta']);
    expect(status.hosts[0]!.conflict?.refusedInstanceIds).toEqual(['first-instance']);
    expect(status.hosts[1]!.conflict ?? null).toBeNull();
  });
});
