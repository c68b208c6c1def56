// How the demo reads its fleet's progress: a one-line summary of `discluster status --json`, the
// ready count, and which of the demo home's apps pm2 keeps restarting, with their log tails.
import fs from 'node:fs';
import path from 'node:path';
import { HOSTS, SHARDS, pm2, shown } from './fleet.mjs';

export function summary(status) {
  if (!status) return 'waiting for MASTER and the CONTROLs to answer';
  const shardsOf = (host) => host.clusters.flatMap((cluster) => cluster.shards);
  const ready = status.hosts.flatMap(shardsOf).filter((shard) => shard.state === 'ready').length;
  const hosts = status.hosts
    .map((host) => {
      const shards = shardsOf(host);
      if (shards.length === 0) return `${host.id} ${host.role === 'standby' ? 'standby' : host.state}`;
      return `${host.id} ${shards.filter((shard) => shard.state === 'ready').length}/${shards.length}`;
    })
    .join(' · ');
  const planned = status.hosts.flatMap(shardsOf).length;
  if (planned === 0) return `${status.hosts.length}/${HOSTS.length} machines announced, waiting for the plan`;
  return `${ready}/${status.shardCount ?? SHARDS} shards ready · ${hosts}`;
}

export const readyCount = (status) =>
  status?.hosts
    .flatMap((host) => host.clusters.flatMap((cluster) => cluster.shards))
    .filter((shard) => shard.state === 'ready').length ?? 0;

/** The last lines of an app's pm2 logs in `home`, for a failure message. */
export function logTail(home, name, lines = 15) {
  const parts = [];
  for (const kind of ['out', 'error']) {
    const file = path.join(home, 'logs', `${name}-${kind}.log`);
    if (!fs.existsSync(file)) continue;
    const text = fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    if (text) parts.push(`--- ${shown(file)}\n${text}`);
  }
  return parts.join('\n');
}

/** Apps of the demo home pm2 keeps restarting (or gave up on), with their log tails. */
export async function crashingAppsOf(home) {
  const listed = await pm2(home, ['jlist'], { timeoutMs: 20_000 });
  let apps = [];
  try {
    apps = JSON.parse(listed.stdout.slice(listed.stdout.indexOf('[')));
  } catch {
    return [];
  }
  return apps.filter((app) => app.pm2_env?.status === 'errored' || (app.pm2_env?.restart_time ?? 0) >= 3);
}
