import { FleetStatusSchema, SHARD_STATES, WhichResultSchema, shardForGuild } from 'discluster-protocol';
import { waitFor } from 'discluster-testing';
import { describe, expect, it } from 'vitest';
import { startMaster } from '../src/startMaster';
import { useMasterHarness } from './masterHarness';
import {
  find,
  parseExposition,
  reportChosenValues,
  reportFor,
  value,
  type Exposition,
} from './metricsFixtures';

/**
 * MASTER's HTTP surface (issue 6 §4-5): `/metrics` scraped and parsed, and the JSON API, against a
 * MASTER started in-process with `http_port` 0, a real nats-server, discord-sim for
 * GET /gateway/bot, and CONTROLs played by the test (FakeHost) reporting chosen shard values.
 */

const TOKEN = 'metrics-test-token-5f1e';
const SESSION_START_TOTAL = 1000;
const SESSION_START_REMAINING = 987;

const env = useMasterHarness(TOKEN, {
  guilds: 50,
  shards: 16,
  'max-concurrency': 4,
  'session-start-total': SESSION_START_TOTAL,
  'session-start-remaining': SESSION_START_REMAINING,
});
const { running } = env;

// ---- the fleet ----------------------------------------------------------------------------------

function settings(bot: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  return env.masterEnv(bot, {
    DISCLUSTER_WAIT_FOR_HOSTS_MS: '1000',
    DISCLUSTER_HOST_TIMEOUT_MS: '1000',
    DISCLUSTER_LOG_LEVEL: 'silent',
    DISCLUSTER_HTTP_PORT: '0',
    ...extra,
  });
}

async function master(bot: string, extra: Record<string, string> = {}) {
  const handle = await startMaster(settings(bot, extra));
  running.push(handle);
  const url = handle.master?.statusUrl;
  if (!url) throw new Error('MASTER serves no status page');
  return { handle, url };
}

async function plannedFleet() {
  const bot = env.nextBot('metrics');
  const {
    alpha,
    beta,
    gamma,
    master: started,
  } = await env.threeHostFleet(bot, (extra) => master(bot, extra));
  return { bot, alpha, beta, gamma, ...started };
}

async function scrape(url: string): Promise<Exposition> {
  const response = await fetch(new URL('metrics', url));
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await response.text());
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('GET /metrics', () => {
  it('exports each shard, cluster, host and the plan as the hosts report them', async () => {
    const { bot, alpha, beta, url } = await plannedFleet();
    reportChosenValues(alpha);
    reportChosenValues(beta);
    let metrics = await scrape(url);
    await waitFor(
      async () => {
        metrics = await scrape(url);
        // Both hosts report on their own timers: wait for every shard, not one host's.
        return [...Array(16).keys()].every(
          (id) =>
            value(metrics, 'discluster_shard_events_total', { shard: String(id) }) === reportFor(id).events,
        );
      },
      { description: 'the chosen values of all 16 shards in /metrics', timeoutMs: 30_000 },
    );

    // Every sample carries the bot; the families have the documented types.
    expect(metrics.samples.every((sample) => sample.labels.bot === bot)).toBe(true);
    expect(Object.fromEntries(metrics.types)).toMatchObject({
      discluster_master_leader: 'gauge',
      discluster_fleet_stopped: 'gauge',
      discluster_plan_epoch: 'gauge',
      discluster_plan_shards: 'gauge',
      discluster_max_concurrency: 'gauge',
      discluster_session_start_remaining: 'gauge',
      discluster_session_start_limit: 'gauge',
      discluster_hosts: 'gauge',
      discluster_host_cores: 'gauge',
      discluster_host_load15: 'gauge',
      discluster_host_drained: 'gauge',
      discluster_clusters: 'gauge',
      discluster_failed_clusters: 'gauge',
      discluster_cluster_restarts_total: 'counter',
      discluster_shards: 'gauge',
      discluster_shard_state: 'gauge',
      discluster_shard_latency_seconds: 'gauge',
      discluster_shard_guilds: 'gauge',
      discluster_shard_events_total: 'counter',
    });

    // Per shard: the labels say where it runs, the values are what its host reported.
    const owner = new Map<number, { host: string; cluster: string }>();
    for (const fake of [alpha, beta])
      for (const cluster of fake.lastAssign()!.clusters)
        for (const id of cluster.shardIds)
          owner.set(id, { host: fake.options.id, cluster: String(cluster.clusterId) });
    expect([...owner.keys()].sort((a, b) => a - b)).toEqual([...Array(16).keys()]);
    for (const [id, where] of owner) {
      const labels = { shard: String(id), ...where };
      const expected = reportFor(id);
      const states = find(metrics, 'discluster_shard_state', labels);
      expect(states.map((sample) => sample.labels.state).sort()).toEqual([...SHARD_STATES].sort());
      expect(states.filter((sample) => sample.value === 1).map((sample) => sample.labels.state)).toEqual([
        expected.state,
      ]);
      expect(states.filter((sample) => sample.value === 0)).toHaveLength(SHARD_STATES.length - 1);
      expect(value(metrics, 'discluster_shard_latency_seconds', labels)).toBe(
        id === 3 ? undefined : (10 + id) / 1000,
      );
      expect(value(metrics, 'discluster_shard_guilds', labels)).toBe(expected.guilds);
      expect(value(metrics, 'discluster_shard_events_total', labels)).toBe(expected.events);
    }
    expect(find(metrics, 'discluster_shard_guilds')).toHaveLength(16);

    // Aggregates.
    for (const state of SHARD_STATES)
      expect(value(metrics, 'discluster_shards', { state })).toBe(
        [...owner.keys()].filter((id) => reportFor(id).state === state).length,
      );
    const clusters = [...alpha.lastAssign()!.clusters, ...beta.lastAssign()!.clusters];
    expect(value(metrics, 'discluster_clusters', { state: 'online' })).toBe(clusters.length);
    expect(value(metrics, 'discluster_clusters', { state: 'failed' })).toBe(0);
    expect(value(metrics, 'discluster_failed_clusters', { action: 'moved' })).toBe(0);
    expect(value(metrics, 'discluster_failed_clusters', { action: 'held' })).toBe(0);
    for (const cluster of clusters)
      expect(
        value(metrics, 'discluster_cluster_restarts_total', { cluster: String(cluster.clusterId) }),
      ).toBe((cluster.clusterId % 3) + 1);
    expect(value(metrics, 'discluster_hosts', { state: 'online', role: 'active' })).toBe(2);
    expect(value(metrics, 'discluster_hosts', { state: 'online', role: 'standby' })).toBe(1);
    expect(value(metrics, 'discluster_hosts', { state: 'lost', role: 'active' })).toBe(0);
    expect(value(metrics, 'discluster_host_cores', { host: 'alpha' })).toBe(3);
    expect(value(metrics, 'discluster_host_load15', { host: 'gamma' })).toBe(0.5);
    expect(value(metrics, 'discluster_host_drained', { host: 'gamma' })).toBe(0);

    // The plan and the fleet.
    expect(value(metrics, 'discluster_master_leader')).toBe(1);
    expect(value(metrics, 'discluster_fleet_stopped')).toBe(0);
    expect(value(metrics, 'discluster_plan_epoch')).toBe(1);
    expect(value(metrics, 'discluster_plan_shards')).toBe(16);
    expect(value(metrics, 'discluster_max_concurrency')).toBe(4);
    expect(value(metrics, 'discluster_session_start_remaining')).toBe(SESSION_START_REMAINING);
    expect(value(metrics, 'discluster_session_start_limit')).toBe(SESSION_START_TOTAL);

    // A host going silent is counted lost; a stopped fleet says so.
    beta.stop();
    await waitFor(
      async () => value(await scrape(url), 'discluster_hosts', { state: 'lost', role: 'active' }) === 1,
      { description: 'beta counted lost', timeoutMs: 10_000 },
    );
    const fleet = await env.client(bot);
    try {
      await fleet.askMaster({ v: 1, type: 'stop', reason: 'metrics test' }, 10_000);
    } finally {
      await fleet.close();
    }
    await waitFor(async () => value(await scrape(url), 'discluster_fleet_stopped') === 1, {
      description: 'discluster_fleet_stopped 1',
    });
  });
});

describe('the JSON API', () => {
  it('serves the status contract and locates guilds; bad ids are 400, unknown paths 404', async () => {
    const { bot, url } = await plannedFleet();
    const live = await getJson(new URL('api/status', url).href);
    expect(live.status).toBe(200);
    const status = FleetStatusSchema.parse(live.body);
    expect(status).toMatchObject({ bot, shardCount: 16, maxConcurrency: 4, epoch: 1, master: { up: true } });
    expect(status.hosts.map((entry) => entry.id)).toEqual(['alpha', 'beta', 'gamma']);

    const guildId = '81384788765712384';
    const found = await getJson(new URL(`api/which?guild=${guildId}`, url).href);
    expect(found.status).toBe(200);
    const which = WhichResultSchema.parse(found.body);
    expect(which.shardId).toBe(shardForGuild(guildId, 16));
    expect(which.shardCount).toBe(16);
    const serving = status.hosts.find((entry) => entry.id === which.hostId);
    const cluster = serving?.clusters.find((entry) => entry.id === which.clusterId);
    expect(cluster?.shards.map((shard) => shard.id)).toContain(which.shardId);

    for (const bad of ['', 'abc', '-1', '1.5', '123456789012345678901', '%00', '1%20OR%201=1', '0x10']) {
      const answer = await getJson(new URL(`api/which?guild=${bad}`, url).href);
      expect(answer.status, `guild=${bad}`).toBe(400);
      expect(answer.body.error).toMatch(/guild must be a Discord id/);
    }
    expect((await getJson(new URL('api/which', url).href)).status).toBe(400);
    expect((await getJson(new URL('nope', url).href)).status).toBe(404);
    expect((await getJson(new URL('api/status/', url).href)).status).toBe(404);
    const post = await fetch(new URL('api/status', url), { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    await post.body?.cancel();
    expect((await fetch(new URL('metrics', url), { method: 'HEAD' })).status).toBe(200);

    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    const html = await page.text();
    // Self-contained: no external URL.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).not.toContain(TOKEN);
  });

  it('a standby answers 503 naming the leader; no plan is 503 for which; close() frees the port', async () => {
    const bot = env.nextBot('metrics');
    // No host ever announces: the leader has no plan.
    const leader = await master(bot, { DISCLUSTER_WAIT_FOR_HOSTS_MS: '600000' });
    await waitFor(async () => (await getJson(new URL('api/status', leader.url).href)).status === 200, {
      description: 'the first MASTER leading',
    });
    const status = FleetStatusSchema.parse((await getJson(new URL('api/status', leader.url).href)).body);
    expect(status.shardCount).toBeNull();
    const noPlan = await getJson(new URL('api/which?guild=81384788765712384', leader.url).href);
    expect(noPlan.status).toBe(503);
    expect(noPlan.body.error).toMatch(/no plan yet/);
    const leaderMetrics = await scrape(leader.url);
    expect(value(leaderMetrics, 'discluster_master_leader')).toBe(1);
    expect(value(leaderMetrics, 'discluster_plan_epoch')).toBeUndefined();
    expect(value(leaderMetrics, 'discluster_fleet_stopped')).toBe(0);

    const standby = await master(bot);
    const leaderId = leader.handle.master!.instanceId;
    const refused = await getJson(new URL('api/status', standby.url).href);
    expect(refused.status).toBe(503);
    expect(refused.body.error).toContain(leaderId);
    expect(refused.body.leader).toMatchObject({ instanceId: leaderId });
    expect((await getJson(new URL('api/which?guild=1', standby.url).href)).status).toBe(503);
    expect((await getJson(new URL('api/which?guild=x', standby.url).href)).status).toBe(400);
    const standbyMetrics = await scrape(standby.url);
    expect(standbyMetrics.samples.map((sample) => [sample.name, sample.value])).toEqual([
      ['discluster_master_leader', 0],
    ]);

    // The live stream of a standby says who leads; an open stream does not keep close() waiting.
    const stream = await fetch(new URL('api/events', standby.url));
    expect(stream.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const reader = stream.body!.getReader();
    let received = '';
    while (!received.includes('\n\ndata: ') || !received.endsWith('\n\n')) {
      const chunk = await reader.read();
      if (chunk.done) break;
      received += new TextDecoder().decode(chunk.value);
    }
    const first = JSON.parse(received.split('data: ')[1]!.trim()) as Record<string, unknown>;
    expect(first).toMatchObject({ leading: false, status: null });
    expect(String(first.notice)).toContain(leaderId);

    // A MASTER whose port is taken still runs, without a page.
    const port = new URL(leader.url).port;
    const clash = await startMaster(settings(bot, { DISCLUSTER_HTTP_PORT: port }));
    running.push(clash);
    expect(clash.state).toBe('running');
    expect(clash.master?.statusUrl).toBeNull();

    await standby.handle.close();
    running.splice(running.indexOf(standby.handle), 1);
    expect((await reader.read()).done).toBe(true);
    await expect(fetch(new URL('api/status', standby.url))).rejects.toThrow();
  });
});
