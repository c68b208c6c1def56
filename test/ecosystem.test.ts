import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  ControlConfigSchema,
  FleetStatusSchema,
  MasterConfigSchema,
  loadModuleConfig,
  type FleetStatus,
} from 'discluster-protocol';
import {
  getFreePort,
  makePm2Home,
  pm2Env,
  pm2List,
  processesMentioning,
  startDiscordSimProcess,
  teardownPm2,
  waitFor,
  type DiscordSimProcess,
} from 'discluster-testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { expectFleetInvariants } from './support/invariants';

/**
 * The top-level ecosystem.config.js (issue 6, item 2): loaded with and without DISCORD_TOKEN, its
 * apps are valid pm2 apps whose settings pass the modules' own configuration schemas; and started
 * for real with `pm2 start` it brings a one-machine fleet up without the token in any pm2 process.
 */

const ROOT = path.resolve(__dirname, '..');
const ECOSYSTEM = path.join(ROOT, 'ecosystem.config.js');
const CLI_BIN = path.join(ROOT, 'pm2-module-master', 'dist', 'cli', 'discluster.js');
const DEMO_BOT = path.join(ROOT, 'examples', 'dist', 'demo-bot', 'bot.js');
const PM2_BIN = path.join(path.dirname(createRequire(__filename).resolve('pm2/package.json')), 'bin', 'pm2');
const requireFresh = createRequire(__filename);

interface App {
  name: string;
  script: string;
  interpreter?: string;
  args?: string[];
  env?: Record<string, string>;
  filter_env?: string[];
  [key: string]: unknown;
}

const VARIABLES = [
  'DISCORD_TOKEN',
  'DISCORD_TOKEN_FILE',
  'BOT_SCRIPT',
  'DISCLUSTER_DATA_DIR',
  'NATS_PORT',
  'STATUS_PORT',
  'DISCORD_SIM_PORT',
  'DISCORD_API',
];
const dirs: string[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-eco-'));
  dirs.push(dir);
  return dir;
}

/** Requires ecosystem.config.js afresh with exactly these of its variables set. */
function load(vars: Record<string, string>): App[] {
  const saved = Object.fromEntries(VARIABLES.map((name) => [name, process.env[name]]));
  for (const name of VARIABLES) delete process.env[name];
  Object.assign(process.env, vars);
  try {
    delete requireFresh.cache[requireFresh.resolve(ECOSYSTEM)];
    return (requireFresh(ECOSYSTEM) as { apps: App[] }).apps;
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

function app(apps: App[], name: string): App {
  const found = apps.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no app ${name} in ${apps.map((one) => one.name).join(', ')}`);
  return found;
}

function settings<T>(schema: Parameters<typeof loadModuleConfig<T>>[0], moduleName: string, entry: App): T {
  const result = loadModuleConfig(schema, { moduleName, env: entry.env ?? {} });
  if (!result.ok) throw new Error(`${moduleName}: ${JSON.stringify(result.issues)}`);
  return result.config as T;
}

afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('ecosystem.config.js, loaded', () => {
  it('without DISCORD_TOKEN: nats-server, discord-sim, MASTER and CONTROL with valid settings', () => {
    const data = tempDir();
    const apps = load({ DISCLUSTER_DATA_DIR: data });
    expect(apps.map((one) => one.name)).toEqual([
      'nats-server',
      'discord-sim',
      'discluster-master',
      'discluster-control',
    ]);

    const nats = app(apps, 'nats-server');
    expect(nats.interpreter).toBe('none');
    expect(nats.args).toEqual(
      expect.arrayContaining(['-js', '-a', '127.0.0.1', '-p', '4222', '-sd', path.join(data, 'nats')]),
    );
    expect((nats['kill_timeout'] as number) >= 10_000).toBe(true);

    const sim = app(apps, 'discord-sim');
    const simPort = sim.args?.[sim.args.indexOf('--port') + 1];
    const master = settings(MasterConfigSchema, 'discluster-master', app(apps, 'discluster-master'));
    expect(master.nats_url).toEqual(['nats://127.0.0.1:4222']);
    expect(master.discord_api).toBe(`http://127.0.0.1:${simPort}/api/v10`);
    // discord-sim runs with its default token (no --token flag).
    expect(sim.args).not.toContain('--token');
    expect(master.token).toBe('discord-sim-token');
    expect(master.expected_hosts).toBe(1);
    expect(master.http_port).toBe(9464);

    const control = settings(ControlConfigSchema, 'discluster-control', app(apps, 'discluster-control'));
    expect(control.nats_url).toEqual(['nats://127.0.0.1:4222']);
    expect(control.script).toBe(DEMO_BOT);
    expect(control.role).toBe('active');
    // The demo bot's identify window is the simulator's.
    expect(sim.args?.[sim.args.indexOf('--identify-window-ms') + 1]).toBe('1000');

    for (const entry of apps) {
      expect(path.isAbsolute(entry.script), entry.name).toBe(true);
      if (entry.name !== 'nats-server') expect(fs.existsSync(entry.script), entry.script).toBe(true);
      expect(entry.filter_env).toEqual(expect.arrayContaining(['DISCORD_TOKEN', 'DISCLUSTER_']));
    }
    // Nothing written without a token.
    expect(fs.readdirSync(data)).toEqual([]);
  });

  it('with DISCORD_TOKEN: no simulator, the token only in a 0600 file MASTER reads', () => {
    const data = tempDir();
    const token = 'ecosystem-secret-token-0f3a9c';
    const apps = load({
      DISCORD_TOKEN: token,
      BOT_SCRIPT: '/srv/bot/dist/index.js',
      DISCLUSTER_DATA_DIR: data,
      NATS_PORT: '4333',
    });
    expect(apps.map((one) => one.name)).toEqual(['nats-server', 'discluster-master', 'discluster-control']);
    expect(JSON.stringify(apps)).not.toContain(token);

    const masterApp = app(apps, 'discluster-master');
    expect(masterApp.env).not.toHaveProperty('DISCLUSTER_TOKEN');
    const master = settings(MasterConfigSchema, 'discluster-master', masterApp);
    expect(master.token_file).toBe(path.join(data, 'token'));
    expect(fs.readFileSync(path.join(data, 'token'), 'utf8').trim()).toBe(token);
    expect(fs.statSync(path.join(data, 'token')).mode & 0o777).toBe(0o600);
    expect(master.discord_api).toBe('https://discord.com/api/v10');
    expect(master.nats_url).toEqual(['nats://127.0.0.1:4333']);

    const control = settings(ControlConfigSchema, 'discluster-control', app(apps, 'discluster-control'));
    expect(control.script).toBe('/srv/bot/dist/index.js');

    // The saved token keeps a later load (e.g. `pm2 restart ecosystem.config.js`) on Discord.
    const again = load({ BOT_SCRIPT: '/srv/bot/dist/index.js', DISCLUSTER_DATA_DIR: data });
    expect(again.map((one) => one.name)).not.toContain('discord-sim');
    expect(
      settings(MasterConfigSchema, 'discluster-master', app(again, 'discluster-master')).token_file,
    ).toBe(path.join(data, 'token'));
  });

  it('with a token but no BOT_SCRIPT: a clear error instead of the demo bot on Discord', () => {
    const data = tempDir();
    expect(() => load({ DISCORD_TOKEN: 'some-token', DISCLUSTER_DATA_DIR: data })).toThrow(/BOT_SCRIPT/);
    const tokenFile = path.join(data, 'given-token');
    fs.writeFileSync(tokenFile, 'some-token\n', { mode: 0o600 });
    expect(() => load({ DISCORD_TOKEN_FILE: tokenFile, DISCLUSTER_DATA_DIR: data })).toThrow(/BOT_SCRIPT/);
  });
});

describe('pm2 start ecosystem.config.js', () => {
  let home: string | undefined;
  let sim: DiscordSimProcess | undefined;
  let data: string | undefined;

  afterAll(async () => {
    if (home) await teardownPm2(home);
    await sim?.stop();
    if (data) fs.rmSync(data, { recursive: true, force: true });
  }, 60_000);

  it(
    'runs a one-machine fleet with a token from DISCORD_TOKEN, which no pm2 process shows',
    { timeout: 240_000 },
    async () => {
      const token = 'ecosystem-run-token-71be42';
      sim = await startDiscordSimProcess({
        token,
        guilds: 400,
        shards: 4,
        'max-concurrency': 4,
        'identify-window-ms': 1000,
      });
      home = makePm2Home();
      data = fs.mkdtempSync('/tmp/dc-eco-data-');
      const natsPort = String(await getFreePort());
      await promisify(execFile)(process.execPath, [PM2_BIN, 'start', ECOSYSTEM], {
        cwd: ROOT,
        env: {
          ...process.env,
          ...pm2Env(home),
          DISCORD_TOKEN: token,
          BOT_SCRIPT: DEMO_BOT,
          DISCORD_API: sim.rest,
          DISCLUSTER_DATA_DIR: data,
          NATS_PORT: natsPort,
          STATUS_PORT: String(await getFreePort()),
          // Inherited settings must not reach the modules (filter_env).
          DISCLUSTER_SHARDS: 'not-a-number',
        },
      });

      let last: FleetStatus | undefined;
      const cli = promisify(execFile);
      try {
        await waitFor(
          async () => {
            const { stdout } = await cli(process.execPath, [
              CLI_BIN,
              'status',
              '--json',
              '--timeout-ms',
              '2000',
              '--nats-url',
              `nats://127.0.0.1:${natsPort}`,
            ]);
            last = FleetStatusSchema.parse(JSON.parse(stdout));
            const shards = last.hosts.flatMap((host) => host.clusters.flatMap((cluster) => cluster.shards));
            return shards.length === 4 && shards.every((shard) => shard.state === 'ready');
          },
          { description: 'every shard ready', timeoutMs: 180_000, intervalMs: 500 },
        );
      } catch (error) {
        const logs = fs.existsSync(path.join(home, 'logs'))
          ? fs
              .readdirSync(path.join(home, 'logs'))
              .map(
                (file) =>
                  `--- ${file}\n${fs.readFileSync(path.join(home!, 'logs', file), 'utf8').slice(-2000)}`,
              )
              .join('\n')
          : '';
        throw new Error(`${String(error)}\nlast status: ${JSON.stringify(last)}\n${logs}`);
      }

      const { processes, raw } = await pm2List(home);
      const names = processes.map((proc) => String(proc['name']));
      expect(names).toEqual(
        expect.arrayContaining(['nats-server', 'discluster-master', 'discluster-control']),
      );
      expect(names).not.toContain('discord-sim');
      expect(names.filter((name) => name.startsWith('discluster-default-cluster-')).length).toBe(1);
      // Promise 4: the token is in no pm2 process (apps and clusters), and inherited DISCORD_TOKEN
      // and DISCLUSTER_* variables were filtered out of every app.
      expect(raw.includes(token), 'the token appears in pm2 jlist').toBe(false);
      for (const proc of processes) {
        const keys = [...Object.keys(proc['pm2_env']), ...Object.keys(proc['pm2_env']['env'] ?? {})];
        expect(keys, String(proc['name'])).not.toContain('DISCORD_TOKEN');
        expect(keys, String(proc['name'])).not.toContain('DISCLUSTER_SHARDS');
      }
      expect(sim && (await sim.state())['identifies']).toBe(4);
      expectFleetInvariants(await sim.state());

      await teardownPm2(home);
      expect(processesMentioning(home)).toEqual([]);
      home = undefined;
    },
  );
});
