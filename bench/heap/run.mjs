// Where a cluster process's memory goes, against a plain discord.js Client (issue 16): starts
// nats-server and discord-sim (4 shards, GUILDS guilds, default 1,000), then each MODE of
// bench/heap/bot.cjs in turn, prints its memory (RSS, V8 spaces, RSS by mapping) after IDLE_MS
// idle (default 5000; 40000 lets V8's memory reducer give back the young generation) and writes
// a heap snapshot per mode to OUT (default a temporary directory). Compare two snapshots with
// `node bench/heap/summarize.mjs <a> <b>`.
//   GUILDS=1000 IDLE_MS=40000 MODES=plain,discluster node bench/heap/run.mjs
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startWorld } from './world.mjs';

const TOKEN = 'heap-bench-token';
const GUILDS = Number(process.env.GUILDS ?? 1000);
const out = process.env.OUT ?? fs.mkdtempSync(path.join(os.tmpdir(), 'discluster-heap-'));
const world = await startWorld(TOKEN, GUILDS);
try {
  for (const mode of (process.env.MODES ?? 'plain,discluster,bare').split(',')) {
    const child = world.spawnBot(mode, { SNAP: path.join(out, `${mode}.heapsnapshot`) });
    let text = '';
    child.stdout.on('data', (chunk) => {
      text += chunk;
      process.stdout.write(chunk);
      if (text.includes('done')) child.kill('SIGTERM');
    });
    await new Promise((resolve) => child.on('exit', resolve));
  }
  console.log(`heap snapshots in ${out}`);
} finally {
  await world.stop();
}
