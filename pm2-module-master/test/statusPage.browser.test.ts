import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { shardForGuild, type ClusterReport } from 'discluster-protocol';
import {
  startDiscordSimProcess,
  startNatsServer,
  waitFor,
  type DiscordSimProcess,
  type NatsServerHandle,
} from 'discluster-testing';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FleetClient } from '../src/cli/fleetClient';
import { startMaster, type MasterHandle } from '../src/startMaster';
import { FakeHost } from './fakeHost';

/**
 * The status page (issue 6 §4) in headless Chromium against a MASTER started in-process with
 * `http_port` 0 and 1,024 shards (the `shards` setting; discord-sim answers GET /gateway/bot),
 * served by two CONTROLs played by the test (FakeHost) that report every shard ready, plus a
 * standby. `DISCLUSTER_SCREENSHOT=1` also writes docs/status-page.png.
 */

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'status-page-test-token-3c9a';
const BOT = 'statuspage';
const SHARDS = 1024;
const SCREENSHOT = path.resolve(__dirname, '..', '..', 'docs', 'status-page.png');

let nats: NatsServerHandle | undefined;
let sim: DiscordSimProcess | undefined;
let nc: NatsConnection | undefined;
let handle: MasterHandle | undefined;
let browser: Browser | undefined;
let url: string;
const hosts: FakeHost[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}; the status page test needs it: apt-get install chromium`,
    );
  nats = await startNatsServer({ jetstream: true });
  sim = await startDiscordSimProcess({ token: TOKEN, guilds: 50, shards: 16, 'max-concurrency': 16 });
  nc = await connect({ servers: nats.url });
  for (const [id, cores, role] of [
    ['alpha', 8, 'active'],
    ['beta', 8, 'active'],
    ['gamma', 4, 'standby'],
  ] as const) {
    // 1,024 shard reports per heartbeat: every 500 ms is plenty on 2 shared cores.
    const fake = new FakeHost(nc, { bot: BOT, id, cores, role, heartbeatMs: 500 });
    hosts.push(fake);
    await fake.start();
  }
  handle = await startMaster({
    DISCLUSTER_NATS_URL: nats.url,
    DISCLUSTER_BOT: BOT,
    DISCLUSTER_TOKEN: TOKEN,
    DISCLUSTER_DISCORD_API: sim.rest,
    DISCLUSTER_SHARDS: String(SHARDS),
    DISCLUSTER_EXPECTED_HOSTS: '3',
    DISCLUSTER_WAIT_FOR_HOSTS_MS: '30000',
    DISCLUSTER_HOST_TIMEOUT_MS: '5000',
    DISCLUSTER_LOG_LEVEL: 'silent',
    DISCLUSTER_HTTP_PORT: '0',
  });
  url = handle.master?.statusUrl ?? '';
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  await waitFor(() => hosts.slice(0, 2).every((fake) => fake.epoch === 1), {
    description: 'the first assignments of 1,024 shards',
    timeoutMs: 30_000,
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

afterAll(async () => {
  // Each step runs even if an earlier one failed, so nothing is left behind.
  const steps: (() => Promise<unknown> | undefined)[] = [
    () => browser?.close(),
    async () => hosts.splice(0).forEach((fake) => fake.stop()),
    () => handle?.close(),
    () => nc?.drain(),
    () => sim?.stop(),
    () => nats?.stop(),
  ];
  for (const step of steps) await Promise.resolve(step()).catch(() => undefined);
});

let context: BrowserContext | undefined;
let pageErrors: string[] = [];

/** A fresh page on the status page; the test fails on any script error, CSP violation or failed load. */
async function openPage(viewport = { width: 1280, height: 900 }): Promise<Page> {
  if (!browser) throw new Error('no browser');
  context = await browser.newContext({ viewport });
  const page = await context.newPage();
  pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    // The 400 of a lookup with a bad id is expected; Chromium logs every 4xx as a console error.
    if (message.type() === 'error' && !/status of 400 \(Bad Request\)/.test(message.text()))
      pageErrors.push(message.text());
  });
  await page.goto(url);
  return page;
}

afterEach(async () => {
  await context?.close();
  context = undefined;
  expect(pageErrors).toEqual([]);
});

function owner(shardId: number): { fake: FakeHost; clusterId: number } {
  for (const fake of hosts)
    for (const cluster of fake.lastAssign()?.clusters ?? [])
      if (cluster.shardIds.includes(shardId)) return { fake, clusterId: cluster.clusterId };
  throw new Error(`no host runs shard ${shardId}`);
}

type ShardReport = NonNullable<ClusterReport['shards']>[number];

/** Changes what a host reports for some of its shards (from the next heartbeat on). */
function report(fake: FakeHost, change: (shard: ShardReport) => Partial<ShardReport>): void {
  fake.clusters = fake.clusters.map((cluster) => ({
    ...cluster,
    shards: (cluster.shards ?? []).map((shard) => ({ ...shard, ...change(shard) })),
  }));
}

const cellState = (page: Page, shardId: number) =>
  page.locator(`#grid .cell[data-shard="${shardId}"]`).getAttribute('data-state');

describe('status page', () => {
  it('shows one cell per shard (1,024), every one ready, with the hosts and clusters', async () => {
    const page = await openPage();
    await page.waitForFunction(
      (count) => document.querySelectorAll('#grid .cell[data-state="ready"]').length === count,
      SHARDS,
    );
    expect(await page.locator('#grid .cell').count()).toBe(SHARDS);
    const ids = await page.$$eval('#grid .cell', (cells) =>
      cells.map((cell) => Number(cell.getAttribute('data-shard'))),
    );
    expect(ids).toEqual([...Array(SHARDS).keys()]);
    expect(await page.textContent('#count-ready')).toBe(String(SHARDS));
    expect(await page.textContent('#shard-count')).toBe(String(SHARDS));
    expect(await page.textContent('#max-concurrency')).toBe('16');
    expect(await page.textContent('#epoch')).toBe('1');
    expect(await page.textContent('#master')).toBe('up · leading');
    expect(await page.textContent('#hosts-online')).toBe('3 / 3');
    expect(await page.isHidden('#banner')).toBe(true);

    const { fake, clusterId } = owner(700);
    expect(await page.getAttribute('#grid .cell[data-shard="700"]', 'title')).toBe(
      `shard 700 · ready · ping 20 ms · 5 guilds · cluster ${clusterId} · host ${fake.options.id}`,
    );
    expect(
      await page.$$eval('#hosts tbody tr', (rows) => rows.map((row) => row.getAttribute('data-host'))),
    ).toEqual(['alpha', 'beta', 'gamma']);
    const clusters = hosts.flatMap((each) => each.lastAssign()?.clusters ?? []);
    expect(await page.locator('#clusters tbody tr').count()).toBe(clusters.length);
    // 16 shards per cluster (max_concurrency 16), each row: id, host, state, restarts, range, ready 16 / 16.
    const row = await page.$$eval(`#clusters tbody tr[data-cluster="${clusterId}"] td`, (cells) =>
      cells.map((cell) => cell.textContent),
    );
    expect(row.slice(0, 3)).toEqual([String(clusterId), fake.options.id, 'online']);
    expect(row[5]).toBe('16 / 16');
  });

  it('shows a state change live, without reloading', async () => {
    const page = await openPage();
    await page.waitForFunction(() => document.querySelectorAll('#grid .cell[data-state="ready"]').length > 0);
    // Survives only if the page is not reloaded.
    await page.evaluate(() => Object.assign(window, { notReloaded: true }));
    const shardId = 517;
    const { fake } = owner(shardId);
    report(fake, (shard) => (shard.id === shardId ? { state: 'disconnected', lastCloseCode: 1006 } : {}));
    await page.waitForFunction(
      (id) =>
        document.querySelector(`#grid .cell[data-shard="${id}"]`)?.getAttribute('data-state') ===
        'disconnected',
      shardId,
    );
    expect(await page.textContent('#count-disconnected')).toBe('1');
    expect(await page.textContent('#count-ready')).toBe(String(SHARDS - 1));
    expect(await cellState(page, shardId + 1)).toBe('ready');

    report(fake, (shard) => (shard.id === shardId ? { state: 'ready', lastCloseCode: null } : {}));
    await page.waitForFunction(
      (id) =>
        document.querySelector(`#grid .cell[data-shard="${id}"]`)?.getAttribute('data-state') === 'ready',
      shardId,
    );
    expect(await page.evaluate(() => 'notReloaded' in window)).toBe(true);
    expect(await page.textContent('#live')).toBe('live');
  });

  it('finds the shard, cluster and host of a guild', async () => {
    const page = await openPage();
    await page.waitForFunction(() => document.querySelectorAll('#grid .cell').length > 0);
    const guildId = '1234567890123456789';
    const shardId = shardForGuild(guildId, SHARDS);
    const { fake, clusterId } = owner(shardId);
    await page.fill('#which-input', guildId);
    await page.click('#which-form button');
    await page.waitForSelector('#which-result.ok');
    const result = page.locator('#which-result');
    expect(await result.getAttribute('data-shard')).toBe(String(shardId));
    expect(await result.getAttribute('data-cluster')).toBe(String(clusterId));
    expect(await result.getAttribute('data-host')).toBe(fake.options.id);
    expect(await result.textContent()).toBe(
      `guild ${guildId} → shard ${shardId} of ${SHARDS} · cluster ${clusterId} · host ${fake.options.id}`,
    );
    expect(await page.getAttribute(`#grid .cell[data-shard="${shardId}"]`, 'class')).toBe('cell found');

    await page.fill('#which-input', 'not-a-guild');
    await page.click('#which-form button');
    await page.waitForSelector('#which-result.error');
    expect(await result.textContent()).toMatch(/guild must be a Discord id/);
    expect(await page.locator('#grid .cell.found').count()).toBe(0);
  });

  // After the others: it changes what every host reports.
  // Always rendered and captured; `DISCLUSTER_SCREENSHOT=1` keeps the capture as docs/status-page.png.
  it('renders every state of a fleet mid-operation (the docs screenshot)', async () => {
    // A fleet mid-operation: one cluster resuming after a move, one bucket identifying, the next
    // waiting for its turn, one shard reconnecting, varied pings and guild counts.
    const resuming = owner(480).clusterId;
    for (const fake of hosts)
      fake.clusters = fake.clusters.map((cluster) => ({
        ...cluster,
        restarts: cluster.clusterId === resuming ? 1 : 0,
        shards: (cluster.shards ?? []).map((shard) => {
          const id = shard.id;
          const state =
            cluster.clusterId === resuming
              ? 'resuming'
              : id >= 1008
                ? 'waiting'
                : id >= 992
                  ? 'identifying'
                  : id === 517
                    ? 'disconnected'
                    : 'ready';
          return {
            ...shard,
            state,
            ping: state === 'ready' ? 18 + ((id * 37) % 60) : -1,
            guilds: state === 'ready' || state === 'resuming' ? 930 + ((id * 53) % 140) : 0,
            events: state === 'ready' ? 150_000 + ((id * 7919) % 90_000) : 0,
          };
        }),
      }));
    const page = await openPage({ width: 1440, height: 900 });
    await page.waitForFunction(
      () => document.querySelectorAll('#grid .cell[data-state="waiting"]').length === 16,
    );
    await page.fill('#which-input', '81384788765712384');
    await page.click('#which-form button');
    await page.waitForSelector('#which-result.ok');
    for (const state of ['resuming', 'identifying', 'waiting', 'disconnected', 'ready'])
      expect(await page.locator(`#grid .cell[data-state="${state}"]`).count(), state).toBeGreaterThan(0);
    const target =
      process.env.DISCLUSTER_SCREENSHOT === '1'
        ? SCREENSHOT
        : path.join(mkdtempSync(path.join(tmpdir(), 'status-page-')), 'status-page.png');
    await page.screenshot({ path: target, fullPage: true });
    expect(statSync(target).size).toBeGreaterThan(10_000);
    if (target !== SCREENSHOT) rmSync(path.dirname(target), { recursive: true, force: true });
  });

  // Last: it stops the fleet.
  it('shows a stopped fleet in a banner with the reason', async () => {
    const page = await openPage();
    await page.waitForFunction(() => document.querySelectorAll('#grid .cell').length > 0);
    expect(await page.isHidden('#banner')).toBe(true);
    const fleet = await FleetClient.connect({ nats_url: [nats!.url] }, BOT);
    try {
      await fleet.askMaster({ v: 1, type: 'stop', reason: 'maintenance window (status page test)' }, 10_000);
    } finally {
      await fleet.close();
    }
    await page.waitForSelector('#banner', { state: 'visible' });
    expect(await page.textContent('#banner')).toMatch(
      /^Fleet stopped: maintenance window \(status page test\) since .+\. Nothing restarts until `discluster restart`\.$/,
    );
  });
});
