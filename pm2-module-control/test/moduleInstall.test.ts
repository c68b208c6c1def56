import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from 'discluster-testing';
import { afterAll, describe, expect, it } from 'vitest';
import { makePm2Home, pm2Cli, pm2List, processesMentioning, teardownPm2 } from './pm2Cli';

/**
 * The real operator path: pack → `pm2 install /abs/x.tgz` → module online → `pm2 set` → `pm2
 * uninstall`. pm2 runs `npm install` for the module's dependencies, which may need the npm registry
 * (reachable here and in CI) for packages missing from the local cache.
 */

const PACK = path.join(__dirname, '..', 'scripts', 'pack.mjs');
const NAME = 'discluster-control';
let home: string | undefined;
let outDir: string | undefined;

afterAll(async () => {
  try {
    if (home) await teardownPm2(home);
  } finally {
    if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
  }
});

describe('pm2 install of the packed module', () => {
  it('installs, runs as a module, takes `pm2 set`, uninstalls', { timeout: 300_000 }, async () => {
    outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-tgz-'));
    const tgz = execFileSync(process.execPath, [PACK, outDir], { encoding: 'utf8' }).trim();
    expect(path.isAbsolute(tgz)).toBe(true);
    home = makePm2Home();
    await pm2Cli(home, 'install', tgz);
    const installed = async () => (await pm2List(home!)).processes.find((proc) => proc['name'] === NAME);
    await waitFor(async () => (await installed())?.['pm2_env']['status'] === 'online', {
      description: 'module online',
      timeoutMs: 30_000,
    });
    expect((await installed())?.['pm2_env']['pmx_module']).toBe(true);
    // Defaults from package.json "config" were seeded.
    const conf = JSON.parse(fs.readFileSync(path.join(home, 'module_conf.json'), 'utf8'));
    expect(conf[NAME]).toMatchObject({ retry_ms: '30000', max_cluster_restarts: '3' });
    await pm2Cli(home, 'set', `${NAME}:retry_ms`, 'soon');
    const log = () => fs.readFileSync(path.join(home!, 'logs', `${NAME}-out.log`), 'utf8');
    await waitFor(() => log().includes('retry_ms: must be a whole number'), {
      description: 'config error logged',
      timeoutMs: 30_000,
    });
    expect((await installed())?.['pm2_env']['status']).toBe('online');
    await pm2Cli(home, 'uninstall', NAME);
    expect(await installed()).toBeUndefined();
    await teardownPm2(home);
    expect(processesMentioning(home)).toEqual([]);
  });
});
