#!/usr/bin/env node
// `npm run bench:soak`: a Discluster fleet under steady traffic and random faults for a set time
// (30 minutes by default), with RSS and open file descriptors of every process sampled throughout;
// the verdict is whether growth stayed bounded (bench/soak/analyze.mjs). Runs bench/soak/soak.mjs
// as its own process with a time budget (it stops everything it started, by pid, also on failure
// or Ctrl-C), then writes soak.json (every raw sample, the faults, machine and versions) and
// soak.md (the report) to bench/results, or with --quick to a temporary directory.
//
//   node bench/soak/run.mjs                       30 minutes, results to bench/results/soak.{json,md}
//   node bench/soak/run.mjs --minutes 60 --seed 7 a longer run, the faults of seed 7
//   node bench/soak/run.mjs --quick               a ~3-minute smoke run (short intervals), to a temp dir
//   node bench/soak/run.mjs --render [--out DIR]  re-render soak.md from soak.json
//   node bench/soak/run.mjs --nats-cluster --minutes 120 --kill-node-every-min 10
//                                                 a 3-node NATS cluster, kv_replicas 3, a node killed
//                                                 every 10 min: bench/results/soak-nats-cluster.{json,md}
//   --name BASE                                   file names BASE.{json,md}
// Other flags go to the soak: --sample-s, --warmup-s, --fault-min-s, --fault-max-s,
// --faults cluster-sigkill,resume-storm,op7,invalid-session,rolling-restart,nats-restart,
// --shards, --hosts, --rate.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyze } from './analyze.mjs';
import { render } from './report.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

// --out and --render are this script's; everything else is passed to the soak (which checks it).
const argv = process.argv.slice(2);
let outArg = null;
let renderOnly = false;
let nameArg = null;
const forwarded = [];
for (let i = 0; i < argv.length; i++) {
  const arg = argv[i];
  if (arg === '--render') renderOnly = true;
  else if (arg === '--out') outArg = argv[++i];
  else if (arg.startsWith('--out=')) outArg = arg.slice('--out='.length);
  else if (arg === '--name') nameArg = argv[++i];
  else forwarded.push(arg);
}
const quick = forwarded.includes('--quick');
const minutesArg = forwarded.find((arg, i) => forwarded[i - 1] === '--minutes');
const minutes = Number(minutesArg ?? (quick ? 3 : 30));

const outDir = path.resolve(
  outArg ??
    (quick && !renderOnly
      ? fs.mkdtempSync(path.join(os.tmpdir(), 'discluster-soak-'))
      : path.join(root, 'bench', 'results')),
);
// A NATS cluster soak is a different experiment: it keeps its own results beside the plain one.
const base = nameArg ?? (forwarded.includes('--nats-cluster') ? 'soak-nats-cluster' : 'soak');
const jsonFile = path.join(outDir, `${base}.json`);
const mdFile = path.join(outDir, `${base}.md`);

/** JSON with one line per sample: readable, and a fraction of the size of an indented dump. */
function serialize(result) {
  const { samples = [], ...rest } = result;
  const head = JSON.stringify({ ...rest, samples: '\u0000' }, null, 1);
  const body = samples.length ? `[\n${samples.map((s) => `  ${JSON.stringify(s)}`).join(',\n')}\n ]` : '[]';
  return `${head.replace('"\\u0000"', () => body)}\n`;
}

function write(result) {
  result.analysis = analyze(result);
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(jsonFile, serialize(result));
  fs.writeFileSync(mdFile, render(result));
  console.log(
    `wrote ${path.relative(root, jsonFile) || jsonFile} and ${path.relative(root, mdFile) || mdFile}`,
  );
  return result;
}

if (renderOnly) {
  write(JSON.parse(fs.readFileSync(jsonFile, 'utf8')));
  process.exit(0);
}

if (!Number.isFinite(minutes) || minutes <= 0) {
  console.error('--minutes must be a positive number');
  process.exit(2);
}
// A liveness bound for the whole section (cold start, soak, checks, teardown), not a target.
const budgetS = Math.round(minutes * 60 + 900);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'discluster-soak-run-'));
const command = `node bench/soak/run.mjs${argv.length ? ` ${argv.join(' ')}` : ''}`;

let interrupted = false;
const child = spawn(process.execPath, [path.join(here, 'soak.mjs'), '--out', tmp, ...forwarded], {
  stdio: 'inherit',
  cwd: root,
});
for (const signal of ['SIGINT', 'SIGTERM'])
  process.on(signal, () => {
    interrupted = true;
    // The soak stops its own processes by pid and writes what it measured; pass the signal on.
    child.kill('SIGINT');
  });
let overBudget = false;
const timer = setTimeout(() => {
  overBudget = true;
  console.log(`soak: over its budget of ${budgetS} s: stopping it`);
  child.kill('SIGINT');
  setTimeout(() => child.kill('SIGKILL'), 60_000).unref();
}, budgetS * 1000);
const exit = await new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
clearTimeout(timer);

let result = null;
try {
  result = JSON.parse(fs.readFileSync(path.join(tmp, 'soak.json'), 'utf8'));
} catch {
  // nothing written
}
fs.rmSync(tmp, { recursive: true, force: true });
if (!result) {
  console.error(`soak wrote no result (exit ${exit.code ?? exit.signal})`);
  process.exit(1);
}
result.command = command;
result.budgetS = budgetS;
if (overBudget) result.incomplete = `did not finish within its budget of ${budgetS} s`;
else if (interrupted) result.incomplete = 'interrupted';
else if (exit.code !== 0) result.incomplete = `failed: ${String(result.error ?? exit.code).split('\n')[0]}`;
write(result);
const verdict = result.analysis;
console.log(
  result.incomplete
    ? `soak incomplete (${result.incomplete})`
    : `growth ${verdict.ok ? 'bounded' : 'NOT bounded'}${verdict.failed.length ? `: ${verdict.failed.map((f) => f.label).join(', ')}` : ''}`,
);
process.exit(exit.code === 0 && !result.incomplete ? 0 : 1);
