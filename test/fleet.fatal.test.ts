import { pm2List, waitFor } from 'discluster-testing';
import { afterEach, describe, expect, it } from 'vitest';
import { Fleet, readyShards } from './support/fleet';
import { expectFleetInvariants } from './support/invariants';

/**
 * Issue 5 §6 and its "Must show": fatal gateway errors stop the whole fleet once, with a clear
 * reason, no restart loop, and no identify budget spent beyond the first failure.
 */

let fleet: Fleet | undefined;

afterEach(async () => {
  await fleet?.stop();
  fleet = undefined;
}, 120_000);

const clusterProcesses = async (f: Fleet, hostId: string) =>
  (await pm2List(f.host(hostId).home)).processes.filter((proc) => String(proc['name']).includes('-cluster-'));

const masterLinesMatching = (f: Fleet, pattern: RegExp) =>
  f.masters.flatMap((master) => master.lines).filter((line) => pattern.test(line));

describe('fatal errors', () => {
  it(
    'an invalid token stops the fleet before any identify, once, with the reason shown',
    { timeout: 120_000 },
    async () => {
      fleet = await Fleet.start({
        bot: 'badtoken',
        hosts: [{ id: 'alpha' }, { id: 'beta' }],
        shards: 4,
        maxConcurrency: 1,
        guilds: 40,
        leaseMs: 6000,
        hostTimeoutMs: 3000,
        masterToken: 'not-the-bot-token',
      });
      const before = await fleet.state();
      fleet.startMaster();
      const f = fleet;
      await waitFor(async () => (await f.status()).stopped !== null, {
        description: 'the fleet stopped',
        timeoutMs: 60_000,
      });
      const status = await fleet.status();
      expect(status.stopped?.reason).toMatch(/Discord rejected the bot token \(401/);
      const text = await fleet.cli('status');
      expect(text.stdout).toMatch(/FLEET STOPPED: Discord rejected the bot token/);
      await new Promise((resolve) => setTimeout(resolve, 3000));
      const after = await fleet.state();
      expect(after['identifies']).toBe(0);
      expectFleetInvariants(after);
      expect(after['sessionStartRemaining']).toBe(before['sessionStartRemaining']);
      expect(await clusterProcesses(fleet, 'alpha')).toEqual([]);
      expect(await clusterProcesses(fleet, 'beta')).toEqual([]);
      expect(masterLinesMatching(fleet, /Discord rejected the bot token/)).toHaveLength(1);
    },
  );

  it(
    'a fatal close (4004) on one shard stops every cluster of every host once; nothing restarts',
    { timeout: 180_000 },
    async () => {
      fleet = await Fleet.start({
        bot: 'fatal',
        hosts: [{ id: 'alpha' }, { id: 'beta' }],
        shards: 4,
        maxConcurrency: 1,
        guilds: 40,
        leaseMs: 6000,
        hostTimeoutMs: 3000,
      });
      fleet.startMaster();
      const f = fleet;
      await waitFor(async () => readyShards(await f.status()).length === 4, {
        description: 'every shard ready',
        timeoutMs: 120_000,
      });
      await fetch(`${fleet.sim.admin}/shards/0/close?code=4004`, { method: 'POST' });
      await waitFor(async () => (await f.status()).stopped !== null, {
        description: 'the fleet stopped',
        timeoutMs: 60_000,
      });
      const status = await fleet.status();
      expect(status.stopped).toEqual(expect.objectContaining({ code: 4004 }));
      expect(status.stopped?.reason).toMatch(/shard 0 .* fatal code 4004/);
      await waitFor(
        async () =>
          (await clusterProcesses(f, 'alpha')).length + (await clusterProcesses(f, 'beta')).length === 0,
        { description: 'every cluster stopped', timeoutMs: 60_000 },
      );
      const identifies = (await fleet.state())['identifies'];
      expect((await fleet.state())['liveSessions']).toEqual([]);
      await new Promise((resolve) => setTimeout(resolve, 4000));
      expect((await fleet.state())['identifies']).toBe(identifies);
      expectFleetInvariants(await fleet.state());
      expect(await clusterProcesses(fleet, 'alpha')).toEqual([]);
      expect(masterLinesMatching(fleet, /fleet stopped/)).toHaveLength(1);
    },
  );
});
