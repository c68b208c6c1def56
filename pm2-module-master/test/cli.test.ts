import { describe, expect, it } from 'vitest';
import type { FleetStatus } from 'discluster-protocol';
import { UsageError, parseCli } from '../src/cli/args';
import { renderReshard, renderResplit, renderStatus } from '../src/cli/render';
import { runCli } from '../src/cli/runCli';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (text: string) => out.push(text), err: (text: string) => err.push(text) }, out, err };
}

describe('discluster CLI arguments', () => {
  it('reads commands, flags and DISCLUSTER_* settings (flags win)', () => {
    const options = parseCli(['which', '81384788765712384', '--json', '--bot', 'mybot'], {
      DISCLUSTER_NATS_URL: 'nats://a:4222,nats://b:4222',
      DISCLUSTER_BOT: 'other',
    });
    expect(options.command).toEqual({ name: 'which', guildId: '81384788765712384' });
    expect(options.json).toBe(true);
    expect(options.bot).toBe('mybot');
    expect(options.nats.nats_url).toEqual(['nats://a:4222', 'nats://b:4222']);
    expect(parseCli(['restart', '--rolling'], {}).command).toEqual({ name: 'restart', rolling: true });
    expect(parseCli(['reshard'], {}).command).toEqual({ name: 'reshard', shards: null, wait: false });
    expect(parseCli(['reshard', '--shards', '64', '--wait'], {}).command).toEqual({
      name: 'reshard',
      shards: 64,
      wait: true,
    });
  });

  it('reads resplit --shards-per-cluster N [--wait]', () => {
    expect(parseCli(['resplit', '--shards-per-cluster', '32', '--wait'], {}).command).toEqual({
      name: 'resplit',
      shardsPerCluster: 32,
      wait: true,
    });
  });

  it("shows a re-split's progress in one line", () => {
    const progress = {
      id: 's1',
      shardsPerCluster: 32,
      reason: 'requested by an operator',
      clustersDone: 3,
      clustersTotal: 32,
      waitingFor: [70, 71],
      steps: 2,
      startedAt: 0,
      stepStartedAt: 0,
    };
    expect(renderResplit(progress)).toBe(
      'RESPLITTING to 32 shards per cluster: 3/32 clusters done, step 2 · waiting for cluster(s) 70, 71 to resume · requested by an operator',
    );
    expect(renderResplit({ ...progress, waitingFor: [] })).not.toMatch(/waiting/);
  });

  it("shows a reshard's progress in one line", () => {
    const progress = {
      id: 'r1',
      from: 16,
      to: 32,
      phase: 'starting' as const,
      reason: 'requested by an operator',
      ready: 12,
      total: 32,
      startedAt: 0,
      etaMs: 12_400,
    };
    expect(renderReshard(progress)).toBe(
      "RESHARDING 16 → 32 shards: 12/32 new shards ready · ETA 13 s at Discord's identify limit · requested by an operator",
    );
    expect(renderReshard({ ...progress, phase: 'switching', ready: 32 })).toMatch(
      /32\/32 new shards ready · handing over/,
    );
  });

  it.each([
    [['frobnicate'], /unknown command/],
    [['which'], /guild id/],
    [['which', 'abc'], /guild id/],
    [['status', 'extra'], /takes no argument/],
    [['status', '--nats-url', 'http://x'], /--nats-url/],
    [['status', '--bot', 'a b'], /--bot/],
    [['status', '--timeout-ms', 'soon'], /--timeout-ms/],
    [['status', '--no-such-flag'], /no-such-flag/],
    [['reshard', '--shards', 'many'], /--shards must be a positive whole number/],
    [['reshard', '--shards', '0'], /--shards must be a positive whole number/],
    [['reshard', '32'], /takes no argument/],
    [['resplit'], /resplit needs --shards-per-cluster N/],
    [['resplit', '--shards-per-cluster', 'big'], /resplit needs --shards-per-cluster N/],
    [['resplit', '--shards-per-cluster', '0'], /from 1 to 1000/],
    [['resplit', '--shards-per-cluster', '1001'], /from 1 to 1000/],
    [['resplit', '32'], /takes no argument/],
  ])('%j is a usage error naming the problem', (argv, pattern) => {
    expect(() => parseCli(argv, {})).toThrow(UsageError);
    expect(() => parseCli(argv, {})).toThrow(pattern);
  });

  it('exit code 2 with the usage text on bad usage, 0 with it on --help', async () => {
    const bad = capture();
    expect(await runCli(['nope'], {}, bad.io)).toBe(2);
    expect(bad.err.join('\n')).toMatch(/Usage: discluster/);
    const help = capture();
    expect(await runCli(['--help'], {}, help.io)).toBe(0);
    expect(help.out.join('\n')).toMatch(/restart \[--rolling\]/);
  });

  it('a NATS that cannot be reached is exit code 1 with a message saying what to check', async () => {
    const run = capture();
    expect(await runCli(['status', '--nats-url', 'nats://127.0.0.1:1'], {}, run.io)).toBe(1);
    expect(run.err.join('\n')).toMatch(/cannot connect to NATS at nats:\/\/127\.0\.0\.1:1.*--nats-url/);
  });
});

describe('status table', () => {
  it('shows hosts, clusters, a stop and MASTER being down', () => {
    const status: FleetStatus = {
      bot: 'b',
      shardCount: 4,
      maxConcurrency: 1,
      master: { up: false },
      source: 'controls',
      epoch: 3,
      stopped: { reason: 'shard 0 closed with fatal code 4004', code: 4004, at: 0 },
      hosts: [
        {
          id: 'alpha',
          role: 'active',
          state: 'online',
          cores: 4,
          load15: 0.5,
          epoch: 3,
          clusters: [
            {
              id: 0,
              state: 'online',
              restarts: 1,
              shards: [
                { id: 0, state: 'ready', ping: 40, guilds: 10 },
                { id: 1, state: 'resuming', ping: -1, guilds: 0 },
              ],
            },
          ],
        },
      ],
    };
    const text = renderStatus(status);
    expect(text).toMatch(/MASTER: DOWN/);
    expect(text).toMatch(/FLEET STOPPED: shard 0 closed with fatal code 4004/);
    expect(text).toMatch(/alpha\s+active\s+online\s+4\s+0\.50\s+1\s+1\/2\s+10/);
    expect(text).toMatch(/0\s+alpha\s+online\s+1\s+0-1\s+1 ready, 1 resuming\s+40/);
    expect(text).not.toMatch(/shards per cluster/);
    const sized = renderStatus({ ...status, stopped: null, shardsPerCluster: 32 });
    expect(sized).toMatch(/shards per cluster: 32 \(set by `discluster resplit`\)/);
    const resplitting = renderStatus({
      ...status,
      shardsPerCluster: 32,
      resplit: {
        id: 's1',
        shardsPerCluster: 32,
        reason: 'r',
        clustersDone: 1,
        clustersTotal: 2,
        waitingFor: [9],
        steps: 1,
        startedAt: 0,
        stepStartedAt: 0,
      },
    });
    expect(resplitting).toMatch(/RESPLITTING to 32 shards per cluster: 1\/2 clusters done/);
  });
});
