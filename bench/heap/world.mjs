// What bench/heap/run.mjs and events.mjs start: nats-server and discord-sim (4 shards, `guilds`
// guilds), and how a bench/heap/bot.cjs process of a MODE is started against them.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDiscordSimProcess, startNatsServer } from 'discluster-testing';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

export async function startWorld(token, guilds) {
  const nats = await startNatsServer({ jetstream: true });
  const sim = await startDiscordSimProcess({
    token,
    guilds,
    shards: 4,
    'max-concurrency': 4,
    'identify-window-ms': 200,
  });
  try {
    const gateway = await (
      await fetch(`${sim.rest}/gateway/bot`, { headers: { authorization: `Bot ${token}` } })
    ).json();
    return {
      sim,
      /** A bot.cjs process of `mode`; `env` and `nodeArgs` are added. Its stdout is piped. */
      spawnBot(mode, env = {}, nodeArgs = []) {
        return spawn(process.execPath, [...nodeArgs, path.join(here, 'bot.cjs')], {
          cwd: root,
          env: {
            ...process.env,
            MODE: mode,
            TOKEN: token,
            GUILDS: String(guilds),
            SIM_REST: sim.rest,
            SIM_API: sim.rest.replace(/\/v\d+$/, ''),
            GATEWAY_JSON: JSON.stringify(gateway),
            NATS_URL: nats.url,
            ...env,
          },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
      },
      async stop() {
        await sim.stop();
        await nats.stop();
      },
    };
  } catch (error) {
    await sim.stop();
    await nats.stop();
    throw error;
  }
}
