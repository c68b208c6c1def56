import { EventEmitter } from 'node:events';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Pm2Bus, Pm2Client, Pm2Json } from '../src/pm2Api';
import { ClusterSupervisor, type HostAssignment } from '../src/supervisor';

/** An in-memory pm2: enough of the daemon to check what the supervisor asks of it. */
class FakePm2 implements Pm2Client {
  public readonly processes: Pm2Json[] = [];
  public readonly sent: { pmId: number; topic: string; data: Pm2Json }[] = [];
  public readonly calls: string[] = [];
  public readonly busEmitter = new EventEmitter();
  private nextId = 0;

  public async start(options: Pm2Json): Promise<Pm2Json[]> {
    this.calls.push(`start ${options['name']}`);
    const proc = {
      name: options['name'],
      pm_id: this.nextId++,
      options,
      pm2_env: { namespace: options['namespace'] },
    };
    this.processes.push(proc);
    return [proc];
  }
  public async restart(pmId: number): Promise<void> {
    this.calls.push(`restart ${pmId}`);
  }
  public async delete(pmId: number): Promise<void> {
    this.calls.push(`delete ${pmId}`);
    const index = this.processes.findIndex((proc) => proc['pm_id'] === pmId);
    if (index >= 0) this.processes.splice(index, 1);
  }
  public async list(): Promise<Pm2Json[]> {
    return this.processes;
  }
  public async send(pmId: number, topic: string, data: unknown): Promise<void> {
    this.sent.push({ pmId, topic, data: data as Pm2Json });
  }
  public async bus(): Promise<Pm2Bus> {
    return { on: (event, listener) => this.busEmitter.on(event, listener) };
  }
  public disconnect(): void {}

  /** Adds a process as if someone else had started it. */
  public adopt(name: string, namespace: string): number {
    const pmId = this.nextId++;
    this.processes.push({ name, pm_id: pmId, pm2_env: { namespace } });
    return pmId;
  }
  public emit(
    event: 'process:msg' | 'process:event',
    name: string,
    body: Pm2Json,
    namespace = 'discluster-bot',
  ): void {
    this.busEmitter.emit(event, { ...body, process: { name, namespace } });
  }
}

const gateway = {
  url: 'wss://gateway.invalid',
  shards: 30,
  session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 1 },
};
const assignment = (
  epoch: number,
  clusters: { clusterId: number; shardIds: number[] }[],
): HostAssignment => ({
  epoch,
  shardCount: 30,
  gateway,
  clusterIds: clusters.map((c) => c.clusterId),
  clusters,
  token: 'TOKEN-abc',
});
const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

let pm2: FakePm2;
let failed: [number, number, string][];
let fatals: [number, number, number][];
let supervisor: ClusterSupervisor;

beforeEach(() => {
  vi.useFakeTimers();
  pm2 = new FakePm2();
  failed = [];
  fatals = [];
  supervisor = new ClusterSupervisor({
    pm2,
    bot: 'bot',
    script: '/srv/bot/index.js',
    nats: { servers: ['nats://127.0.0.1:4222'] },
    policy: { maxFailedStarts: 3, minUptimeMs: 10_000, baseDelayMs: 1_000, maxDelayMs: 30_000 },
    logger: pino({ level: 'silent' }),
    onClusterFailed: (id, attempts, reason) => failed.push([id, attempts, reason]),
    onFatal: (id, shard, code) => fatals.push([id, shard, code]),
  });
});
afterEach(() => {
  supervisor.close();
  vi.useRealTimers();
});

describe('ClusterSupervisor', () => {
  it('starts each cluster in its namespace with only the cluster id in the environment', async () => {
    await supervisor.apply(
      assignment(1, [
        { clusterId: 0, shardIds: [0, 1] },
        { clusterId: 1, shardIds: [2] },
      ]),
    );
    expect(pm2.processes.map((proc) => proc['options'])).toEqual([
      expect.objectContaining({
        name: 'discluster-bot-cluster-0',
        namespace: 'discluster-bot',
        script: '/srv/bot/index.js',
        env: { DISCLUSTER_CLUSTER_ID: '0' },
        filter_env: [''],
        autorestart: false,
      }),
      expect.objectContaining({ name: 'discluster-bot-cluster-1', env: { DISCLUSTER_CLUSTER_ID: '1' } }),
    ]);
    expect(JSON.stringify(pm2.processes)).not.toContain('TOKEN-abc');
    for (const proc of pm2.processes) expect(proc['options']['kill_timeout']).toBeGreaterThanOrEqual(10_000);
  });

  it('answers hello with the assignment over pm2 IPC, and ignores invalid or foreign messages', async () => {
    await supervisor.apply(assignment(2, [{ clusterId: 0, shardIds: [0, 1] }]));
    pm2.emit('process:msg', 'discluster-bot-cluster-0', { data: { v: 1, type: 'hello', clusterId: 5 } });
    pm2.emit('process:msg', 'discluster-bot-cluster-0', { data: { type: 'nonsense' } });
    pm2.emit(
      'process:msg',
      'discluster-bot-cluster-0',
      { data: { v: 1, type: 'hello', clusterId: 0 } },
      'other',
    );
    await flush();
    expect(pm2.sent).toEqual([]);
    pm2.emit('process:msg', 'discluster-bot-cluster-0', { data: { v: 1, type: 'hello', clusterId: 0 } });
    await flush();
    expect(pm2.sent).toHaveLength(1);
    expect(pm2.sent[0]).toMatchObject({
      pmId: 0,
      topic: 'discluster:control',
      data: { type: 'assign', epoch: 2, clusterId: 0, shardIds: [0, 1], token: 'TOKEN-abc', bot: 'bot' },
    });
  });

  it('restarts a crashing cluster with backoff and gives up after max failed starts', async () => {
    await supervisor.apply(assignment(1, [{ clusterId: 3, shardIds: [0] }]));
    const name = 'discluster-bot-cluster-3';
    for (const delay of [1_000, 2_000]) {
      pm2.emit('process:event', name, { event: 'exit' });
      expect(supervisor.report()[0]?.state).toBe('restarting');
      await vi.advanceTimersByTimeAsync(delay - 1);
      expect(pm2.calls.filter((call) => call.startsWith('restart'))).toHaveLength(delay === 1_000 ? 0 : 1);
      await vi.advanceTimersByTimeAsync(1);
      await flush();
      pm2.emit('process:event', name, { event: 'online' });
    }
    expect(pm2.calls.filter((call) => call.startsWith('restart'))).toEqual(['restart 0', 'restart 0']);
    pm2.emit('process:event', name, { event: 'exit' });
    expect(failed).toEqual([[3, 3, expect.stringContaining('3 time(s)')]]);
    expect(supervisor.report()[0]).toMatchObject({ state: 'failed', restarts: 2 });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(pm2.calls.filter((call) => call.startsWith('restart'))).toHaveLength(2);
  });

  it('a cluster that reported ready for long enough restarts promptly after a crash', async () => {
    await supervisor.apply(assignment(1, [{ clusterId: 0, shardIds: [0] }]));
    const name = 'discluster-bot-cluster-0';
    const shards = [
      { id: 0, state: 'ready', ping: 1, guilds: 0, events: 0, waitingReason: null, lastCloseCode: null },
    ];
    pm2.emit('process:msg', name, { data: { v: 1, type: 'status', clusterId: 0, epoch: 1, shards } });
    expect(supervisor.report()[0]).toMatchObject({ state: 'online', shards });
    await vi.advanceTimersByTimeAsync(20_000);
    pm2.emit('process:event', name, { event: 'exit' });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(pm2.calls).toContain('restart 0');
    expect(failed).toEqual([]);
  });

  it('does not restart a cluster that reported a fatal gateway close', async () => {
    await supervisor.apply(assignment(1, [{ clusterId: 0, shardIds: [0] }]));
    const name = 'discluster-bot-cluster-0';
    pm2.emit('process:msg', name, {
      data: { v: 1, type: 'fatal', clusterId: 0, shardId: 0, code: 4004, reason: 'Authentication failed' },
    });
    expect(fatals).toEqual([[0, 0, 4004]]);
    pm2.emit('process:event', name, { event: 'exit' });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(pm2.calls.filter((call) => call.startsWith('restart'))).toEqual([]);
    expect(supervisor.report()[0]?.state).toBe('stopped');
  });

  it('reconciles: removes clusters and strays the plan no longer wants, never foreign processes', async () => {
    const operator = pm2.adopt('discluster-bot-cluster-9', 'default');
    const unrelated = pm2.adopt('my-worker', 'discluster-bot');
    const stray = pm2.adopt('discluster-bot-cluster-7', 'discluster-bot');
    await supervisor.apply(
      assignment(1, [
        { clusterId: 0, shardIds: [0] },
        { clusterId: 1, shardIds: [1] },
      ]),
    );
    expect(pm2.calls).toContain(`delete ${stray}`);
    await supervisor.apply(assignment(2, [{ clusterId: 1, shardIds: [1] }]));
    const names = pm2.processes.map((proc) => proc['name']);
    expect(names).toEqual(['discluster-bot-cluster-9', 'my-worker', 'discluster-bot-cluster-1']);
    expect(pm2.calls).not.toContain(`delete ${operator}`);
    expect(pm2.calls).not.toContain(`delete ${unrelated}`);
    await supervisor.stopAll();
    expect(pm2.processes.map((proc) => proc['name'])).toEqual(['discluster-bot-cluster-9', 'my-worker']);
  });

  it('revoke stops only the named clusters, and their exits are not restarted', async () => {
    await supervisor.apply(
      assignment(1, [
        { clusterId: 0, shardIds: [0] },
        { clusterId: 1, shardIds: [1] },
      ]),
    );
    await supervisor.revoke([0, 5]);
    expect(pm2.processes.map((proc) => proc['name'])).toEqual(['discluster-bot-cluster-1']);
    pm2.emit('process:event', 'discluster-bot-cluster-0', { event: 'exit' });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(pm2.calls.filter((call) => call.startsWith('restart'))).toEqual([]);
    expect(supervisor.report().map((run) => run.clusterId)).toEqual([1]);
  });
});
