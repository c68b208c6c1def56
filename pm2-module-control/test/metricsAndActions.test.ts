import { ErrorCode, type ClusterReport } from 'discluster-protocol';
import { describe, expect, it } from 'vitest';
import type { ActionReply, Pm2Io } from 'discluster-runtime';
import { hostSummary, parseClusterId, registerPm2Surface } from '../src/pm2/metricsAndActions';

const shard = (id: number, state: string) => ({
  id,
  state: state as 'ready',
  ping: 1,
  guilds: 0,
  events: 0,
  waitingReason: null,
  lastCloseCode: null,
});
const clusters: ClusterReport[] = [
  {
    clusterId: 0,
    state: 'online',
    restarts: 2,
    shardIds: [0, 1],
    shards: [shard(0, 'ready'), shard(1, 'waiting')],
  },
  { clusterId: 1, state: 'starting', restarts: 1, shardIds: [2, 3] },
];

/** Records what would be registered with @pm2/io. */
class FakeIo implements Pm2Io {
  public readonly metrics = new Map<string, () => number | string>();
  public readonly actions = new Map<string, (...args: unknown[]) => void>();
  public metric(options: { name: string; value: () => number | string }): void {
    this.metrics.set(options.name, options.value);
  }
  public action(name: string, handler: (...args: never[]) => void): void {
    this.actions.set(name, handler as (...args: unknown[]) => void);
  }
  public init(): void {}
  public trigger(name: string, ...args: unknown[]): Promise<unknown> {
    return new Promise((resolve) => this.actions.get(name)!(...args, resolve as ActionReply));
  }
}

describe('pm2 surface', () => {
  it('sums the host: clusters online, shards ready/total, restarts, identify waits', () => {
    expect(hostSummary(clusters)).toEqual({
      clustersOnline: 1,
      shardsReady: 1,
      shardsTotal: 4,
      restarts: 3,
      identifyWaits: 1,
    });
  });

  it('registers numeric metrics and the status and restart-cluster actions', async () => {
    const io = new FakeIo();
    const restarted: number[] = [];
    registerPm2Surface(io, {
      clusters: () => clusters,
      status: () => ({ hostId: 'h' }),
      restartCluster: async (id) => {
        if (id === 9) throw new Error('boom');
        restarted.push(id);
      },
    });
    expect(Object.fromEntries([...io.metrics].map(([name, value]) => [name, value()]))).toEqual({
      'clusters online': 1,
      'shards ready': 1,
      'shards total': 4,
      restarts: 3,
      'identify waits': 1,
    });
    // @pm2/io hands the parameter only to a handler declared with two arguments.
    expect(io.actions.get('restart-cluster')?.length).toBe(2);
    expect(io.actions.get('status')?.length).toBe(1);
    expect(await io.trigger('status')).toEqual({ hostId: 'h' });
    expect(await io.trigger('restart-cluster', '3')).toEqual({ ok: true, clusterId: 3 });
    expect(await io.trigger('restart-cluster', 'three')).toMatchObject({
      ok: false,
      error: { code: ErrorCode.InvalidClusterId },
    });
    expect(await io.trigger('restart-cluster', 9)).toMatchObject({
      ok: false,
      clusterId: 9,
      error: { message: 'boom' },
    });
    expect(restarted).toEqual([3]);
  });

  it('parses cluster ids given as text or numbers only', () => {
    expect(parseClusterId(' 12 ')).toBe(12);
    expect(parseClusterId(4)).toBe(4);
    for (const bad of [undefined, '', '-1', '1.5', {}, 'x'])
      expect(() => parseClusterId(bad)).toThrow(/cluster id/);
  });
});
