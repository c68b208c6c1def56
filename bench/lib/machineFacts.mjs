// Machine and software facts recorded with every bench result, and the one-line summary each report
// opens with, so every report names the machine the same way. No side effects on import: the
// reports load it too.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { round } from './figures.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function packageVersion(name) {
  for (const dir of [
    path.join(root, 'node_modules', name),
    path.join(root, 'cluster-sdk', 'node_modules', name),
  ]) {
    try {
      return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
    } catch {
      // try the next
    }
  }
  return null;
}

function workspaceVersion(dir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, dir, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

function natsServerVersion() {
  for (const bin of [process.env.NATS_SERVER_BIN, '/usr/sbin/nats-server', '/usr/bin/nats-server']) {
    if (!bin) continue;
    const out = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    if (out.status === 0) return out.stdout.trim();
  }
  return null;
}

/**
 * Machine and software facts: CPU, memory, OS, load average, Node, the nice the bench runs at, the
 * versions of Discluster's packages, its dependencies and the peers measured beside it, and which
 * SDK build ran. `nice`: the priority the bench's processes run at.
 */
export function machineFacts(nice) {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  return {
    date: new Date().toISOString(),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: round(os.totalmem() / 1024 ** 3, 1),
    os: `${os.type()} ${os.release()}`,
    loadAverageAtStart: os.loadavg().map((v) => round(v, 2)),
    node: process.version,
    nice,
    packages: {
      'discluster-sdk': workspaceVersion('cluster-sdk'),
      'discluster-protocol': workspaceVersion('protocol'),
      'discluster-master': workspaceVersion('pm2-module-master'),
      'discluster-control': workspaceVersion('pm2-module-control'),
      'discord-sim': workspaceVersion('discord-sim'),
      '@discordjs/ws': packageVersion('@discordjs/ws'),
      '@nats-io/transport-node': packageVersion('@nats-io/transport-node'),
      '@nats-io/kv': packageVersion('@nats-io/kv'),
      ws: packageVersion('ws'),
      pako: packageVersion('pako'),
      'zlib-sync': packageVersion('zlib-sync'),
      zod: packageVersion('zod'),
      'nats-server': natsServerVersion(),
      // The peers of bench/peers.
      'discord.js': packageVersion('discord.js'),
      'discord-hybrid-sharding': packageVersion('discord-hybrid-sharding'),
      pm2: packageVersion('pm2'),
    },
    // Which SDK code ran: a hash of every built file (the SDK may be rebuilt by others meanwhile).
    sdkBuild: sdkBuildFingerprint(),
  };
}

/** "CPU, N cores, M GiB, OS, Node v…": how every report names the machine. */
export function machineSummary(machine) {
  return `${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}, Node ${machine.node}`;
}

/**
 * A fingerprint of the built SDK (cluster-sdk/dist/**\/*.js and protocol/dist/**\/*.js): one combined hash
 * and one per file, with each file's mtime, so a result says which build ran and a rebuild during a
 * run shows.
 */
export function sdkBuildFingerprint() {
  const files = {};
  const walk = (dir) => {
    let entries = [];
    try {
      entries = fs.readdirSync(path.join(root, dir), { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith('.js')) {
        const file = path.join(root, rel);
        files[rel] = {
          sha256: createHash('sha256').update(fs.readFileSync(file)).digest('hex').slice(0, 12),
          mtime: fs.statSync(file).mtime.toISOString(),
        };
      }
    }
  };
  walk(path.join('cluster-sdk', 'dist'));
  walk(path.join('protocol', 'dist'));
  const combined = createHash('sha256');
  for (const rel of Object.keys(files).sort()) combined.update(`${rel}:${files[rel].sha256}\n`);
  return { combined: combined.digest('hex').slice(0, 12), files };
}

/** Files whose hash differs between two fingerprints (added or removed files included). */
export function changedFiles(before, after) {
  if (!before?.files || !after?.files) return [];
  const names = new Set([...Object.keys(before.files), ...Object.keys(after.files)]);
  return [...names].filter((name) => before.files[name]?.sha256 !== after.files[name]?.sha256).sort();
}
