#!/usr/bin/env node
// Packs one of the pm2 modules (discluster-control, discluster-master) as a tarball
// `pm2 install /abs/path.tgz` accepts: `npm pack` of the workspace alone would leave out
// discluster-protocol and discluster-runtime (hoisted to the root node_modules and not on the
// registry), so this stages the package with a real copy of each and bundles those two
// dependencies. The others come from the npm cache or registry at install.
// Usage: node scripts/pack-module.mjs <package dir> [outDir]; prints the tarball's absolute path.
// Needs `tsc -b` first. Only Node built-ins and the npm CLI.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
if (!process.argv[2]) {
  console.error('usage: node scripts/pack-module.mjs <package dir> [outDir]');
  process.exit(2);
}
const pkgDir = path.resolve(process.argv[2]);
const bundledDirs = { 'discluster-protocol': 'protocol', 'discluster-runtime': 'runtime' };
const outDir = path.resolve(process.argv[3] ?? process.cwd());

for (const dir of [pkgDir, ...Object.values(bundledDirs).map((name) => path.join(root, name))]) {
  if (!fs.existsSync(path.join(dir, 'dist'))) {
    console.error(`${path.join(dir, 'dist')} is missing: run \`npx tsc -b\` first.`);
    process.exit(1);
  }
}

const stage = fs.mkdtempSync(path.join(os.tmpdir(), `${path.basename(pkgDir)}-pack-`));
try {
  const copy = (from, to) =>
    fs.cpSync(from, to, { recursive: true, filter: (file) => !file.endsWith('.tsbuildinfo') });
  copy(path.join(pkgDir, 'dist'), path.join(stage, 'dist'));
  copy(path.join(pkgDir, 'README.md'), path.join(stage, 'README.md'));
  for (const [name, dir] of Object.entries(bundledDirs)) {
    const bundled = path.join(stage, 'node_modules', name);
    copy(path.join(root, dir, 'dist'), path.join(bundled, 'dist'));
    copy(path.join(root, dir, 'package.json'), path.join(bundled, 'package.json'));
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  manifest.bundleDependencies = Object.keys(bundledDirs);
  fs.writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  fs.mkdirSync(outDir, { recursive: true });
  const result = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', outDir], { cwd: stage, encoding: 'utf8' }),
  );
  console.log(path.join(outDir, result[0].filename));
} finally {
  fs.rmSync(stage, { recursive: true, force: true });
}
