import os from 'node:os';
import path from 'node:path';
import { spawnNode, type SpawnedProcess } from './processes.js';

/** The simulator's JSON answers, read loosely: tests pick the fields they check. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- untyped JSON from the admin API
export type SimJson = Record<string, any>;

export interface DiscordSimProcess {
  readonly rest: string;
  readonly gateway: string;
  readonly admin: string;
  readonly process: SpawnedProcess;
  /** GET `${admin}/state`. */
  state(): Promise<SimJson>;
  stop(): Promise<void>;
}

const CLI = path.resolve(__dirname, '..', '..', 'discord-sim', 'dist', 'cli.js');
// Discord's servers never share our CPU. On a loaded 2-core test machine the simulator would, and a
// starved simulator reads frames late, in bursts, and measures identify gaps shorter than they were
// sent. A higher priority keeps its clock honest; without root this is skipped.
const SIM_PRIORITY = -10;

/**
 * Starts `discord-sim` as its own process (as Discord is to a bot), with flags named as on its
 * command line (`{ guilds: 100, 'max-concurrency': 4 }`), and resolves with its URLs.
 */
export async function startDiscordSimProcess(
  flags: Record<string, string | number | boolean>,
  options: { prefix?: readonly string[] } = {},
): Promise<DiscordSimProcess> {
  const args = ['--port', '0'];
  for (const [flag, value] of Object.entries(flags)) {
    if (value === false) continue;
    args.push(`--${flag}`);
    if (value !== true) args.push(String(value));
  }
  // A prefix (`ip netns exec <ns>`) runs it in another network namespace; pass `host` to bind there.
  const child = spawnNode(CLI, args, { prefix: options.prefix });
  try {
    os.setPriority(child.pid, SIM_PRIORITY);
  } catch {
    // Not root: run at normal priority.
  }
  const line = await child
    .waitForLine((text) => text.startsWith('{'), 30_000)
    .catch((error: unknown) => {
      throw new Error(
        `discord-sim did not start: ${error instanceof Error ? error.message : String(error)}\n${child.stderr()}`,
      );
    });
  const urls = JSON.parse(line) as { rest: string; gateway: string; admin: string };
  return {
    ...urls,
    process: child,
    state: async () => (await fetch(`${urls.admin}/state`)).json() as Promise<SimJson>,
    stop: async () => {
      await child.stop();
    },
  };
}
