import {
  DisclusterError,
  ErrorCode,
  FleetStatusSchema,
  ReshardProgressSchema,
  ResplitProgressSchema,
  WhichResultSchema,
  type ReshardProgress,
  isDisclusterError,
  type FleetStatus,
  type WhichResult,
} from 'discluster-protocol';
import { locateGuild } from '../guildLocation.js';
import { USAGE, UsageError, parseCli, type CliOptions } from './args.js';
import { FleetClient } from './fleetClient.js';
import { followProgress } from './followProgress.js';
import { renderReshard, renderResplit, renderStatus, renderWhich } from './render.js';

interface Output {
  out(text: string): void;
  err(text: string): void;
}

const stdio: Output = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

/** Runs one CLI invocation; resolves with the exit code (0 done, 1 failed, 2 usage, 3 no MASTER). */
export async function runCli(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: Output = stdio,
): Promise<number> {
  let options: CliOptions;
  try {
    options = parseCli(argv, env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`discluster: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (options.command.name === 'help') {
    io.out(USAGE);
    return 0;
  }
  let client: FleetClient;
  try {
    client = await FleetClient.connect(options.nats, options.bot);
  } catch (error) {
    return fail(io, options, error);
  }
  try {
    return await run(client, options, io);
  } catch (error) {
    return fail(io, options, error);
  } finally {
    await client.close().catch(() => undefined);
  }
}

function fail(io: Output, options: CliOptions, error: unknown): number {
  const code = isDisclusterError(error) ? error.code : ErrorCode.HostCommandFailed;
  const message = error instanceof Error ? error.message : String(error);
  if (options.json) io.out(JSON.stringify({ ok: false, error: { code, message } }));
  else io.err(`discluster: ${message} [${code}]`);
  return code === ErrorCode.MasterUnreachable ? 3 : 1;
}

async function run(client: FleetClient, options: CliOptions, io: Output): Promise<number> {
  const { command, json, timeoutMs } = options;
  const print = (value: unknown, text: string) => io.out(json ? JSON.stringify(value, null, 2) : text);
  switch (command.name) {
    case 'status': {
      let status: FleetStatus;
      try {
        status = FleetStatusSchema.parse(await client.askMaster({ v: 1, type: 'status' }, timeoutMs));
      } catch (error) {
        if (!isDisclusterError(error, ErrorCode.MasterUnreachable)) throw error;
        status = await client.statusFromControls(1_500);
      }
      print(status, renderStatus(status));
      return 0;
    }
    case 'which': {
      let result: WhichResult;
      try {
        result = WhichResultSchema.parse(
          await client.askMaster({ v: 1, type: 'which', guildId: command.guildId }, timeoutMs),
        );
      } catch (error) {
        if (!isDisclusterError(error, ErrorCode.MasterUnreachable)) throw error;
        result = await whichFromStoredPlan(client, command.guildId);
      }
      print(result, renderWhich(result));
      return 0;
    }
    case 'rebalance': {
      const result = (await client.askMaster({ v: 1, type: 'rebalance' }, Math.max(timeoutMs, 120_000))) as {
        moved: number;
        epoch: number;
      };
      print(
        result,
        result.moved === 0
          ? 'already balanced: no shard moved'
          : `moved ${result.moved} shard(s), each resuming its session (epoch ${result.epoch})`,
      );
      return 0;
    }
    case 'restart': {
      if (!json)
        io.err(
          command.rolling
            ? 'rolling restart: one cluster at a time, each resuming its sessions; this takes a while…'
            : 'restarting the fleet…',
        );
      const result = await client.askMaster(
        { v: 1, type: 'restart', rolling: command.rolling },
        command.rolling ? 24 * 3_600_000 : Math.max(timeoutMs, 120_000),
      );
      const skipped = (result as { skipped?: string[] } | null)?.skipped ?? [];
      print(
        result,
        !command.rolling
          ? 'fleet restarted'
          : skipped.length > 0
            ? `rolling restart finished, except on lost host(s) ${skipped.join(', ')}: their clusters were not restarted (run it again once they are back)`
            : 'rolling restart finished',
      );
      return 0;
    }
    case 'stop': {
      const result = await client.askMaster({ v: 1, type: 'stop' }, Math.max(timeoutMs, 60_000));
      print(result, 'fleet stopped: nothing restarts until `discluster restart`');
      return 0;
    }
    case 'drain':
    case 'undrain': {
      const result = (await client.askMaster(
        { v: 1, type: command.name, hostId: command.hostId },
        Math.max(timeoutMs, 120_000),
      )) as { hostId: string; moved: number; epoch: number };
      print(
        result,
        command.name === 'drain'
          ? `host ${result.hostId} drained: ${result.moved} shard(s) moved off it, each resuming its session (epoch ${result.epoch}); it stays empty until \`discluster undrain ${result.hostId}\``
          : `host ${result.hostId} undrained: ${result.moved} shard(s) moved by the rebalance, each resuming its session (epoch ${result.epoch})`,
      );
      return 0;
    }
    case 'resplit': {
      const started = ResplitProgressSchema.parse(
        await client.askMaster(
          { v: 1, type: 'resplit', shardsPerCluster: command.shardsPerCluster },
          Math.max(timeoutMs, 120_000),
        ),
      );
      const finishedAtOnce =
        started.clustersDone === started.clustersTotal && started.waitingFor.length === 0;
      if (!command.wait || finishedAtOnce) {
        print(
          started,
          finishedAtOnce
            ? `every cluster already holds ${started.shardsPerCluster} shards: nothing to re-split`
            : `${renderResplit(started)}\nclusters are replaced one group per host at a time; follow with \`discluster status\``,
        );
        return 0;
      }
      if (!json) io.err(renderResplit(started));
      const finished = await followProgress(client, {
        first: renderResplit(started),
        intervalMs: 1_000,
        timeoutMs,
        lineOf: (now) => (now.resplit?.id === started.id ? renderResplit(now.resplit) : null),
        report: (line) => {
          if (!json) io.err(line);
        },
      });
      print(
        finished,
        `re-split finished: clusters of ${finished.shardsPerCluster ?? command.shardsPerCluster} shards serve (epoch ${finished.epoch ?? '?'})`,
      );
      return 0;
    }
    case 'reshard': {
      const started = ReshardProgressSchema.parse(
        await client.askMaster(
          { v: 1, type: 'reshard', ...(command.shards !== null ? { shards: command.shards } : {}) },
          Math.max(timeoutMs, 120_000),
        ),
      );
      if (!command.wait) {
        print(
          started,
          `${renderReshard(started)}\nthe old generation serves until every new shard is ready; follow with \`discluster status\``,
        );
        return 0;
      }
      if (!json) io.err(renderReshard(started));
      const finished = await followReshard(client, started, timeoutMs, (line) => {
        if (!json) io.err(line);
      });
      print(finished, `resharded: ${finished.shardCount} shards serve (epoch ${finished.epoch})`);
      return 0;
    }
  }
  return 0;
}

async function whichFromStoredPlan(client: FleetClient, guildId: string): Promise<WhichResult> {
  const plan = await client.storedPlan();
  if (!plan) throw new DisclusterError(ErrorCode.NoPlan, 'no MASTER answered and no plan is stored yet');
  return locateGuild(plan, guildId);
}

/** Follows the reshard `started` until it ended; a rollback is an error. */
async function followReshard(
  client: FleetClient,
  started: ReshardProgress,
  timeoutMs: number,
  report: (line: string) => void,
): Promise<FleetStatus> {
  const status = await followProgress(client, {
    first: renderReshard(started),
    intervalMs: 2_000,
    timeoutMs,
    report,
    lineOf: (now) => (now.reshard?.id === started.id ? renderReshard(now.reshard) : null),
  });
  if (status.shardCount === started.to) return status;
  throw new DisclusterError(
    ErrorCode.ReshardRefused,
    `the reshard to ${started.to} shards was rolled back; ${status.shardCount ?? '?'} shards serve (see MASTER's log)`,
  );
}
