#!/usr/bin/env node
// Packs discluster-master for `pm2 install /abs/path.tgz` (see scripts/pack-module.mjs at the top level).
// Usage: node <this file> [outDir]; prints the tarball's absolute path.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const packModule = path.join(pkgDir, '..', 'scripts', 'pack-module.mjs');
const args = [packModule, pkgDir, ...process.argv.slice(2, 3)];
process.stdout.write(execFileSync(process.execPath, args, { encoding: 'utf8' }));
