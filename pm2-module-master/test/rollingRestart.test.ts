import { waitFor } from 'discluster-testing';
import { describe, expect, it } from 'vitest';
import { startMaster, type MasterHandle } from '../src/startMaster';
import { useMasterHarness } from './masterHarness';

/**
 * `discluster restart --rolling` at MASTER, the CONTROLs played by the test: a host that is lost
 * when its turn comes is waited for, then skipped and named in the answer, never dropped silently.
 */

const TOKEN = 'rolling-test-token-77ae';
const env = useMasterHarness(TOKEN, { guilds: 32, shards: 8, 'max-concurrency': 2 });

async function master(bot: string): Promise<MasterHandle> {
  const handle = await startMaster(
    env.masterEnv(bot, {
      DISCLUSTER_WAIT_FOR_HOSTS_MS: '30000',
      DISCLUSTER_EXPECTED_HOSTS: '2',
      DISCLUSTER_HOST_TIMEOUT_MS: '1500',
      DISCLUSTER_LOG_LEVEL: 'silent',
    }),
  );
  env.running.push(handle);
  return handle;
}

describe('rolling restart at MASTER', () => {
  it('restarts every online host in turn and names a lost one it skipped', async () => {
    const bot = env.nextBot('rolling');
    const alpha = await env.host({ bot, id: 'alpha', cores: 2, rollingRestartMs: 4_000 });
    const beta = await env.host({ bot, id: 'beta', cores: 2 });
    await master(bot);
    await waitFor(() => alpha.epoch !== null && beta.epoch !== null, {
      description: 'the first assignments',
      timeoutMs: 20_000,
    });
    const fleet = await env.client(bot);
    try {
      const restart = fleet.askMaster({ v: 1, type: 'restart', rolling: true }, 120_000);
      // alpha restarts its clusters (4 s); meanwhile beta stops answering, and is lost when its
      // turn comes: MASTER waits for it a while, then skips it and says so.
      await waitFor(() => alpha.commands.some((command) => command.type === 'rolling-restart'), {
        description: "alpha's turn",
        timeoutMs: 20_000,
      });
      beta.stop();
      expect(await restart).toEqual({ hosts: ['alpha'], skipped: ['beta'] });
    } finally {
      await fleet.close();
    }
    expect(alpha.commands.filter((command) => command.type === 'rolling-restart')).toHaveLength(1);
    expect(beta.commands.filter((command) => command.type === 'rolling-restart')).toHaveLength(0);
  });
});
