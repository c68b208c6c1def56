import { MasterConfigSchema, fleetSubjects, formatConfigIssues, loadModuleConfig } from 'discluster-protocol';
import { waitFor } from 'discluster-testing';
import { afterEach, describe, expect, it } from 'vitest';
import { startMaster, type MasterHandle } from '../src/startMaster';
import { useMasterHarness } from './masterHarness';
import type { FakeHost } from './fakeHost';
import { Receiver } from './webhookReceiver';

/**
 * Alerts (issue 17 §2) from a real MASTER, started in-process against a real nats-server and
 * discord-sim, with the CONTROLs played by the test (FakeHost), POSTed to an HTTP receiver the test
 * runs on 127.0.0.1: what a host lost and back, a cluster give-up and a fatal stop send; that only
 * the leader sends; retries after a 500; a 429's `retry_after` honoured; a receiver that never
 * answers blocks nothing; a bad URL refused at start.
 */

const TOKEN = 'alerts-test-token-4b7e91';
/** Another bot's token, as it might show up in a crash message: token-shaped, so redacted too. */
const STRANGER = 'MTAxNzg5NjQ1NjM0MjM0MjM0Ng.GhAbCd.q9Xr2ZkLmNoPqRsTuVwXyZaBcDeFgHiJk';
const encoder = new TextEncoder();
const env = useMasterHarness(TOKEN, { guilds: 50, shards: 16, 'max-concurrency': 4 });
const { running, status } = env;

const receivers: Receiver[] = [];
afterEach(async () => {
  // The harness closes the MASTERs after this; a hanging request must not hold the server open.
  for (const receiver of receivers.splice(0)) await receiver.close();
});

async function receiver(): Promise<Receiver> {
  const started = await Receiver.start();
  receivers.push(started);
  return started;
}

async function master(bot: string, extra: Record<string, string>): Promise<MasterHandle> {
  const handle = await startMaster(
    env.masterEnv(bot, {
      DISCLUSTER_WAIT_FOR_HOSTS_MS: '1000',
      DISCLUSTER_HOST_TIMEOUT_MS: '1000',
      DISCLUSTER_LOG_LEVEL: 'silent',
      ...extra,
    }),
  );
  running.push(handle);
  return handle;
}

/** alpha, beta and the standby gamma, planned by a MASTER that alerts to `url`. */
async function fleetAlertingTo(url: string) {
  const bot = env.nextBot('alerts');
  const fleet = await env.threeHostFleet(bot, (extra) =>
    master(bot, { ...extra, DISCLUSTER_ALERT_WEBHOOK_URL: url }),
  );
  return { bot, ...fleet };
}

/**
 * The POSTs of one alert. On a loaded machine a host can miss its heartbeats for a moment and be
 * lost and back: those alerts are real, so each test looks at the alerts it caused.
 */
function postsOf(hook: Receiver, title: string) {
  return hook.posts.filter((post) => post.body.embeds[0].title === title);
}

/** What alpha's CONTROL publishes when a cluster of its gives up. */
function giveUp(bot: string, clusterId: number, reason: string): void {
  const event = { v: 1, type: 'cluster.failed', hostId: 'alpha', clusterId, attempts: 3, reason };
  env.nc.publish(fleetSubjects(bot).hostClusterFailed('alpha'), encoder.encode(JSON.stringify(event)));
}

describe('alerts to alert_webhook_url', () => {
  it(
    'a host lost and back, a cluster give-up and a fatal stop each POST one Discord webhook message, from the leader only, with no secret in it',
    { timeout: 90_000 },
    async () => {
      const hook = await receiver();
      const { bot, alpha, beta, gamma } = await fleetAlertingTo(hook.url);
      // A standby MASTER with the same URL: it must send nothing.
      await master(bot, { DISCLUSTER_ALERT_WEBHOOK_URL: hook.url });
      expect(beta.shardIds().length).toBeGreaterThan(0);

      // beta stops heartbeating: lost after host_timeout_ms.
      beta.stop();
      await waitFor(() => hook.titles().includes('Host beta lost'), {
        description: 'the host-lost alert',
        timeoutMs: 20_000,
      });
      const lost = hook.posts.find((post) => post.body.embeds[0].title === 'Host beta lost')!;
      expect(lost.path).toBe('/api/webhooks/42/webhook-secret-7f3a');
      expect(lost.contentType).toBe('application/json');
      expect(lost.body).toMatchObject({
        username: 'Discluster',
        content: `**[${bot}] Host beta lost**`,
        embeds: [
          {
            title: 'Host beta lost',
            color: 0xe74c3c,
            fields: expect.arrayContaining([
              { name: 'Host', value: 'beta', inline: true },
              { name: 'Shards', value: String(beta.shardIds().length), inline: true },
              { name: 'Bot', value: bot, inline: true },
            ]),
          },
        ],
      });
      expect(Date.parse(lost.body.embeds[0].timestamp)).not.toBeNaN();

      // beta's machine comes back (a new CONTROL boot heartbeats again).
      const betaBack = await env.host({ bot, id: 'beta', cores: 1 });
      await waitFor(() => hook.titles().includes('Host beta back'), {
        description: 'the host-back alert',
        timeoutMs: 20_000,
      });

      // A cluster of alpha gives up; its reason carries the bot token and another token-shaped string.
      const cluster = alpha.lastAssign()!.clusters[0]!;
      giveUp(bot, cluster.clusterId, `login failed with ${TOKEN} (Bot ${STRANGER}) after exit code 1`);
      const failedTitle = `Cluster ${cluster.clusterId} gave up on host alpha`;
      await waitFor(() => hook.titles().includes(failedTitle), {
        description: 'the cluster give-up alert',
        timeoutMs: 20_000,
      });
      const failed = hook.posts.find((post) => post.body.embeds[0].title === failedTitle)!;
      expect(failed.body.embeds[0].fields).toEqual(
        expect.arrayContaining([
          { name: 'Host', value: 'alpha', inline: true },
          { name: 'Cluster', value: String(cluster.clusterId), inline: true },
          { name: 'Attempts', value: '3', inline: true },
          {
            name: 'Reason',
            value: 'login failed with [redacted] (Bot [redacted]) after exit code 1',
            inline: false,
          },
        ]),
      );

      // failed_cluster_action=move (default): MASTER plans the cluster onto another host.
      let movedTo: FakeHost | undefined;
      await waitFor(
        () =>
          (movedTo = [betaBack, gamma].find((host) =>
            host.lastAssign()?.clusters.some((each) => each.clusterId === cluster.clusterId),
          )) !== undefined,
        { description: `cluster ${cluster.clusterId} moved off alpha`, timeoutMs: 20_000 },
      );
      const host = movedTo!.options.id;

      // A shard of it closes with 4004 there: the fleet stops.
      env.nc.publish(
        fleetSubjects(bot).hostFatal(host),
        encoder.encode(
          JSON.stringify({
            v: 1,
            type: 'fatal',
            hostId: host,
            clusterId: cluster.clusterId,
            shardId: cluster.shardIds[0],
            code: 4004,
            reason: `Authentication failed (token ${TOKEN})`,
          }),
        ),
      );
      await waitFor(() => hook.titles().includes('Fleet stopped'), {
        description: 'the fatal-stop alert',
        timeoutMs: 20_000,
      });
      const stopped = hook.posts.find((post) => post.body.embeds[0].title === 'Fleet stopped')!;
      expect(stopped.body.embeds[0].fields).toEqual(
        expect.arrayContaining([{ name: 'Close code', value: '4004', inline: true }]),
      );
      expect(stopped.body.embeds[0].fields.find((field) => field.name === 'Reason')!.value).toContain(
        'closed with fatal code 4004: Authentication failed (token [redacted])',
      );
      expect((await status(bot)).stopped).not.toBeNull();

      // Only the leader sent, each alert once; the standby sent nothing. No secret anywhere.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      for (const title of ['Host beta lost', 'Host beta back', failedTitle, 'Fleet stopped'])
        expect(postsOf(hook, title), title).toHaveLength(1);
      // Nothing twice (a host flapping under load alerts once per window at most).
      expect(new Set(hook.titles()).size).toBe(hook.titles().length);
      const everything = JSON.stringify(hook.posts.map((post) => post.body));
      expect(everything).not.toContain(TOKEN);
      expect(everything).not.toContain(STRANGER);
      expect(everything).not.toContain('webhook-secret-7f3a');
    },
  );

  it(
    'shards held at the session-start floor alert once; a reshard rolled back alerts',
    { timeout: 60_000 },
    async () => {
      const hook = await receiver();
      const { bot, alpha } = await fleetAlertingTo(hook.url);
      // alpha's clusters report two shards waiting at the floor (the SDK's wording), on every heartbeat.
      const floor = 'session_start_limit.remaining 10 is at the safety floor 10; resets in 5h 1m';
      alpha.clusters = alpha.clusters.map((cluster, index) =>
        index === 0
          ? {
              ...cluster,
              shards: cluster.shards!.map((shard, i) =>
                i < 2 ? { ...shard, state: 'waiting' as const, waitingReason: floor } : shard,
              ),
            }
          : cluster,
      );
      await waitFor(() => hook.titles().includes('2 shards held at the session-start floor'), {
        description: 'the session-floor alert',
        timeoutMs: 20_000,
      });
      const held = hook.posts.find((post) => post.body.embeds[0].title.includes('session-start floor'))!;
      expect(held.body.embeds[0].fields).toEqual(
        expect.arrayContaining([
          { name: 'Hosts', value: 'alpha', inline: true },
          { name: 'Why', value: floor, inline: false },
        ]),
      );

      // A reshard to 32 shards, whose new generation closes with a fatal code: rolled back.
      const fleet = await env.client(bot);
      try {
        await fleet.askMaster({ v: 1, type: 'reshard', shards: 32 }, 20_000);
      } finally {
        await fleet.close();
      }
      await waitFor(() => alpha.lastAssign()?.next !== undefined, {
        description: 'the new generation assigned',
      });
      const next = alpha.lastAssign()!.next!.clusters[0]!;
      env.nc.publish(
        fleetSubjects(bot).hostFatal('alpha'),
        encoder.encode(
          JSON.stringify({
            v: 1,
            type: 'fatal',
            hostId: 'alpha',
            clusterId: next.clusterId,
            shardId: next.shardIds[0],
            code: 4013,
            reason: 'Invalid intent(s)',
          }),
        ),
      );
      await waitFor(() => hook.titles().includes('Reshard to 32 shards rolled back'), {
        description: 'the reshard-rolled-back alert',
        timeoutMs: 20_000,
      });
      const rolledBack = hook.posts.find((post) => post.body.embeds[0].title.includes('rolled back'))!;
      expect(rolledBack.body.embeds[0].fields.find((field) => field.name === 'Why')!.value).toContain(
        'closed with fatal code 4013',
      );
      // Still held at the floor: said once, not on every heartbeat; the fleet was not stopped.
      expect(hook.titles().filter((title) => title.includes('session-start floor'))).toHaveLength(1);
      expect(hook.titles()).not.toContain('Fleet stopped');
    },
  );

  it(
    'a receiver answering 500 gets the alert again after a backoff; 200 then ends it',
    { timeout: 60_000 },
    async () => {
      const hook = await receiver();
      const { bot, alpha } = await fleetAlertingTo(hook.url);
      const cluster = alpha.lastAssign()!.clusters[0]!;
      const title = `Cluster ${cluster.clusterId} gave up on host alpha`;
      hook.answer = (res, _index, post) =>
        post.body.embeds[0].title === title && postsOf(hook, title).length === 1
          ? res.writeHead(500).end('oops')
          : res.writeHead(200).end('{}');
      giveUp(bot, cluster.clusterId, 'exit code 1');
      await waitFor(() => postsOf(hook, title).length >= 2, {
        description: 'the retry after the 500',
        timeoutMs: 20_000,
      });
      const [first, second] = postsOf(hook, title);
      expect(second!.body).toEqual(first!.body);
      // The first backoff is one second (DefaultBackoffPolicy.baseMs); allow for timer granularity.
      expect(second!.at - first!.at).toBeGreaterThanOrEqual(900);
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      expect(postsOf(hook, title)).toHaveLength(2);
    },
  );

  it('a 429 with retry_after is waited out before the retry', { timeout: 60_000 }, async () => {
    const hook = await receiver();
    const { bot, alpha } = await fleetAlertingTo(hook.url);
    const cluster = alpha.lastAssign()!.clusters[0]!;
    const title = `Cluster ${cluster.clusterId} gave up on host alpha`;
    hook.answer = (res, _index, post) =>
      post.body.embeds[0].title === title && postsOf(hook, title).length === 1
        ? res
            .writeHead(429, { 'content-type': 'application/json' })
            .end(JSON.stringify({ message: 'You are being rate limited.', retry_after: 2.5, global: false }))
        : res.writeHead(204).end();
    giveUp(bot, cluster.clusterId, 'exit code 1');
    await waitFor(() => postsOf(hook, title).length >= 2, {
      description: 'the retry after the 429',
      timeoutMs: 20_000,
    });
    const [first, second] = postsOf(hook, title);
    // Not before the 2.5 s the receiver asked for (the backoff alone would have been 1 s).
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(2_400);
    expect(second!.body).toEqual(first!.body);
  });

  it(
    'a receiver that never answers blocks nothing: MASTER answers status and keeps commanding',
    { timeout: 60_000 },
    async () => {
      const hook = await receiver();
      hook.answer = () => undefined; // hold every request open
      const { bot, alpha, beta } = await fleetAlertingTo(hook.url);
      const cluster = alpha.lastAssign()!.clusters[0]!;
      const title = `Cluster ${cluster.clusterId} gave up on host alpha`;
      giveUp(bot, cluster.clusterId, 'exit code 1');
      await waitFor(() => postsOf(hook, title).length === 1, {
        description: 'the hanging POST',
        timeoutMs: 20_000,
      });
      // While it hangs, MASTER answers and still fails a host over.
      expect((await status(bot)).hosts.map((host) => host.id)).toEqual(
        expect.arrayContaining(['alpha', 'beta', 'gamma']),
      );
      beta.stop();
      const gamma = env.hosts.find((host) => host.options.id === 'gamma')!;
      await waitFor(() => gamma.shardIds().length > 0, {
        description: 'beta’s shards failed over to gamma while the webhook hangs',
        timeoutMs: 20_000,
      });
      expect((await status(bot)).master.up).toBe(true);
      // Each POST has a timeout (10 s): the hanging one is given up and sent again.
      await waitFor(() => postsOf(hook, title).length >= 2, {
        description: 'the retry after the timeout',
        timeoutMs: 40_000,
      });
      const [first, second] = postsOf(hook, title);
      expect(second!.body).toEqual(first!.body);
      expect(second!.at - first!.at).toBeGreaterThanOrEqual(10_000);
    },
  );

  it('a bad alert_webhook_url is refused at start, naming the key; MASTER stays idle', async () => {
    for (const url of ['ftp://example.com/hook', 'not a url', 'discord.com/api/webhooks/1/x']) {
      const loaded = loadModuleConfig(MasterConfigSchema, {
        moduleName: 'discluster-master',
        env: { DISCLUSTER_ALERT_WEBHOOK_URL: url },
      });
      expect(loaded.ok).toBe(false);
      if (!loaded.ok)
        expect(formatConfigIssues('discluster-master', loaded.issues)).toContain(
          'alert_webhook_url: must be an http:// or https:// URL',
        );
      const handle = await master(env.nextBot('badurl'), { DISCLUSTER_ALERT_WEBHOOK_URL: url });
      expect(handle.state).toBe('invalid-config');
      expect(handle.master).toBeNull();
    }
  });
});
