import path from 'node:path';
import { spawnNode, waitFor, type SpawnedProcess } from 'discluster-testing';
import { describe, expect, it } from 'vitest';
import { useMasterHarness } from './masterHarness';

/**
 * A MASTER that got no CPU for longer than `host_timeout_ms` (a busy machine, a paused VM) wakes
 * with its overdue timers and the hosts' heartbeats of that time waiting in its socket. It must
 * read the heartbeats before it judges the hosts: judging first fails over every host that kept
 * heartbeating all along. MASTER runs as its own process here (SIGSTOP / SIGCONT); the CONTROLs
 * are played by the test.
 */

const BIN = path.join(__dirname, '..', 'dist', 'main.js');
const TOKEN = 'stall-test-token-5c1e';
// Generous for the test's own hosts: they heartbeat from the test process, which a busy machine
// can starve for a second or two (a real loss, which this test must not see).
const HOST_TIMEOUT_MS = 3000;
const env = useMasterHarness<{ close(): Promise<void> }>(TOKEN, {
  guilds: 32,
  shards: 8,
  'max-concurrency': 2,
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function spawnMaster(bot: string): SpawnedProcess {
  const master = spawnNode(BIN, [], {
    env: env.masterEnv(bot, {
      DISCLUSTER_WAIT_FOR_HOSTS_MS: '30000',
      DISCLUSTER_EXPECTED_HOSTS: '2',
      DISCLUSTER_HOST_TIMEOUT_MS: String(HOST_TIMEOUT_MS),
      // Long enough that the stall below does not cost the leadership too.
      DISCLUSTER_LEADER_LEASE_MS: '60000',
      DISCLUSTER_LOG_LEVEL: 'info',
    }),
  });
  env.running.push({ close: async () => void (await master.stop()) });
  return master;
}

describe('MASTER after a stall', () => {
  it('reads the heartbeats that waited during the stall before judging hosts: nobody is failed over', async () => {
    const bot = env.nextBot('stall');
    const alpha = await env.host({ bot, id: 'alpha', cores: 2, heartbeatMs: 100 });
    const beta = await env.host({ bot, id: 'beta', cores: 2, heartbeatMs: 100 });
    const master = spawnMaster(bot);
    await waitFor(() => alpha.epoch === 1 && beta.epoch === 1, {
      description: 'the first assignments',
      timeoutMs: 30_000,
    });
    const linesBefore = master.lines.length;
    // No CPU for more than twice the host timeout, while both hosts keep heartbeating.
    expect(master.kill('SIGSTOP')).toBe(true);
    try {
      await sleep(3 * HOST_TIMEOUT_MS);
    } finally {
      master.kill('SIGCONT');
    }
    // Several monitor ticks after waking (each at most host_timeout / 4).
    await sleep(2 * HOST_TIMEOUT_MS);
    const after = master.lines.slice(linesBefore).join('\n');
    expect(after).not.toMatch(/host\(s\) lost|host lost/);
    const status = await env.status(bot);
    expect(status.epoch).toBe(1);
    expect(status.hosts.map((host) => [host.id, host.state])).toEqual([
      ['alpha', 'online'],
      ['beta', 'online'],
    ]);
    expect(alpha.epoch).toBe(1);
    expect(beta.epoch).toBe(1);
  });
});
