import { readFileSync } from 'node:fs';
import path from 'node:path';
import { waitFor } from 'discluster-testing';
import { Counter, Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { startMaster } from '../src/startMaster';
import { useMasterHarness } from './masterHarness';
import { parseExposition, reportChosenValues, reportFor, value } from './metricsFixtures';
import { checkMetrics, checkPromql } from './promtool';

/**
 * `/metrics` against Prometheus conventions and the Grafana dashboard (issue 17 §6): Debian's
 * `promtool check metrics` finds a real MASTER's exposition clean (a leader with a planned fleet
 * whose CONTROLs, played by the test, report every value, and a standby), and
 * docs/grafana-dashboard.json queries only the families that exposition has, shows each of them,
 * and parses as PromQL.
 */

const TOKEN = 'prometheus-test-token-81d0';
const SHARDS = 16;
const DASHBOARD = path.resolve(__dirname, '..', '..', 'docs', 'grafana-dashboard.json');

const env = useMasterHarness(TOKEN, { guilds: 50, shards: SHARDS, 'max-concurrency': 4 });

async function master(bot: string, extra: Record<string, string> = {}): Promise<string> {
  const handle = await startMaster(
    env.masterEnv(bot, {
      DISCLUSTER_WAIT_FOR_HOSTS_MS: '1000',
      DISCLUSTER_LOG_LEVEL: 'silent',
      DISCLUSTER_HTTP_PORT: '0',
      ...extra,
    }),
  );
  env.running.push(handle);
  const url = handle.master?.statusUrl;
  if (!url) throw new Error('MASTER serves no status page');
  return url;
}

async function scrapeText(url: string): Promise<string> {
  const response = await fetch(new URL('metrics', url));
  expect(response.status).toBe(200);
  return response.text();
}

/**
 * A leader planning alpha, beta and the standby gamma, whose hosts report every shard's values:
 * its /metrics once all 16 shards' reports are in (so every family the leader can export is in
 * it, per-shard latency and event counters included).
 */
async function leaderOfAPlannedFleet(): Promise<{ bot: string; url: string; text: string }> {
  const bot = env.nextBot('prometheus');
  const { alpha, beta, master: url } = await env.threeHostFleet(bot, (extra) => master(bot, extra));
  reportChosenValues(alpha);
  reportChosenValues(beta);
  let text = '';
  await waitFor(
    async () => {
      text = await scrapeText(url);
      const exposition = parseExposition(text);
      return [...Array(SHARDS).keys()].every(
        (id) =>
          value(exposition, 'discluster_shard_events_total', { shard: String(id) }) === reportFor(id).events,
      );
    },
    { description: `the reports of all ${SHARDS} shards in /metrics`, timeoutMs: 30_000 },
  );
  return { bot, url, text };
}

describe('the promtool checker', () => {
  it('finds a conventional exposition clean', async () => {
    const registry = new Registry();
    new Gauge({ name: 'good_latency_seconds', help: 'a gauge in base units', registers: [registry] }).set(
      0.5,
    );
    new Counter({ name: 'good_events_total', help: 'a counter', registers: [registry] }).inc();
    expect(await checkMetrics(await registry.metrics())).toEqual({ code: 0, output: '' });
  });

  // Each is what a renamed or added family could get wrong; the checker must fail every one.
  const bad: [string, string, RegExp][] = [
    ['a gauge named _total', 'session_start_total gauge', /non-counter metrics should not have "_total"/],
    ['a counter without _total', 'shard_events counter', /counter metrics should have "_total" suffix/],
    ['an abbreviated unit', 'shard_latency_ms gauge', /should not contain abbreviated units/],
    ['a unit that is not the base unit', 'latency_milliseconds gauge', /use base unit "seconds"/],
    ['a gauge named _count', 'shard_count gauge', /should not have "_count" suffix/],
    ['camelCase', 'shardCount gauge', /'snake_case' not 'camelCase'/],
  ];
  it.each(bad)('fails %s', async (_what, family, problem) => {
    const [name, type] = family.split(' ') as [string, 'gauge' | 'counter'];
    const registry = new Registry();
    const registers = [registry];
    if (type === 'gauge') new Gauge({ name: `discluster_${name}`, help: 'bad', registers }).set(1);
    else new Counter({ name: `discluster_${name}`, help: 'bad', registers }).inc();
    const result = await checkMetrics(await registry.metrics());
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(problem);
    expect(result.output).toContain(`discluster_${name}`);
  });

  it('fails a family without help, and an exposition that is not one', async () => {
    const noHelp = await checkMetrics('# TYPE discluster_plan_epoch gauge\ndiscluster_plan_epoch 1\n');
    expect(noHelp.code).not.toBe(0);
    expect(noHelp.output).toMatch(/discluster_plan_epoch no help text/);
    const malformed = await checkMetrics('discluster_plan_epoch one\n');
    expect(malformed.code).not.toBe(0);
    expect(malformed.output).toMatch(/parsing error/);
  });
});

describe("MASTER's /metrics", () => {
  it("is clean under promtool check metrics: a leader's with a planned fleet, and a standby's", async () => {
    const { bot, text } = await leaderOfAPlannedFleet();
    expect(await checkMetrics(text)).toEqual({ code: 0, output: '' });

    const standby = await master(bot);
    const standbyText = await scrapeText(standby);
    expect(parseExposition(standbyText).samples.map((sample) => [sample.name, sample.value])).toEqual([
      ['discluster_master_leader', 0],
    ]);
    expect(await checkMetrics(standbyText)).toEqual({ code: 0, output: '' });
  });
});

// ---- docs/grafana-dashboard.json ---------------------------------------------------------------

interface Target {
  readonly expr?: string;
  readonly datasource?: { readonly type?: string; readonly uid?: string };
}

interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly datasource?: { readonly type?: string; readonly uid?: string };
  readonly gridPos: { readonly x: number; readonly y: number; readonly w: number; readonly h: number };
  readonly targets?: readonly Target[];
  /** A collapsed row holds its panels. */
  readonly panels?: readonly Panel[];
}

interface Dashboard {
  readonly schemaVersion: number;
  readonly __inputs: readonly { name: string; type: string; pluginId: string }[];
  readonly templating: {
    readonly list: readonly { name: string; type: string; definition?: string; datasource?: unknown }[];
  };
  readonly panels: readonly Panel[];
}

const DATASOURCE = { type: 'prometheus', uid: '${DS_PROMETHEUS}' };
const METRIC = /\bdiscluster_[a-z0-9_]+/g;

describe('docs/grafana-dashboard.json', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
  const panels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
  const exprs = panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr ?? ''));

  it('is an importable dashboard: a DS_PROMETHEUS input, a bot variable, every query filtered by bot', () => {
    expect(dashboard.schemaVersion).toBe(39);
    expect(dashboard.__inputs).toContainEqual(
      expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' }),
    );
    const bot = dashboard.templating.list.find((variable) => variable.name === 'bot');
    expect(bot).toMatchObject({
      type: 'query',
      definition: 'label_values(discluster_master_leader, bot)',
      datasource: DATASOURCE,
    });
    expect(panels.filter((panel) => panel.type === 'row').map((panel) => panel.title)).toEqual([
      'Fleet',
      'Hosts',
      'Shards',
      'Identify budget',
    ]);
    const ids = panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of panels) {
      expect(panel.gridPos.x + panel.gridPos.w, panel.title).toBeLessThanOrEqual(24);
      if (panel.type === 'row') continue;
      expect(panel.datasource, panel.title).toEqual(DATASOURCE);
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) expect(target.datasource, panel.title).toEqual(DATASOURCE);
    }
    expect(exprs.length).toBeGreaterThan(0);
    // One bot's series only: every selector of a discluster_ family has bot="$bot".
    for (const expr of exprs)
      for (const [, name, selector] of expr.matchAll(/\b(discluster_[a-z0-9_]+)(\{[^}]*\})?/g))
        expect(selector ?? '', `${name} in ${expr}`).toContain('bot="$bot"');
  });

  it('parses as PromQL (promtool check rules)', async () => {
    // Grafana's variables, as Grafana would substitute them.
    const promql = exprs.map((expr) => expr.replaceAll('$__rate_interval', '1m').replaceAll('$bot', 'bot'));
    const result = await checkPromql(promql);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain(`SUCCESS: ${exprs.length} rules found`);
  });

  it("queries only families a leader's /metrics exports, and shows every one of them", async () => {
    const { text } = await leaderOfAPlannedFleet();
    const families = [...parseExposition(text).types.keys()].sort();
    expect(families.length).toBeGreaterThan(0);
    const variables = dashboard.templating.list.map((variable) => variable.definition ?? '');
    const used = new Set([...exprs, ...variables].flatMap((expr) => expr.match(METRIC) ?? []));
    // The dashboard cannot drift from the code: a renamed or removed family fails here...
    expect(
      [...used].filter((name) => !families.includes(name)),
      'dashboard names not in /metrics',
    ).toEqual([]);
    // ...and so does a new family that no panel shows.
    expect(
      families.filter((name) => !used.has(name)),
      '/metrics families on no panel',
    ).toEqual([]);
  });
});
