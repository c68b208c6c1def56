// Self sizes of a V8 heap snapshot by kind (strings, code, closures, shapes, objects by
// constructor), MiB; with two snapshots, the first minus the second, largest first. Strings are
// split further by size and by whether they look like source text or JSON.
//   node bench/heap/summarize.mjs discluster.heapsnapshot plain.heapsnapshot
import fs from 'node:fs';

function load(file) {
  const snap = JSON.parse(fs.readFileSync(file, 'utf8'));
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [type, name, size] = ['type', 'name', 'self_size'].map((field) => fields.indexOf(field));
  const by = new Map();
  const add = (key, bytes) => {
    const entry = by.get(key) ?? { bytes: 0, count: 0 };
    entry.bytes += bytes;
    entry.count++;
    by.set(key, entry);
  };
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    const kind = types[snap.nodes[i + type]];
    const text = snap.strings[snap.nodes[i + name]];
    const bytes = snap.nodes[i + size];
    if (kind.includes('string')) {
      const bucket = bytes < 64 ? '<64 B' : bytes < 1024 ? '<1 KiB' : bytes < 10240 ? '<10 KiB' : '≥10 KiB';
      const looks =
        /^('use strict'|"use strict"|\(function|\/\*|\/\/|var |const |import |Object\.defineProperty)/.test(
          text,
        )
          ? 'source'
          : text.startsWith('{"') || /^[a-z_]+":/.test(text)
            ? 'JSON'
            : 'other';
      add(`(string ${bucket}, ${looks})`, bytes);
    } else if (['code', 'closure', 'number', 'object shape', 'hidden', 'array'].includes(kind))
      add(`(${kind})`, bytes);
    else add(`${kind} ${text.slice(0, 40)}`, bytes);
  }
  return by;
}

const [first, second] = process.argv.slice(2);
if (!first) throw new Error('usage: node bench/heap/summarize.mjs <snapshot> [<snapshot to subtract>]');
const a = load(first);
const b = second ? load(second) : new Map();
const mib = (bytes) => (bytes / 1048576).toFixed(2);
const total = (map) => [...map.values()].reduce((sum, entry) => sum + entry.bytes, 0);
console.log(second ? `total ${mib(total(a))} − ${mib(total(b))} MiB` : `total ${mib(total(a))} MiB`);
const rows = [...new Set([...a.keys(), ...b.keys()])].map((key) => ({
  key,
  bytes: (a.get(key)?.bytes ?? 0) - (b.get(key)?.bytes ?? 0),
  count: a.get(key)?.count ?? 0,
}));
for (const row of rows.sort((x, y) => y.bytes - x.bytes).slice(0, 30))
  console.log(`${mib(row.bytes).padStart(8)} ${String(row.count).padStart(8)}  ${row.key}`);
