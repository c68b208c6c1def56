#!/usr/bin/env node
// Summarises V8 CPU profiles written with `--cpu-prof DIR` (dispatch.mjs / ipc.mjs): time by package
// or area, the functions with the most self time, and the inclusive time of functions matching
// --focus (a regular expression on "functionName url"). Diagnostics only; writes nothing.
//
//   node bench/sdk/profile-summary.mjs DIR/CPU.….cpuprofile [--top 25] [--focus 'discluster-sdk|cluster-sdk/dist']
import fs from 'node:fs';
import { parseArgs } from 'node:util';

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' }, focus: { type: 'string' } },
});

function area(url, name) {
  if (!url) return name.startsWith('(') ? name : '(native / builtins)';
  if (url.includes('/cluster-sdk/dist/')) return 'discluster-sdk';
  if (url.includes('/protocol/dist/')) return 'discluster-protocol';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1];
  if (url.startsWith('node:')) return 'node core';
  if (url.includes('/bench/')) return 'bench harness';
  return url;
}

for (const file of positionals) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((node) => [node.id, { ...node, self: 0 }]));
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  profile.samples.forEach((id, i) => {
    byId.get(id).self += (profile.timeDeltas[i] ?? 0) / 1000;
  });
  const total = [...byId.values()].reduce((sum, node) => sum + node.self, 0);
  const idle = [...byId.values()]
    .filter((n) => n.callFrame.functionName === '(idle)')
    .reduce((s, n) => s + n.self, 0);
  const busy = total - idle;
  const key = (node) =>
    `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*\/(node_modules|cluster-sdk|protocol|bench)\//, '$1/')}:${node.callFrame.lineNumber + 1}`;

  const areas = new Map();
  const selfByFn = new Map();
  for (const node of byId.values()) {
    if (node.callFrame.functionName === '(idle)') continue;
    const a = area(node.callFrame.url, node.callFrame.functionName);
    areas.set(a, (areas.get(a) ?? 0) + node.self);
    selfByFn.set(key(node), (selfByFn.get(key(node)) ?? 0) + node.self);
  }
  const pct = (ms) => `${((100 * ms) / busy).toFixed(1).padStart(5)} %`;
  console.log(`\n${file}\n  busy ${busy.toFixed(0)} ms of ${total.toFixed(0)} ms sampled`);
  console.log('  by area (self time):');
  for (const [a, ms] of [...areas].sort((x, y) => y[1] - x[1]).slice(0, 20))
    console.log(`    ${pct(ms)}  ${ms.toFixed(0).padStart(7)} ms  ${a}`);
  console.log(`  top ${flags.top} functions by self time:`);
  for (const [k, ms] of [...selfByFn].sort((x, y) => y[1] - x[1]).slice(0, Number(flags.top)))
    console.log(`    ${pct(ms)}  ${ms.toFixed(0).padStart(7)} ms  ${k}`);

  if (flags.focus) {
    const focus = new RegExp(flags.focus);
    // Inclusive time: a sample counts once for every distinct matching function on its stack.
    const inclusive = new Map();
    profile.samples.forEach((id, i) => {
      const ms = (profile.timeDeltas[i] ?? 0) / 1000;
      const seen = new Set();
      for (let at = id; at !== undefined; at = parent.get(at)) {
        const node = byId.get(at);
        const k = key(node);
        if (!seen.has(k) && focus.test(`${node.callFrame.functionName} ${node.callFrame.url}`)) {
          seen.add(k);
          inclusive.set(k, (inclusive.get(k) ?? 0) + ms);
        }
      }
    });
    console.log(`  inclusive time of functions matching /${flags.focus}/:`);
    for (const [k, ms] of [...inclusive].sort((x, y) => y[1] - x[1]).slice(0, Number(flags.top)))
      console.log(`    ${pct(ms)}  ${ms.toFixed(0).padStart(7)} ms  ${k}`);
  }
}
