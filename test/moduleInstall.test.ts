import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makePm2Home, pm2Cli, pm2List, processesMentioning, teardownPm2, waitFor } from 'discluster-testing';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The real operator path for both pm2 modules: pack → `pm2 install /abs/x.tgz` → module online in
 * pm2's module table → `pm2 set` (a bad value is logged naming the key, the module stays online) →
 * `pm2 uninstall`. pm2 runs `npm install` for the module's dependencies, which may need the npm
 * registry (reachable here and in CI) for packages missing from the local cache.
 */

const ROOT = path.resolve(__dirname, '..');
const homes: string[] = [];
const outDirs: string[] = [];

afterAll(async () => {
  for (const home of homes) await teardownPm2(home).catch(() => undefined);
  for (const dir of outDirs) fs.rmSync(dir, { recursive: true, force: true });
});

const modules = [
  {
    name: 'discluster-control',
    defaults: { retry_ms: '30000', max_cluster_restarts: '3' },
    bad: ['retry_ms', 'soon', 'retry_ms: must be a whole number'],
  },
  {
    name: 'discluster-master',
    defaults: { wait_for_hosts_ms: '45000', lease_ms: '20000' },
    bad: ['lease_ms', 'forever', 'lease_ms: must be a whole number'],
  },
] as const;

describe('pm2 install of the packed modules', () => {
  it.each(modules)(
    '$name installs, runs as a module, takes `pm2 set`, uninstalls',
    { timeout: 300_000 },
    async ({ name, defaults, bad }) => {
      const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-tgz-'));
      outDirs.push(outDir);
      const pack = path.join(
        ROOT,
        name === 'discluster-control' ? 'pm2-module-control' : 'pm2-module-master',
        'scripts',
        'pack.mjs',
      );
      const tgz = execFileSync(process.execPath, [pack, outDir], { encoding: 'utf8' }).trim();
      expect(path.isAbsolute(tgz)).toBe(true);
      const home = makePm2Home();
      homes.push(home);
      await pm2Cli(home, 'install', tgz);
      const installed = async () => (await pm2List(home)).processes.find((proc) => proc['name'] === name);
      await waitFor(async () => (await installed())?.['pm2_env']['status'] === 'online', {
        description: `${name} online`,
        timeoutMs: 30_000,
      });
      expect((await installed())?.['pm2_env']['pmx_module']).toBe(true);
      // Defaults from package.json "config" were seeded.
      const conf = JSON.parse(fs.readFileSync(path.join(home, 'module_conf.json'), 'utf8'));
      expect(conf[name]).toMatchObject(defaults);
      const [key, value, message] = bad;
      await pm2Cli(home, 'set', `${name}:${key}`, value);
      const log = () => {
        const file = path.join(home, 'logs', `${name}-out.log`);
        return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
      };
      await waitFor(() => log().includes(message), { description: 'config error logged', timeoutMs: 30_000 });
      expect(log()).not.toContain(value);
      expect((await installed())?.['pm2_env']['status']).toBe('online');
      await pm2Cli(home, 'uninstall', name);
      expect(await installed()).toBeUndefined();
      await teardownPm2(home);
      expect(processesMentioning(home)).toEqual([]);
    },
  );
});
