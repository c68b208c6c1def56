/**
 * Fleet mode under a real pm2 daemon (private PM2_HOME), real nats-server and discord-sim. The
 * test plays CONTROL exactly as discluster-control does: it starts the bot with `pm2.start`,
 * reads the cluster's messages from the pm2 bus (`process:msg`) and answers with
 * `pm2.sendDataToProcessId`. Timeouts are liveness bounds, never performance assertions.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  startNatsServer,
  startTcpProxy,
  waitFor,
  type DiscordSimProcess,
  type NatsServerHandle,
  type TcpProxyHandle,
} from 'discluster-testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { allShards, assignMessage, waitForMessage } from './control';
import { uniqueBot } from './helpers';
import { startPm2, type Pm2App, type Pm2Harness } from './pm2Harness';
import { startSimWithGateway, TWO_SHARD_SIM } from './standaloneHarness';

const FIXTURE = path.join(__dirname, 'fixtures', 'fleetCluster.js');
const TOKEN = 'pm2-fleet-secret-TOKEN-7c2e5a';
const TEST_TIMEOUT_MS = 180_000;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON from pm2 and the simulator
type Json = Record<string, any>;

let nats: NatsServerHandle;
let pm2: Pm2Harness;
const sims: DiscordSimProcess[] = [];
const proxies: TcpProxyHandle[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  pm2 = await startPm2();
});
afterEach(async () => {
  for (const app of (await pm2.list()).map((p) => String(p['name']))) await pm2.delete(app).catch(() => {});
  for (const proxy of proxies.splice(0)) await proxy.close();
  for (const sim of sims.splice(0)) await sim.stop();
});
afterAll(async () => {
  await pm2?.kill();
  await nats?.stop();
  if (pm2) fs.rmSync(pm2.home, { recursive: true, force: true });
});

interface Fleet {
  readonly sim: DiscordSimProcess;
  readonly gateway: Json;
  readonly bot: string;
}

async function startSim(): Promise<Fleet> {
  const { sim, gateway } = await startSimWithGateway(sims, TOKEN, TWO_SHARD_SIM);
  return { sim, gateway, bot: uniqueBot('pm') };
}

/** Starts the fleet fixture under pm2 as CONTROL does: only the (public) cluster id in its env. */
function startBot(name: string, env: Record<string, string> = {}, app: Json = {}): Promise<Pm2App> {
  return pm2.start({
    ...app,
    name,
    script: FIXTURE,
    // The test decides when it runs again (CONTROL's job), so pm2 must not restart it by itself.
    autorestart: false,
    kill_timeout: 5000,
    env: {
      DISCLUSTER_CLUSTER_ID: '0',
      TEST_IDENTIFY_WINDOW_MS: '200',
      TEST_STATUS_INTERVAL_MS: '500',
      ...env,
    },
  });
}

/** Waits for the next `hello` from index `from`, answers with an assignment, waits until every shard is ready. */
async function assignAndWaitReady(
  app: Pm2App,
  fleet: Fleet,
  options: { from?: number; natsUrl?: string; epoch?: number } = {},
): Promise<number> {
  const from = options.from ?? 0;
  await waitForMessage(app, 'hello', { from, description: `hello from ${app.name}` });
  await app.send(
    assignMessage({
      epoch: options.epoch ?? 1,
      shardIds: [0, 1],
      shardCount: 2,
      bot: fleet.bot,
      token: TOKEN,
      gateway: fleet.gateway as never,
      natsServers: [options.natsUrl ?? nats.url],
    }),
  );
  const ready = await waitForMessage(app, 'status', {
    from,
    where: allShards('ready'),
    description: `every shard of ${app.name} ready`,
  });
  return ready.index;
}

/**
 * `pm2 trigger` through the CLI. The CLI has a race of its own (its reply can arrive before it
 * knows how many to wait for, and then it waits forever), so a hung attempt is retried; the
 * action itself is checked race-free through {@link Pm2Harness.trigger}.
 */
async function cliTrigger(name: string, action: string): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await pm2.cli('trigger', name, action)).stdout;
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

async function exitCodeAfter(app: Pm2App, from: number): Promise<number> {
  await waitFor(() => app.processEvents.slice(from).some((e) => e['event'] === 'exit'), {
    description: `${app.name} exited`,
    timeoutMs: 30_000,
  });
  return app.processEvents.slice(from).find((e) => e['event'] === 'exit')!['process'].exit_code as number;
}

describe('fleet mode under pm2', () => {
  it(
    'serves the assignment sent over pm2 IPC, reports to CONTROL and pm2, keeps the token secret, and resumes after shutdown',
    async () => {
      const fleet = await startSim();
      const app = await startBot('fleet-main');
      await assignAndWaitReady(app, fleet);
      const pmId = await app.pmId();
      expect((await fleet.sim.state())['liveSessions']).toHaveLength(2);

      // Custom metrics in pm2_env.axm_monitor (what `pm2 show` and `pm2 monit` display).
      await waitFor(
        async () => {
          const monitor = (await pm2.describe(pmId))?.['pm2_env']?.['axm_monitor'] as Json | undefined;
          return (
            monitor?.['shard 0 state']?.value === 'ready' &&
            monitor?.['shard 1 state']?.value === 'ready' &&
            monitor?.['shard 1 ping ms']?.value >= 0 &&
            monitor?.['guilds']?.value === 100
          );
        },
        { description: 'per-shard metrics in axm_monitor', timeoutMs: 30_000 },
      );
      const description = (await pm2.describe(pmId))!;
      const monitor = description['pm2_env']['axm_monitor'] as Json;
      for (const shard of [0, 1]) {
        for (const metric of ['state', 'ping ms', 'guilds', 'events/s'])
          expect(monitor).toHaveProperty([`shard ${shard} ${metric}`]);
      }
      expect(monitor['shards ready'].value).toBe(2);
      expect(monitor['shard 0 guilds'].value + monitor['shard 1 guilds'].value).toBe(100);
      expect(typeof monitor['events/s'].value).toBe('number');
      const actions = (description['pm2_env']['axm_actions'] as Json[]).map((a) => a['action_name']);
      expect(actions).toContain('status');

      // `pm2 trigger fleet-main status`: the action message and its reply, then the CLI itself.
      const reply = (await pm2.trigger('fleet-main', 'status')) as Json;
      expect(reply).toMatchObject({ clusterId: 0, mode: 'fleet', epoch: 1, fenced: false });
      expect(reply['shards'].map((s: Json) => s['state'])).toEqual(['ready', 'ready']);
      expect(await cliTrigger('fleet-main', 'status')).toMatch(/"shards":\[/);

      // Promise 4: the token is in none of pm2's views, logs, or any command line but Discord's.
      const outputs = [
        JSON.stringify(await pm2.list()),
        JSON.stringify(description),
        (await pm2.cli('jlist')).stdout,
        (await pm2.cli('env', String(pmId))).stdout,
        (await pm2.cli('describe', 'fleet-main')).stdout,
        JSON.stringify(reply),
      ];
      for (const output of outputs) expect(output).not.toContain(TOKEN);
      const logs = [description['pm2_env'].pm_out_log_path, description['pm2_env'].pm_err_log_path].map(
        (file: string) => fs.readFileSync(file, 'utf8'),
      );
      expect(logs[0]).toContain('"type":"debug"'); // the debug stream really is in the log
      for (const log of logs) expect(log).not.toContain(TOKEN);
      const { stdout: ps } = await promisify(execFile)('ps', ['-eo', 'pid=,args=']);
      const simPid = fleet.sim.process.pid;
      const withToken = ps.split('\n').filter((line) => line.includes(TOKEN));
      expect(withToken.map((line) => Number(line.trim().split(/\s+/)[0]))).toEqual(
        withToken.length ? [simPid] : [],
      );

      // CONTROL's shutdown: shards closed for resume, sessions saved, exit code 0.
      const before = await fleet.sim.state();
      const eventsBefore = app.processEvents.length;
      await app.send({ v: 1, type: 'shutdown', reason: 'rolling restart' });
      expect(await exitCodeAfter(app, eventsBefore)).toBe(0);
      const last = app.received.at(-1) as Json;
      expect(last['type']).toBe('status');
      expect(last['shards'].map((s: Json) => s['state'])).toEqual(['idle', 'idle']);
      await waitFor(async () => (await fleet.sim.state())['liveSessions'].length === 0, {
        description: 'sessions closed at the gateway',
      });

      // Started again, it RESUMEs both sessions and spends no identify.
      const from = app.received.length;
      await pm2.restart('fleet-main');
      await assignAndWaitReady(app, fleet, { from });
      const after = await fleet.sim.state();
      expect(after['identifies']).toBe(before['identifies']);
      expect(after['resumes'] - before['resumes']).toBe(2);
      expect(after['violations']).toMatchObject({
        identifyRate: 0,
        duplicateLiveSessions: 0,
        resumeWhileLive: 0,
      });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'registers its metrics and action with its own @pm2/io when pm2 injects none (pmx: false)',
    async () => {
      const fleet = await startSim();
      const app = await startBot('fleet-no-pmx', {}, { pmx: false });
      await assignAndWaitReady(app, fleet);
      await waitFor(
        async () => {
          const env = (await pm2.describe('fleet-no-pmx'))?.['pm2_env'] as Json | undefined;
          return (
            env?.['axm_monitor']?.['shard 1 state']?.value === 'ready' &&
            (env?.['axm_actions'] as Json[] | undefined)?.some((a) => a['action_name'] === 'status') === true
          );
        },
        { description: 'metrics and action registered', timeoutMs: 30_000 },
      );
      expect(((await pm2.trigger('fleet-no-pmx', 'status')) as Json)['shards']).toHaveLength(2);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'reports a fatal close (4004) to CONTROL and does not identify again',
    async () => {
      const fleet = await startSim();
      const app = await startBot('fleet-fatal');
      await assignAndWaitReady(app, fleet);
      const before = await fleet.sim.state();
      const closed = await fetch(`${fleet.sim.admin}/shards/0/close?code=4004`, { method: 'POST' });
      expect(closed.ok).toBe(true);
      const fatal = await waitForMessage(app, 'fatal', { description: 'fatal message' });
      expect(fatal.message).toMatchObject({ clusterId: 0, shardId: 0, code: 4004 });
      expect(fatal.message.reason).toMatch(/token is invalid/);
      // Several periodic reports later, shard 0 is still down and nothing identified.
      const statuses = (from: number) => app.received.slice(from).filter((m) => m.type === 'status');
      await waitFor(() => statuses(fatal.index).length >= 4, { description: 'four more status reports' });
      const latest = statuses(fatal.index).at(-1) as Json;
      expect(latest['shards'][0]).toMatchObject({ id: 0, state: 'idle', lastCloseCode: 4004 });
      expect(latest['shards'][1]).toMatchObject({ id: 1, state: 'ready' });
      const after = await fleet.sim.state();
      expect(after['identifies']).toBe(before['identifies']);
      expect(after['resumes']).toBe(before['resumes']);
      expect(after['liveSessions'].map((s: Json) => s['shard'][0])).toEqual([1]);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "replaces pm2's swallowing of errors: a rejection while serving is logged, an uncaught exception stops for resume and exits 1",
    async () => {
      const fleet = await startSim();
      const app = await startBot('fleet-guards');
      await assignAndWaitReady(app, fleet);
      const errorLog = async () =>
        fs.readFileSync((await pm2.describe('fleet-guards'))!['pm2_env'].pm_err_log_path, 'utf8');

      await app.sendTopic('test:fault', 'reject');
      await waitFor(
        async () => (await errorLog()).includes('unhandled rejection (logged; the cluster keeps serving)'),
        {
          description: 'the rejection logged',
        },
      );
      const from = app.received.length;
      await waitForMessage(app, 'status', { from, where: allShards('ready'), description: 'still serving' });
      expect((await pm2.describe('fleet-guards'))!['pm2_env'].status).toBe('online');

      const before = await fleet.sim.state();
      const eventsBefore = app.processEvents.length;
      await app.sendTopic('test:fault', 'throw');
      expect(await exitCodeAfter(app, eventsBefore)).toBe(1);
      expect(await errorLog()).toMatch(
        /uncaught exception \(fatal: stopping and exiting with code 1\).*an uncaught exception/,
      );
      expect((app.received.at(-1) as Json)['shards'].map((s: Json) => s['state'])).toEqual(['idle', 'idle']);
      await waitFor(async () => (await fleet.sim.state())['liveSessions'].length === 0, {
        description: 'sessions closed at the gateway',
      });
      // Closed for resume and sessions saved: pm2 (here the test) restarts it and it RESUMEs.
      const again = app.received.length;
      await pm2.restart('fleet-guards');
      await assignAndWaitReady(app, fleet, { from: again });
      const after = await fleet.sim.state();
      expect(after['identifies']).toBe(before['identifies']);
      expect(after['resumes'] - before['resumes']).toBe(2);
      expect(await errorLog()).not.toContain(TOKEN);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'exits 1 when start() fails and the bot does not look at its result',
    async () => {
      const fleet = await startSim();
      const app = await startBot('fleet-unobserved', { TEST_START_UNOBSERVED: '1' });
      await waitForMessage(app, 'hello', { description: 'hello' });
      const eventsBefore = app.processEvents.length;
      // Nothing listens on port 1: NATS connect fails and start() rejects.
      await app.send(
        assignMessage({
          epoch: 1,
          shardIds: [0, 1],
          shardCount: 2,
          bot: fleet.bot,
          token: TOKEN,
          gateway: fleet.gateway as never,
          natsServers: ['nats://127.0.0.1:1'],
        }),
      );
      expect(await exitCodeAfter(app, eventsBefore)).toBe(1);
      const errorLog = fs.readFileSync(
        (await pm2.describe('fleet-unobserved'))!['pm2_env'].pm_err_log_path,
        'utf8',
      );
      expect(errorLog).toContain(
        'unhandled rejection before the cluster was serving (fatal: exiting with code 1)',
      );
      expect(errorLog).not.toContain(TOKEN);
      expect((await fleet.sim.state())['identifies']).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );

  for (const confirmed of [true, false]) {
    it(
      `fences when NATS is cut, asks CONTROL on its return, and ${confirmed ? 'RESUMEs once confirmed' : 'stays closed when refused'}`,
      async () => {
        const fleet = await startSim();
        const proxy = await startTcpProxy(nats.port);
        proxies.push(proxy);
        const name = `fleet-fence-${confirmed}`;
        const app = await startBot(name, { TEST_FENCE_AFTER_MS: '1500' });
        await assignAndWaitReady(app, fleet, { natsUrl: proxy.url('nats') });

        proxy.cut('blackhole');
        const fenced = await waitForMessage(app, 'fenced', {
          description: 'fenced message',
          timeoutMs: 30_000,
        });
        expect(fenced.message).toMatchObject({ clusterId: 0, epoch: 1 });
        await waitForMessage(app, 'status', { where: allShards('fenced'), description: 'shards fenced' });
        await waitFor(async () => (await fleet.sim.state())['liveSessions'].length === 0, {
          description: 'sessions closed at the gateway',
        });
        const whileFenced = await fleet.sim.state();

        proxy.restore();
        const confirm = await waitForMessage(app, 'confirm', {
          from: fenced.index,
          description: 'confirm after NATS is back',
          timeoutMs: 30_000,
        });
        expect(confirm.message).toMatchObject({ clusterId: 0, epoch: 1 });
        // Nothing reconnects before CONTROL answers.
        expect((await fleet.sim.state())['liveSessions']).toHaveLength(0);
        // A reply for another epoch is not an answer.
        await app.send({ v: 1, type: 'confirm-reply', epoch: 7, confirmed: true });
        await app.send({ v: 1, type: 'confirm-reply', epoch: 1, confirmed });

        if (confirmed) {
          await waitForMessage(app, 'status', {
            from: confirm.index,
            where: allShards('ready'),
            description: 'ready again after the confirmation',
          });
          const after = await fleet.sim.state();
          expect(after['liveSessions']).toHaveLength(2);
          expect(after['identifies']).toBe(whileFenced['identifies']);
          expect(after['resumes'] - whileFenced['resumes']).toBe(2);
          expect(after['violations']).toMatchObject({
            identifyRate: 0,
            duplicateLiveSessions: 0,
            resumeWhileLive: 0,
          });
          return;
        }
        await waitFor(async () => ((await pm2.trigger(name, 'status')) as Json)['revoked'] === true, {
          description: 'revoked in the status action',
        });
        const statuses = () => app.received.slice(confirm.index).filter((m) => m.type === 'status');
        const seen = statuses().length;
        await waitFor(() => statuses().length >= seen + 4, { description: 'four more status reports' });
        expect(allShards('fenced')(statuses().at(-1) as never)).toBe(true);
        const after = await fleet.sim.state();
        expect(after['liveSessions']).toHaveLength(0);
        expect(after['identifies']).toBe(whileFenced['identifies']);
        expect(after['resumes']).toBe(whileFenced['resumes']);
        // The process waits for CONTROL's shutdown.
        const eventsBefore = app.processEvents.length;
        await app.send({ v: 1, type: 'shutdown', reason: 'assignment revoked' });
        expect(await exitCodeAfter(app, eventsBefore)).toBe(0);
      },
      TEST_TIMEOUT_MS,
    );
  }

  it(
    "obeys CONTROL's fence over pm2 IPC: closes with 4200, asks at once, RESUMEs once confirmed, stays closed when refused",
    async () => {
      const fleet = await startSim();
      const name = 'fleet-ordered-fence';
      const app = await startBot(name);
      const ready = await assignAndWaitReady(app, fleet);
      const before = await fleet.sim.state();
      const closes4200 = (state: Json): number => state['clientCloses']?.['4200'] ?? 0;

      /** Fences on CONTROL's order and checks everything up to the `confirm`; returns its index. */
      const fenceAndAsk = async (from: number, closesBefore: number): Promise<number> => {
        await app.send({ v: 1, type: 'fence', reason: 'lease renewal failed' });
        const fenced = await waitForMessage(app, 'fenced', { from, description: 'fenced message' });
        expect(fenced.message).toMatchObject({ clusterId: 0, epoch: 1 });
        await waitForMessage(app, 'status', {
          from,
          where: allShards('fenced'),
          description: 'shards fenced',
        });
        await waitFor(
          async () => {
            const state = await fleet.sim.state();
            return state['liveSessions'].length === 0 && closes4200(state) - closesBefore === 2;
          },
          { description: 'both sockets closed with 4200 at the gateway' },
        );
        // No NATS outage here: the question follows the close at once.
        const confirm = await waitForMessage(app, 'confirm', {
          from: fenced.index,
          description: 'confirm after the ordered fence',
        });
        expect(confirm.message).toMatchObject({ clusterId: 0, epoch: 1 });
        expect(((await pm2.trigger(name, 'status')) as Json)['fenced']).toBe(true);
        expect((await fleet.sim.state())['liveSessions']).toHaveLength(0);
        return confirm.index;
      };

      const firstConfirm = await fenceAndAsk(ready + 1, closes4200(before));
      await app.send({ v: 1, type: 'confirm-reply', epoch: 1, confirmed: true });
      const again = await waitForMessage(app, 'status', {
        from: firstConfirm,
        where: allShards('ready'),
        description: 'ready again after the confirmation',
      });
      const resumed = await fleet.sim.state();
      expect(resumed['liveSessions']).toHaveLength(2);
      expect(resumed['identifies']).toBe(before['identifies']);
      expect(resumed['resumes'] - before['resumes']).toBe(2);
      expect(resumed['violations']).toMatchObject({
        identifyRate: 0,
        duplicateLiveSessions: 0,
        resumeWhileLive: 0,
      });

      const secondConfirm = await fenceAndAsk(again.index + 1, closes4200(resumed));
      await app.send({ v: 1, type: 'confirm-reply', epoch: 1, confirmed: false });
      await waitFor(async () => ((await pm2.trigger(name, 'status')) as Json)['revoked'] === true, {
        description: 'revoked in the status action',
      });
      const statuses = () => app.received.slice(secondConfirm).filter((m) => m.type === 'status');
      const seen = statuses().length;
      await waitFor(() => statuses().length >= seen + 4, { description: 'four more status reports' });
      expect(allShards('fenced')(statuses().at(-1) as never)).toBe(true);
      const after = await fleet.sim.state();
      expect(after['liveSessions']).toHaveLength(0);
      expect(after['identifies']).toBe(before['identifies']);
      expect(after['resumes']).toBe(resumed['resumes']);
      expect(app.received.filter((m) => m.type === 'fenced')).toHaveLength(2);

      const eventsBefore = app.processEvents.length;
      await app.send({ v: 1, type: 'shutdown', reason: 'assignment revoked' });
      expect(await exitCodeAfter(app, eventsBefore)).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );
});
