import { EventEmitter } from 'node:events';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type {
  AcquireOptions,
  AcquireOutcome,
  ConfirmOutcome,
  LeaseClaim,
  ShardLeases,
} from '../src/leases/shardLeases';
import type { Pm2Bus, Pm2Client, Pm2Json } from '../src/pm2/daemonClient';
import { ClusterSupervisor, STANDBY_BOOT_WAIT_MS, type HostAssignment } from '../src/clusters/supervisor';

/** An in-memory pm2: enough of the daemon to check what the supervisor asks of it. */
class FakePm2 implements Pm2Client {
  public readonly processes: Pm2Json[] = [];
  public readonly sent: { pmId: number; topic: string; data: Pm2Json }[] = [];
  public readonly calls: string[] = [];
  public readonly busEmitter = new EventEmitter();
  /** How often the process list was asked for. */
  public lists = 0;
  private nextId = 0;

  public async start(options: Pm2Json): Promise<Pm2Json[]> {
    this.calls.push(`start ${options['name']}`);
    const proc = {
      name: options['name'],
      pm_id: this.nextId++,
      options,
      pm2_env: { namespace: options['namespace'], status: 'online' },
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
    this.lists++;
    return this.processes;
  }
  public async send(pmId: number, topic: string, data: unknown): Promise<void> {
    this.sent.push({ pmId, topic, data: data as Pm2Json });
  }
  public async bus(): Promise<Pm2Bus> {
    return { on: (event, listener) => this.busEmitter.on(event, listener) };
  }
  public disconnect(): void {}

  /** Adds a process as if someone else (an operator, an earlier CONTROL boot) had started it. */
  public adopt(name: string, namespace: string, status = 'online'): number {
    const pmId = this.nextId++;
    this.processes.push({ name, pm_id: pmId, pid: 1000 + pmId, pm2_env: { namespace, status } });
    return pmId;
  }
  public messages(type: string): { pmId: number; data: Pm2Json }[] {
    return this.sent.filter((message) => message.data['type'] === type);
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
  for (let i = 0; i < 30; i++) await Promise.resolve();
};

/** Leases without NATS: every claim is granted at once unless a test holds it back. */
class FakeLeases implements ShardLeases {
  /** Half the lease time; a test may change it as MASTER changes the bucket's TTL. */
  public fenceAfterMs = 3_000;
  public readonly calls: string[] = [];
  public readonly claims: LeaseClaim[] = [];
  public confirmAnswer: ConfirmOutcome = 'confirmed';
  /** A cluster id whose claim waits until {@link grant} is called. */
  public holdBack: number | null = null;
  public heldBy: string | null = null;
  private granted: (() => void) | null = null;
  private freed: (() => void) | null = null;

  public async acquire(claim: LeaseClaim, options: AcquireOptions): Promise<AcquireOutcome> {
    this.calls.push(`acquire ${claim.clusterId} ${options.whenHeld}`);
    this.claims.push(claim);
    if (this.heldBy !== null && options.whenHeld === 'fail')
      return { kind: 'held', holder: { shardId: claim.shardIds[0]!, hostId: this.heldBy, clusterId: 9 } };
    if (this.heldBy !== null) {
      // As the real keeper: wait until the other host's lease is gone.
      options.onBlocked?.();
      await new Promise<void>((resolve) => {
        this.freed = resolve;
        options.signal.addEventListener('abort', () => resolve());
      });
      return options.signal.aborted ? { kind: 'aborted' } : { kind: 'acquired' };
    }
    if (this.holdBack !== claim.clusterId) return { kind: 'acquired' };
    options.onBlocked?.();
    await new Promise<void>((resolve) => {
      this.granted = resolve;
      options.signal.addEventListener('abort', () => resolve());
    });
    return options.signal.aborted ? { kind: 'aborted' } : { kind: 'acquired' };
  }
  public grant(): void {
    this.granted?.();
  }
  /** The other host's lease is gone (released or expired). */
  public free(): void {
    this.heldBy = null;
    this.freed?.();
  }
  public async confirm(clusterId: number): Promise<ConfirmOutcome> {
    this.calls.push(`confirm ${clusterId}`);
    return this.confirmAnswer;
  }
  public async release(clusterId: number): Promise<void> {
    this.calls.push(`release ${clusterId}`);
  }
  public async sweep(keep: readonly LeaseClaim[]): Promise<void> {
    this.calls.push(`sweep ${keep.map((claim) => claim.clusterId).join(',')}`);
  }
}

let pm2: FakePm2;
let leases: FakeLeases;
let failed: [number, number, string][];
let fatals: [number, number, number][];
let supervisor: ClusterSupervisor;

beforeEach(() => {
  vi.useFakeTimers();
  pm2 = new FakePm2();
  leases = new FakeLeases();
  failed = [];
  fatals = [];
  supervisor = new ClusterSupervisor({
    pm2,
    bot: 'bot',
    script: '/srv/bot/index.js',
    nats: { servers: ['nats://127.0.0.1:4222'] },
    policy: { maxFailedStarts: 3, minUptimeMs: 10_000, baseDelayMs: 1_000, maxDelayMs: 30_000 },
    leases,
    shutdownTimeoutMs: 5_000,
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
  it('starts each cluster in its namespace with only the cluster id and the malloc arena limit in the environment', async () => {
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
        env: { DISCLUSTER_CLUSTER_ID: '0', MALLOC_ARENA_MAX: expect.stringMatching(/^\d+$/) },
        filter_env: [''],
        autorestart: false,
      }),
      expect.objectContaining({
        name: 'discluster-bot-cluster-1',
        env: expect.objectContaining({ DISCLUSTER_CLUSTER_ID: '1' }),
      }),
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
      data: {
        type: 'assign',
        epoch: 2,
        clusterId: 0,
        shardIds: [0, 1],
        token: 'TOKEN-abc',
        bot: 'bot',
        fenceAfterMs: 3_000,
      },
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

  it('takes the leases before starting, and frees them only once the process is gone', async () => {
    await supervisor.apply(assignment(1, [{ clusterId: 0, shardIds: [0, 1] }]));
    expect(leases.calls[0]).toBe('acquire 0 wait');
    expect(leases.claims[0]).toEqual({ clusterId: 0, shardIds: [0, 1], shardCount: 30, epoch: 1 });
    expect(pm2.calls).toEqual(['start discluster-bot-cluster-0']);
    await supervisor.revoke([0]);
    expect(pm2.calls).toEqual(['start discluster-bot-cluster-0', 'delete 0']);
    expect(leases.calls.at(-1)).toBe('release 0');
  });

  it('a cluster whose shards another host holds stays `starting` and is not started until they are ours', async () => {
    leases.holdBack = 1;
    await supervisor.apply(
      assignment(1, [
        { clusterId: 0, shardIds: [0] },
        { clusterId: 1, shardIds: [1] },
      ]),
    );
    // apply does not wait for the other host: cluster 0 runs, cluster 1 waits.
    expect(pm2.processes.map((proc) => proc['name'])).toEqual(['discluster-bot-cluster-0']);
    expect(supervisor.report().find((run) => run.clusterId === 1)?.state).toBe('starting');
    leases.grant();
    await flush();
    expect(pm2.processes.map((proc) => proc['name'])).toEqual([
      'discluster-bot-cluster-0',
      'discluster-bot-cluster-1',
    ]);
  });

  it('revoking a cluster still waiting for its leases ends the wait and starts nothing', async () => {
    leases.holdBack = 0;
    await supervisor.apply(assignment(1, [{ clusterId: 0, shardIds: [0] }]));
    await supervisor.revoke([0]);
    leases.grant();
    await flush();
    expect(pm2.calls).toEqual([]);
    expect(leases.calls).toContain('release 0');
  });

  it('a lost lease: shutdown over IPC, the process removed, never restarted', async () => {
    await supervisor.apply(assignment(1, [{ clusterId: 0, shardIds: [0] }]));
    supervisor.leaseLost(0, { shardId: 0, hostId: 'host-b', clusterId: 4 });
    await flush();
    expect(pm2.messages('shutdown')).toEqual([
      { pmId: 0, topic: 'discluster:control', data: expect.objectContaining({ type: 'shutdown' }) },
    ]);
    pm2.emit('process:event', 'discluster-bot-cluster-0', { event: 'exit' });
    await flush();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(pm2.calls).toEqual(['start discluster-bot-cluster-0', 'delete 0']);
    expect(supervisor.report()).toEqual([expect.objectContaining({ clusterId: 0, state: 'stopped' })]);
    expect(leases.calls.at(-1)).toBe('release 0');
  });

  it('tells a cluster to fence, and answers its confirm from the leases', async () => {
    await supervisor.apply(assignment(3, [{ clusterId: 0, shardIds: [0] }]));
    const name = 'discluster-bot-cluster-0';
    supervisor.fence(0);
    await flush();
    expect(pm2.messages('fence')).toHaveLength(1);
    // NATS still unreachable: no answer; the cluster asks again.
    leases.confirmAnswer = 'unknown';
    pm2.emit('process:msg', name, { data: { v: 1, type: 'confirm', clusterId: 0, epoch: 3 } });
    await flush();
    expect(pm2.messages('confirm-reply')).toEqual([]);
    leases.confirmAnswer = 'confirmed';
    pm2.emit('process:msg', name, { data: { v: 1, type: 'confirm', clusterId: 0, epoch: 3 } });
    await flush();
    expect(pm2.messages('confirm-reply').map((m) => m.data)).toEqual([
      { v: 1, type: 'confirm-reply', epoch: 3, confirmed: true },
    ]);
    expect(pm2.calls).toEqual(['start discluster-bot-cluster-0']);
  });

  it('a refused confirm answers false, then shuts the cluster down for good', async () => {
    await supervisor.apply(assignment(3, [{ clusterId: 0, shardIds: [0] }]));
    leases.confirmAnswer = 'refused';
    pm2.emit('process:msg', 'discluster-bot-cluster-0', {
      data: { v: 1, type: 'confirm', clusterId: 0, epoch: 3 },
    });
    await flush();
    expect(pm2.sent.map((m) => m.data['type'])).toEqual(['confirm-reply', 'shutdown']);
    expect(pm2.messages('confirm-reply')[0]?.data).toMatchObject({ confirmed: false });
    await vi.advanceTimersByTimeAsync(5_000);
    expect(pm2.calls).toContain('delete 0');
    expect(supervisor.report()[0]?.state).toBe('stopped');
  });

  it("a reshard's new generation starts one cluster at a time, each once the previous one booted; the old one is left alone", async () => {
    await supervisor.apply(assignment(1, [{ clusterId: 0, shardIds: [0, 1] }]));
    await flush();
    const started = () => pm2.calls.filter((call) => call.startsWith('start '));
    expect(started()).toEqual(['start discluster-bot-cluster-0']);
    const status = (clusterId: number, shardIds: number[]) => ({
      data: {
        v: 1,
        type: 'status',
        clusterId,
        epoch: 2,
        shards: shardIds.map((id) => ({
          id,
          state: 'identifying',
          ping: -1,
          guilds: 0,
          events: 0,
          waitingReason: null,
          lastCloseCode: null,
        })),
      },
    });
    await supervisor.apply({
      ...assignment(2, [{ clusterId: 0, shardIds: [0, 1] }]),
      next: {
        shardCount: 60,
        clusterIds: [1, 2, 3],
        clusters: [
          { clusterId: 1, shardIds: [0, 1] },
          { clusterId: 2, shardIds: [2, 3] },
          { clusterId: 3, shardIds: [4, 5] },
        ],
      },
    });
    await flush();
    // Booting processes side by side starve the serving generation (and CONTROL) of CPU.
    expect(started()).toEqual(['start discluster-bot-cluster-0', 'start discluster-bot-cluster-1']);
    expect(supervisor.report().map((c) => [c.clusterId, c.state])).toEqual([
      [0, 'starting'],
      [1, 'starting'],
      [2, 'starting'],
      [3, 'starting'],
    ]);
    pm2.emit('process:msg', 'discluster-bot-cluster-1', status(1, [0, 1]));
    await flush();
    expect(started()).toHaveLength(3);
    expect(started()[2]).toBe('start discluster-bot-cluster-2');
    // One that exits before its first report does not hold the next one back either.
    pm2.emit('process:event', 'discluster-bot-cluster-2', { event: 'exit' });
    await flush();
    expect(started()).toEqual([
      'start discluster-bot-cluster-0',
      'start discluster-bot-cluster-1',
      'start discluster-bot-cluster-2',
      'start discluster-bot-cluster-3',
    ]);
  });

  it('a new generation cluster that never reports holds the next one back for STANDBY_BOOT_WAIT_MS at most; one dropped meanwhile is never started', async () => {
    const next = {
      shardCount: 60,
      clusterIds: [1, 2, 3],
      clusters: [
        { clusterId: 1, shardIds: [0, 1] },
        { clusterId: 2, shardIds: [2, 3] },
        { clusterId: 3, shardIds: [4, 5] },
      ],
    };
    await supervisor.apply({ ...assignment(2, [{ clusterId: 0, shardIds: [0, 1] }]), next });
    await flush();
    const started = () => pm2.calls.filter((call) => call.startsWith('start '));
    expect(started()).toEqual(['start discluster-bot-cluster-0', 'start discluster-bot-cluster-1']);
    await vi.advanceTimersByTimeAsync(STANDBY_BOOT_WAIT_MS - 1);
    expect(started()).toHaveLength(2);
    // The reshard is rolled back before cluster 3's turn: it must not start afterwards.
    await vi.advanceTimersByTimeAsync(1);
    await flush();
    expect(started()).toEqual([
      'start discluster-bot-cluster-0',
      'start discluster-bot-cluster-1',
      'start discluster-bot-cluster-2',
    ]);
    await supervisor.apply(assignment(3, [{ clusterId: 0, shardIds: [0, 1] }]));
    await vi.advanceTimersByTimeAsync(STANDBY_BOOT_WAIT_MS);
    await flush();
    expect(started()).toHaveLength(3);
    expect(supervisor.report().map((c) => c.clusterId)).toEqual([0]);
  });

  it('keepalive: to the online clusters named, never to one being stopped; a pm2 list only for a process not known since its last exit', async () => {
    await supervisor.apply(
      assignment(5, [
        { clusterId: 0, shardIds: [0] },
        { clusterId: 1, shardIds: [1] },
        { clusterId: 2, shardIds: [2] },
        { clusterId: 3, shardIds: [3] },
      ]),
    );
    await flush();
    const [c0, , c2, c3] = pm2.processes;
    c2!['pm2_env']['status'] = 'stopped'; // exited, waiting for its restart
    await supervisor.revoke([1]);
    const lists = pm2.lists;
    supervisor.keepalive([0, 1, 2, 3, 7]);
    await flush();
    expect(pm2.lists).toBe(lists + 1);
    const keepalive = { topic: 'discluster:control', data: { v: 1, type: 'keepalive', epoch: 5 } };
    expect(pm2.messages('keepalive')).toEqual([
      { pmId: c0!['pm_id'], ...keepalive },
      { pmId: c3!['pm_id'], ...keepalive },
    ]);
    // Each cluster as soon as its leases are renewed (the lease keeper reports one at a time): the
    // processes listed online go at once, with no list; one per call also while a list is under way.
    supervisor.keepalive([0]);
    supervisor.keepalive([3]);
    supervisor.keepalive([2]);
    supervisor.keepalive([0]);
    expect(pm2.messages('keepalive').map((m) => m.pmId)).toEqual([
      c0!['pm_id'],
      c3!['pm_id'],
      c0!['pm_id'],
      c3!['pm_id'],
      c0!['pm_id'],
    ]);
    await flush();
    // Cluster 2 (not online at the last list) waited for one; it is still not online.
    expect(pm2.lists).toBe(lists + 2);
    expect(pm2.messages('keepalive')).toHaveLength(5);
    // A round's keepalive says when the renewal it vouches for was sent (the cluster counts from there).
    supervisor.keepalive([3], 1_234_567);
    expect(pm2.messages('keepalive').at(-1)?.data).toEqual({
      v: 1,
      type: 'keepalive',
      epoch: 5,
      renewedAt: 1_234_567,
    });
    // An exit: its pm_id is listed again before the next keepalive (it may be another process now).
    pm2.emit('process:event', c3!['name'] as string, { event: 'exit' });
    await flush();
    const listsBefore = pm2.lists;
    supervisor.keepalive([3]);
    await flush();
    expect(pm2.lists).toBe(listsBefore + 1);
  });

  it('a changed lease time: every cluster gets its assignment again with the new fence time', async () => {
    await supervisor.apply(
      assignment(4, [
        { clusterId: 0, shardIds: [0] },
        { clusterId: 1, shardIds: [1] },
      ]),
    );
    await flush();
    const sentBefore = pm2.sent.length;
    leases.fenceAfterMs = 1_500;
    supervisor.leaseTimesChanged();
    await flush();
    expect(pm2.sent.slice(sentBefore)).toEqual([
      expect.objectContaining({
        pmId: pm2.processes[0]!['pm_id'],
        data: expect.objectContaining({ type: 'assign', epoch: 4, clusterId: 0, fenceAfterMs: 1_500 }),
      }),
      expect.objectContaining({
        pmId: pm2.processes[1]!['pm_id'],
        data: expect.objectContaining({ type: 'assign', epoch: 4, clusterId: 1, fenceAfterMs: 1_500 }),
      }),
    ]);
  });

  it('adopts a running cluster process of its namespace instead of starting another', async () => {
    const running = pm2.adopt('discluster-bot-cluster-0', 'discluster-bot');
    const stopped = pm2.adopt('discluster-bot-cluster-1', 'discluster-bot', 'stopped');
    await supervisor.apply(
      assignment(4, [
        { clusterId: 0, shardIds: [0] },
        { clusterId: 1, shardIds: [1] },
      ]),
    );
    expect(leases.calls).toEqual(expect.arrayContaining(['acquire 0 fail', 'acquire 1 wait']));
    // The running one got the assignment; the stopped leftover was replaced by a fresh start.
    expect(pm2.messages('assign').map((m) => m.pmId)).toEqual([running]);
    // Its leases were just taken over: a keepalive right behind the assignment, not a round later.
    expect(pm2.sent.filter((m) => m.pmId === running).map((m) => m.data['type'])).toEqual([
      'assign',
      'keepalive',
    ]);
    expect(pm2.messages('keepalive')[0]?.data).toEqual({ v: 1, type: 'keepalive', epoch: 4 });
    expect(pm2.calls).toEqual([`delete ${stopped}`, 'start discluster-bot-cluster-1']);
    expect(leases.calls).toContain('sweep 0,1');
  });

  it('an adopted cluster with a shard still leased elsewhere is shut down, then started afresh once the shard is free', async () => {
    const running = pm2.adopt('discluster-bot-cluster-0', 'discluster-bot');
    leases.heldBy = 'host-b';
    await supervisor.apply(assignment(4, [{ clusterId: 0, shardIds: [0] }]));
    await flush();
    // The old process never gets this plan's assignment: it must not serve a shard another host holds.
    expect(pm2.messages('assign')).toEqual([]);
    expect(pm2.messages('shutdown').map((m) => m.pmId)).toEqual([running]);
    pm2.emit('process:event', 'discluster-bot-cluster-0', { event: 'exit' });
    await flush();
    expect(pm2.calls).toEqual([`delete ${running}`]);
    // Its exit was expected: no crash restart; it waits for the shard.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(pm2.calls).toEqual([`delete ${running}`]);
    expect(supervisor.report()[0]?.state).toBe('starting');
    expect(leases.calls.filter((call) => call.startsWith('acquire'))).toEqual([
      'acquire 0 fail',
      'acquire 0 wait',
    ]);
    leases.free();
    await flush();
    expect(pm2.calls).toEqual([`delete ${running}`, 'start discluster-bot-cluster-0']);
    expect(failed).toEqual([]);
  });

  it('restartCluster: shutdown, wait for the exit, start again; the exit is not a crash', async () => {
    await supervisor.apply(assignment(1, [{ clusterId: 0, shardIds: [0] }]));
    const name = 'discluster-bot-cluster-0';
    const ready = [
      { id: 0, state: 'ready', ping: 1, guilds: 0, events: 0, waitingReason: null, lastCloseCode: null },
    ];
    pm2.emit('process:msg', name, { data: { v: 1, type: 'status', clusterId: 0, epoch: 1, shards: ready } });
    const restarting = supervisor.restartCluster(0);
    await flush();
    expect(pm2.messages('shutdown')).toHaveLength(1);
    expect(pm2.calls.filter((call) => call.startsWith('restart'))).toEqual([]);
    pm2.emit('process:event', name, { event: 'exit' });
    await restarting;
    expect(pm2.calls).toEqual(['start discluster-bot-cluster-0', 'restart 0']);
    expect(supervisor.report()[0]).toMatchObject({ state: 'starting', restarts: 0 });
    const readyWait = supervisor.waitReady(0, 10_000);
    pm2.emit('process:event', name, { event: 'online' });
    pm2.emit('process:msg', name, { data: { v: 1, type: 'status', clusterId: 0, epoch: 1, shards: ready } });
    expect(await readyWait).toBe(true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(pm2.calls.filter((call) => call.startsWith('restart'))).toHaveLength(1);
    expect(failed).toEqual([]);
    await expect(supervisor.restartCluster(7)).rejects.toThrow(/does not run on this host/);
  });
});

describe('ClusterSupervisor hung-cluster watchdog', () => {
  const name = 'discluster-bot-cluster-0';
  const shards = (state: string) => [
    { id: 0, state, ping: 1, guilds: 0, events: 0, waitingReason: null, lastCloseCode: null },
  ];
  const report = (state = 'ready') =>
    pm2.emit('process:msg', name, {
      data: { v: 1, type: 'status', clusterId: 0, epoch: 1, shards: shards(state) },
    });
  let killed: number[];
  let watched: ClusterSupervisor;

  beforeEach(async () => {
    killed = [];
    watched = new ClusterSupervisor({
      pm2,
      bot: 'bot',
      script: '/srv/bot/index.js',
      nats: { servers: ['nats://127.0.0.1:4222'] },
      policy: { maxFailedStarts: 3, minUptimeMs: 10_000, baseDelayMs: 1_000, maxDelayMs: 30_000 },
      leases,
      logger: pino({ level: 'silent' }),
      onClusterFailed: (id, attempts, reason) => failed.push([id, attempts, reason]),
      onFatal: () => undefined,
      clock: () => Date.now(),
      killProcess: (pid) => killed.push(pid),
    });
    await watched.apply(assignment(1, [{ clusterId: 0, shardIds: [0] }]));
    pm2.processes[0]!['pid'] = 4242;
    pm2.emit('process:event', name, { event: 'online' });
  });
  afterEach(() => watched.close());

  /** Reports every `intervalMs`, `count` times (the SDK's periodic status). */
  const reportEvery = async (intervalMs: number, count: number, state = 'ready') => {
    for (let i = 0; i < count; i++) {
      report(state);
      await vi.advanceTimersByTimeAsync(intervalMs);
    }
  };

  it('kills a cluster silent for 3 of its learned report intervals; the exit restarts it', async () => {
    await reportEvery(2_500, 4);
    // Last report 2.5 s ago; the interval learned is 2.5 s, so the limit is 7.5 s.
    await vi.advanceTimersByTimeAsync(4_500);
    expect(killed).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(killed).toEqual([4242]);
    // Killed once, not once per tick.
    await vi.advanceTimersByTimeAsync(5_000);
    expect(killed).toEqual([4242]);
    pm2.emit('process:event', name, { event: 'exit' });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(pm2.calls).toContain('restart 0');
    expect(watched.report()[0]).toMatchObject({ restarts: 1 });
    // The new process is not watched before it reported twice periodically.
    pm2.emit('process:event', name, { event: 'online' });
    report();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(killed).toEqual([4242]);
  });

  it('never kills before two periodic reports in a row, nor a cluster that keeps reporting', async () => {
    // Change-driven reports only (every state differs): not armed, whatever the silence after.
    report('idle');
    await vi.advanceTimersByTimeAsync(250);
    report('identifying');
    await vi.advanceTimersByTimeAsync(250);
    report('ready');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(killed).toEqual([]);
    await reportEvery(1_000, 30);
    expect(killed).toEqual([]);
  });

  it('waits at least 5 s whatever the interval, and spares clusters being stopped or restarted', async () => {
    await reportEvery(100, 5);
    await vi.advanceTimersByTimeAsync(4_000);
    expect(killed).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_500);
    expect(killed).toEqual([4242]);
    pm2.emit('process:event', name, { event: 'exit' });
    await vi.advanceTimersByTimeAsync(1_000);
    pm2.emit('process:event', name, { event: 'online' });
    await reportEvery(1_000, 4);
    const restarting = watched.restartCluster(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(killed).toEqual([4242]);
    pm2.emit('process:event', name, { event: 'exit' });
    await restarting;
  });

  it('after CONTROL itself stalled, one check is skipped so unread reports count first', async () => {
    await reportEvery(1_000, 4);
    // CONTROL's event loop was blocked for 10 s: the first check after it proves nothing.
    vi.setSystemTime(Date.now() + 10_000);
    await vi.advanceTimersByTimeAsync(250);
    expect(killed).toEqual([]);
    report();
    await vi.advanceTimersByTimeAsync(250);
    expect(killed).toEqual([]);
  });

  it('a report that arrives while the kill is being decided (a stalled pm2 daemon) spares the cluster', async () => {
    await reportEvery(1_000, 4);
    // The silence reaches the 5 s limit at the next tick; the pm2 daemon then delivers the held report.
    await vi.advanceTimersByTimeAsync(4_000);
    report();
    await vi.advanceTimersByTimeAsync(500);
    expect(killed).toEqual([]);
  });

  it('a pid pm2 no longer shows online is not killed', async () => {
    await reportEvery(1_000, 4);
    pm2.processes[0]!['pm2_env']['status'] = 'stopped';
    await vi.advanceTimersByTimeAsync(10_000);
    expect(killed).toEqual([]);
  });
});
