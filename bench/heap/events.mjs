// CPU per MESSAGE_CREATE of one bot process, in each MODE of bench/heap/bot.cjs (issue 16: where
// the discord.js bot on a cluster spends more than a plain discord.js Client): starts nats-server
// and discord-sim (4 shards, GUILDS guilds), then each mode in turn; once its caches are full,
// RATE events/s for SECONDS, and the process's CPU seconds (from /proc) divided by the events its
// bot code received. ROUNDS alternate the modes. PROFILE=1 adds --cpu-prof (a .cpuprofile per
// process in OUT; `node bench/sdk/profile-summary.mjs <file>` sums it by function). A mode may
// name Node options after `@` (space-separated), to pair the same bot with and without them:
//   MODES=plain,discluster RATE=1000 SECONDS=15 ROUNDS=3 node bench/heap/events.mjs
//   MODES='discluster,discluster@--max-semi-space-size=4' node bench/heap/events.mjs
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startWorld } from './world.mjs';
import { cpuSeconds } from '../lib/cpu.mjs';

const TOKEN = 'events-bench-token';
const GUILDS = Number(process.env.GUILDS ?? 1000);
const RATE = Number(process.env.RATE ?? 1000);
const SECONDS = Number(process.env.SECONDS ?? 15);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const MODES = (process.env.MODES ?? 'plain,discluster').split(',');
const out = process.env.OUT ?? fs.mkdtempSync(path.join(os.tmpdir(), 'discluster-events-'));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const world = await startWorld(TOKEN, GUILDS);
const results = Object.fromEntries(MODES.map((mode) => [mode, []]));
try {
  for (let round = 1; round <= ROUNDS; round++) {
    for (const mode of MODES) {
      const usPerEvent = await measure(mode, round);
      results[mode].push(usPerEvent);
      console.log(`round ${round} ${mode}: ${usPerEvent} µs CPU per event`);
    }
  }
  for (const mode of MODES) {
    const sorted = [...results[mode]].sort((a, b) => a - b);
    console.log(
      `${mode}: median ${sorted[Math.floor(sorted.length / 2)]} µs per event (${results[mode].join(' / ')})`,
    );
  }
  if (process.env.PROFILE === '1') console.log(`profiles in ${out}`);
} finally {
  await world.stop();
}

async function measure(mode, round) {
  const profile =
    process.env.PROFILE === '1'
      ? [
          '--cpu-prof',
          `--cpu-prof-dir=${out}`,
          `--cpu-prof-name=${mode.replace(/[^\w-]/g, '_')}-${round}.cpuprofile`,
        ]
      : [];
  const [botMode, nodeOptions = ''] = mode.split('@');
  const nodeArgs = nodeOptions.split(' ').filter(Boolean);
  const child = world.spawnBot(botMode, { COUNT_EVENTS: '1' }, [...nodeArgs, ...profile]);
  let ready = false;
  let events = 0;
  let buffered = '';
  child.stdout.on('data', (chunk) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop();
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      const message = JSON.parse(line);
      if (message.ready) ready = true;
      if (typeof message.events === 'number') events = message.events;
    }
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  try {
    while (!ready) {
      if (child.exitCode !== null)
        throw new Error(`${mode} bot exited (${child.exitCode}) before its caches were full`);
      await sleep(200);
    }
    await sleep(2000);
    const before = { cpu: cpuSeconds(child.pid), events };
    const response = await fetch(`${world.sim.admin}/traffic`, {
      method: 'POST',
      body: JSON.stringify({ eventsPerSecond: RATE, seconds: SECONDS }),
    });
    const { total } = await response.json();
    let last = -1;
    let lastChange = Date.now();
    while (events - before.events < total && Date.now() - lastChange < 5000) {
      if (events !== last) [last, lastChange] = [events, Date.now()];
      await sleep(250);
    }
    const received = events - before.events;
    if (received < total) console.log(`  ${mode}: only ${received} of ${total} events arrived`);
    return Math.round(((cpuSeconds(child.pid) - before.cpu) * 1e6) / Math.max(1, received));
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}
