#!/usr/bin/env node
// `npm run demo`: today it sets up the project and runs discord-sim with the demo fleet's settings,
// so the simulator can be explored by hand. The full fleet demo (nats-server, MASTER, three
// CONTROLs, the example bot under a private pm2 home) arrives with those packages.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function step(title, command, args) {
  console.log(`\n[demo] ${title}: ${[command, ...args].join(' ')}`);
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(
      `[demo] ${title} failed (exit code ${result.status ?? result.signal}). Fix the error above and run npm run demo again.`,
    );
    process.exit(1);
  }
}

if (!fs.existsSync(path.join(root, 'node_modules', '.package-lock.json')))
  step('installing npm dependencies', 'npm', ['install']);
step('building', path.join(root, 'node_modules', '.bin', 'tsc'), ['-b']);

const simArgs = [
  '--port',
  '0',
  '--guilds',
  '20000',
  '--shards',
  '32',
  '--max-concurrency',
  '4',
  '--identify-window-ms',
  '1000',
  '--log-level',
  'info',
];
console.log('\n[demo] starting discord-sim (20,000 guilds, 32 shards, max_concurrency 4)');
const sim = spawn(process.execPath, [path.join(root, 'discord-sim', 'dist', 'cli.js'), ...simArgs], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
});

let trafficTimer;
sim.stdout.setEncoding('utf8');
sim.stdout.once('data', (line) => {
  const urls = JSON.parse(line);
  console.log(`[demo] discord-sim is listening:
  REST     ${urls.rest}      (GET /gateway/bot with "Authorization: Bot discord-sim-token")
  gateway  ${urls.gateway}
  admin    ${urls.admin}/state   (counters; see discord-sim/README.md for every admin route)

[demo] steady MESSAGE_CREATE traffic: 50 events/s. Point any gateway client at the REST URL.
[demo] The fleet (MASTER, CONTROLs, example bot) is not built yet; see README "What works today".
[demo] Ctrl-C stops everything this demo started.`);
  const startTraffic = () =>
    fetch(`${urls.admin}/traffic`, {
      method: 'POST',
      body: JSON.stringify({ eventsPerSecond: 50, seconds: 60 }),
    }).catch(() => {});
  void startTraffic();
  trafficTimer = setInterval(startTraffic, 60_000);
});

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  clearInterval(trafficTimer);
  console.log('\n[demo] stopping discord-sim');
  sim.kill('SIGTERM');
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
sim.on('exit', (code, signal) => {
  clearInterval(trafficTimer);
  if (!stopping) console.error(`[demo] discord-sim exited unexpectedly (${code ?? signal})`);
  process.exit(stopping ? 0 : 1);
});
