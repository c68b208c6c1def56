#!/usr/bin/env node
// `npm run bench:sdk`: bench/sdk/dispatch.mjs, then bench/sdk/ipc.mjs, into one sdk.json + sdk.md.
//
//   node bench/sdk/run.mjs            full run, writes bench/results/sdk.json and sdk.md
//   node bench/sdk/run.mjs --quick    short run of both, written to one temp dir (printed)
//   node bench/sdk/run.mjs --out DIR  write the results into DIR instead
// For the scripts' own flags (rates, rounds, layouts, …) run them directly.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    'cpu-prof': { type: 'string' },
  },
});
const args = [];
if (values.quick) args.push('--quick');
if (values['cpu-prof']) args.push('--cpu-prof', values['cpu-prof']);
if (values.out) args.push('--out', values.out);
if (values.quick && !values.out)
  args.push('--out', fs.mkdtempSync(path.join(os.tmpdir(), 'discluster-sdk-bench-')));

let current = null;
for (const signal of ['SIGINT', 'SIGTERM'])
  process.on(signal, () => {
    // The benchmark stops its own children by pid; pass the signal on to it, by pid.
    if (current?.pid) process.kill(current.pid, signal);
  });

for (const script of ['dispatch.mjs', 'ipc.mjs']) {
  const code = await new Promise((resolve) => {
    current = spawn(process.execPath, [path.join(here, script), ...args], { stdio: 'inherit' });
    current.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
  });
  current = null;
  if (code !== 0) {
    console.error(`bench/sdk/${script} failed (exit ${code})`);
    process.exit(code);
  }
}
