import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/**
 * The workspace bins are linked after the build (scripts/setup.mjs `linkWorkspaceBins`, run by
 * `npm test`, `npm run demo` and `npm run build`), so the commands the docs give, such as
 * `npx discluster status`, run this repository's code. `--no-install`: npx must never ask the
 * registry for a package of the same name instead.
 */

const root = path.resolve(__dirname, '..');
const run = promisify(execFile);

/** bin name → the built file it must point to. */
const BINS: Record<string, string> = {
  discluster: 'pm2-module-master/dist/cli/discluster.js',
  'discluster-master': 'pm2-module-master/dist/main.js',
  'discluster-control': 'pm2-module-control/dist/main.js',
  'discord-sim': 'discord-sim/dist/cli.js',
};

async function npx(args: string[]): Promise<{ stdout: string; stderr: string }> {
  // A clean npm environment: an npm_config_* of the calling npm run must not change npx.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)));
  return run('npx', ['--no-install', ...args], { cwd: root, env, timeout: 30_000 });
}

describe('workspace bins', () => {
  it.each(Object.entries(BINS))('node_modules/.bin/%s is linked to %s', (name, target) => {
    const link = path.join(root, 'node_modules', '.bin', name);
    expect(fs.existsSync(link), `${link} is missing: run \`npm run build\``).toBe(true);
    expect(fs.realpathSync(link)).toBe(fs.realpathSync(path.join(root, target)));
    fs.accessSync(link, fs.constants.X_OK);
  });

  it('`npx --no-install discluster --help` prints the CLI help', async () => {
    const { stdout } = await npx(['discluster', '--help']);
    expect(stdout).toContain('Usage: discluster <command> [options]');
    expect(stdout).toContain('status');
  });

  it('`npx --no-install discord-sim --help` prints the simulator help', async () => {
    const { stdout } = await npx(['discord-sim', '--help']);
    expect(stdout).toContain('Usage: discord-sim');
  });
});
