#!/usr/bin/env node
// `npm run bench` / `npm run bench:quick`: Discluster side by side with the peers users would pick
// instead (issue 9), every peer measured in the same run on the same discord-sim. Runs the sections
// in priority order, each as its own process with a time budget (bench/peers/<name>.mjs), then
// writes bench/results/bench.json (every raw figure) and bench.md (tables, targets, noise);
// --quick writes bench-quick.json and bench-quick.md.
//
//   node bench/peers/run.mjs [--quick] [--only startup,restart] [--out DIR]
//   node bench/peers/run.mjs --render [--quick]   re-render the markdown from the JSON
// A section that fails, or does not finish within its budget, is reported as not measured, with
// the reason; nothing is estimated in its place. SIGINT stops the running section (which stops every
// process it started, by pid) and writes what was measured.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { render, SECTIONS } from './report.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string' },
    render: { type: 'boolean', default: false },
  },
});
const quick = flags.quick;
const outDir = path.resolve(flags.out ?? path.join(root, 'bench', 'results'));
const base = quick ? 'bench-quick' : 'bench';
const jsonFile = path.join(outDir, `${base}.json`);
const mdFile = path.join(outDir, `${base}.md`);

// Budgets are liveness bounds for this machine (2 shared cores), not targets.
const BUDGET_S = quick
  ? {
      startup: 70,
      restart: 60,
      failover: 70,
      memory: 40,
      dispatch: 55,
      ipc: 45,
      scale: 30,
      rest: 150,
      discordjs: 240,
    }
  : {
      startup: 2700,
      restart: 1500,
      failover: 1200,
      memory: 2400,
      dispatch: 900,
      ipc: 900,
      scale: 600,
      rest: 600,
      discordjs: 1500,
    };

function write(result) {
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(jsonFile, `${JSON.stringify(result, null, 1)}\n`);
  fs.writeFileSync(mdFile, render(result));
  console.log(`wrote ${path.relative(root, jsonFile)} and ${path.relative(root, mdFile)}`);
}

if (flags.render) {
  write(JSON.parse(fs.readFileSync(jsonFile, 'utf8')));
  process.exit(0);
}

const only = flags.only ? flags.only.split(',') : null;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'discluster-bench-run-'));
const result = {
  command: quick ? 'npm run bench:quick' : 'npm run bench',
  quick,
  startedAt: new Date().toISOString(),
  budgetsS: BUDGET_S,
  sections: {},
};

let current = null;
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'])
  process.on(signal, () => {
    interrupted = true;
    // The section stops its own processes by pid; pass the signal on to it, by pid.
    if (current?.pid) process.kill(current.pid, 'SIGINT');
  });

function runSection(name) {
  return new Promise((resolve) => {
    const args = [path.join(here, `${name}.mjs`), '--out', tmp, ...(quick ? ['--quick'] : [])];
    const child = spawn(process.execPath, args, { stdio: 'inherit', cwd: root });
    current = child;
    let overBudget = false;
    const timer = setTimeout(() => {
      overBudget = true;
      console.log(`${name}: over its budget of ${BUDGET_S[name]} s: stopping it`);
      child.kill('SIGINT');
      setTimeout(() => child.kill('SIGKILL'), 60_000).unref();
    }, BUDGET_S[name] * 1000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      current = null;
      resolve({ code, signal, overBudget });
    });
  });
}

const started = Date.now();
for (const name of SECTIONS) {
  if (only && !only.includes(name)) continue;
  if (interrupted) {
    result.sections[name] = { notMeasured: 'the run was interrupted before this section' };
    continue;
  }
  const t0 = Date.now();
  console.log(`\n=== ${name} (budget ${BUDGET_S[name]} s) ===`);
  const exit = await runSection(name);
  const file = path.join(tmp, `${name}.json`);
  let section = null;
  try {
    section = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    // nothing written
  }
  if (!section) section = { notMeasured: `the section wrote no result (exit ${exit.code ?? exit.signal})` };
  if (exit.overBudget)
    section.notMeasured = `did not finish within its budget of ${BUDGET_S[name]} s on this machine; figures below are what it measured until then`;
  else if (exit.code !== 0 && !section.notMeasured)
    section.notMeasured = `failed: ${String(section.error ?? `exit ${exit.code ?? exit.signal}`).split('\n')[0]}`;
  section.wallS = Math.round((Date.now() - t0) / 1000);
  result.sections[name] = section;
}
result.finishedAt = new Date().toISOString();
result.wallS = Math.round((Date.now() - started) / 1000);
fs.rmSync(tmp, { recursive: true, force: true });
if (only && fs.existsSync(jsonFile)) {
  // A partial run (--only) keeps the other sections of the last full result.
  const previous = JSON.parse(fs.readFileSync(jsonFile, 'utf8'));
  result.sections = { ...previous.sections, ...result.sections };
  result.partial = { only, previousStartedAt: previous.startedAt };
}
write(result);
console.log(`done in ${result.wallS} s`);
process.exit(interrupted ? 130 : 0);
