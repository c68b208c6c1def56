import { pm2List, waitFor, type NatsServerOptions, type SpawnedProcess } from 'discluster-testing';
import { expect } from 'vitest';
import { Fleet, readyShards } from './fleet';
import { expectFleetInvariants } from './invariants';

/**
 * The two runs every NATS security mechanism gets (test/natsSecurity.*.test.ts): a whole fleet that
 * connects with the right settings and serves every shard, and one whose MASTER and CONTROL have
 * wrong settings and must say which setting is wrong, keep retrying, and plan nothing.
 */

/** `DISCLUSTER_*` variables (the NATS settings of one kind of process). */
export type Env = Readonly<Record<string, string>>;

export interface SecuredFleetSpec {
  readonly bot: string;
  readonly server: NatsServerOptions;
  /** Settings of MASTER, CONTROL and the CLI. */
  readonly good: Env;
  readonly shards?: number;
}

/** Fleet options of one host with `shards` shards (one cluster) behind a secured NATS. */
function fleetOptions(spec: SecuredFleetSpec, master: Env, control: Env) {
  return {
    bot: spec.bot,
    hosts: [{ id: 'alpha' }],
    shards: spec.shards ?? 2,
    maxConcurrency: 1,
    guilds: 20,
    leaseMs: 6000,
    hostTimeoutMs: 3000,
    nats: { server: spec.server, master, control, cli: spec.good },
  } as const;
}

/** One JSON log line of MASTER or CONTROL (pino), or null. */
export function logLine(line: string): Record<string, unknown> | null {
  if (!line.startsWith('{')) return null;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
}

const PINO_ERROR = 50;

/** The connect loop's lines (every failed attempt carries `attempt` and `settings`). */
export function connectFailures(child: SpawnedProcess): Array<{
  level: number;
  attempt: number;
  settings: string[];
  msg: string;
}> {
  return child.lines.flatMap((line) => {
    const parsed = logLine(line);
    if (!parsed || typeof parsed['attempt'] !== 'number' || !Array.isArray(parsed['settings'])) return [];
    return [
      {
        level: Number(parsed['level']),
        attempt: parsed['attempt'],
        settings: parsed['settings'].map(String),
        msg: String(parsed['msg']),
      },
    ];
  });
}

/** Starts the fleet with working settings and waits until every shard is READY. */
export async function expectFleetServes(spec: SecuredFleetSpec): Promise<Fleet> {
  const fleet = await Fleet.start(fleetOptions(spec, spec.good, spec.good));
  try {
    fleet.startMaster();
    const shards = spec.shards ?? 2;
    await waitFor(async () => readyShards(await fleet.status()).length === shards, {
      description: `every shard READY behind ${spec.bot}'s secured NATS`,
      timeoutMs: 90_000,
    });
    // The bot itself saw READY on every shard: its cluster reached NATS (identify slots, sessions)
    // with the access CONTROL handed it over pm2 IPC.
    const ready = new Set(
      fleet
        .botLines()
        .filter((line) => line['t'] === 'READY')
        .map((line) => Number(line['shardId'])),
    );
    expect([...ready].sort()).toEqual([...Array(shards).keys()]);
    const state = await fleet.state();
    expectFleetInvariants(state);
    // That access came over pm2 IPC, as contents: the clusters' pm2 records (`pm2 jlist`: env,
    // args) carry no NATS setting, neither a secret nor a file path.
    const { processes, raw } = await pm2List(fleet.host('alpha').home);
    expect(processes.length).toBeGreaterThan(0);
    for (const [key, value] of Object.entries(spec.good))
      if (!key.endsWith('_USER')) expect(raw, key).not.toContain(value);
    expect(raw).not.toMatch(/DISCLUSTER_NATS_/);
    return fleet;
  } catch (error) {
    const diagnostics = fleet.diagnostics();
    await fleet.stop();
    throw new Error(`${String(error)}\n${diagnostics}\n--- nats-server\n${fleet.nats.log().slice(-4000)}`);
  }
}

export interface RefusedSpec extends SecuredFleetSpec {
  /** Wrong settings for MASTER and CONTROL. */
  readonly bad: Env;
  /** The settings the error must name, e.g. `['nats_user', 'nats_pass']`. */
  readonly names: readonly string[];
  /** Evidence in nats-server's log that it refused the attempts. */
  readonly serverRefusal?: RegExp;
}

/**
 * Starts MASTER and CONTROL with wrong settings: each logs an error naming the setting, keeps
 * retrying (still running after several attempts), and nothing is planned or started.
 */
export async function expectRefusedAndRetrying(spec: RefusedSpec): Promise<Fleet> {
  const fleet = await Fleet.start(fleetOptions(spec, spec.bad, spec.bad));
  try {
    const master = fleet.startMaster();
    const control = fleet.host('alpha').control;
    const exited = new Set<SpawnedProcess>();
    for (const child of [master, control]) void child.exited.then(() => exited.add(child));
    for (const [name, child] of [
      ['MASTER', master],
      ['CONTROL', control],
    ] as const) {
      await waitFor(
        () => exited.has(child) || connectFailures(child).some((failure) => failure.attempt >= 3),
        {
          description: `${name} retried its NATS connection (attempt 3)`,
          timeoutMs: 60_000,
        },
      );
      expect(exited.has(child), `${name} exited instead of retrying`).toBe(false);
      const failures = connectFailures(child);
      // Logged as an error naming the setting, not a crash: the process is still running.
      const first = failures[0]!;
      expect(first.level).toBe(PINO_ERROR);
      expect(first.settings).toEqual(expect.arrayContaining([...spec.names]));
      for (const setting of spec.names) expect(first.msg).toContain(setting);
      expect(failures.every((failure) => failure.settings.join() === first.settings.join())).toBe(true);
    }
    // Nothing was planned and nothing started: no MASTER is up, no host announced, no plan stored,
    // no IDENTIFY reached the simulator.
    const status = await fleet.status();
    expect(status.master.up).toBe(false);
    expect(status.hosts).toEqual([]);
    expect(status.epoch).toBeNull();
    const state = await fleet.state();
    expect(state['identifies']).toBe(0);
    expect(state['liveSessions']).toEqual([]);
    expectFleetInvariants(state);
    if (spec.serverRefusal) expect(fleet.nats.log()).toMatch(spec.serverRefusal);
    return fleet;
  } catch (error) {
    const diagnostics = fleet.diagnostics();
    await fleet.stop();
    throw new Error(`${String(error)}\n${diagnostics}\n--- nats-server\n${fleet.nats.log().slice(-4000)}`);
  }
}
