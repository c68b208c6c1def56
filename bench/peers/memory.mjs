#!/usr/bin/env node
// Section 4 of `npm run bench`: memory. One process serving S shards at 2,000 guilds per shard,
// after READY and every GUILD_CREATE, idle: resident set size (VmRSS of /proc/<pid>/status,
// sampled once a second for a while; the median of the samples) per shard, for
//   - bare: a bare `@discordjs/ws` WebSocketManager (bench/sdk/dispatch-client.mjs "bare": in-memory
//     sessions, a local throttler, a dispatch listener that counts; no cache);
//   - discluster: a cluster process of a real fleet (MASTER, CONTROL, pm2) running
//     bench/peers/fleet-bot.cjs, whose RSS includes what runs in it under pm2 (pm2's wrapper,
//     @pm2/io metrics, the NATS connection, IPC, the session store);
//   - hybrid: a discord-hybrid-sharding cluster process (a discord.js Client with its default
//     caches, as that peer's users run it);
//   - sdk-standalone: discluster-sdk's `Cluster` in standalone mode (bench/sdk/dispatch-client.mjs
//     "cluster": NATS session store, NATS identify throttler, IPC) without pm2 and CONTROL, to show
//     which part of the fleet process's extra memory is the SDK and which is the pm2 wrapper.
// Rounds alternate bare, discluster, hybrid; every round starts a fresh simulator (same seed, same
// guilds).
//
//   node bench/peers/memory.mjs [--quick] [--out DIR] [--reps N] [--shards N]
import { applyNice, testingHelpers } from '../sdk/common.mjs';
import { memoryMiB } from '../lib/cpu.mjs';
import { median, round } from '../lib/figures.mjs';
import { log, sleep } from '../lib/log.mjs';
import { startDispatchClient } from '../lib/clients.mjs';
import { DEFAULT_INTENTS, PEERS } from '../lib/peers.mjs';
import { startProbeServer } from '../lib/probe.mjs';
import { runSection } from '../lib/section.mjs';
import { startSim, waitForLiveShards } from '../lib/sim.mjs';
import { startSystem } from '../lib/systems.mjs';

const GUILDS_PER_SHARD = 2000;

async function sampleRss(pid, seconds) {
  const rss = [];
  let hwm = null;
  for (let i = 0; i < seconds; i++) {
    const memory = memoryMiB(pid);
    if (memory) {
      rss.push(memory.rssMiB);
      hwm = memory.hwmMiB;
    }
    await sleep(1000);
  }
  return { rssMiB: median(rss), samples: rss, hwmMiB: hwm };
}

async function until(what, timeoutMs, check) {
  for (const deadline = Date.now() + timeoutMs; ;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms`);
    await sleep(500);
  }
}

async function runOnce(variant, cfg, rep) {
  const { shards } = cfg;
  const guilds = shards * GUILDS_PER_SHARD;
  const result = { variant, rep, shards, guilds };
  const sim = await startSim({ guilds, shards, 'max-concurrency': shards, 'identify-window-ms': 500 });
  const probe = await startProbeServer();
  let stop = async () => {};
  try {
    let pid;
    let received;
    if (variant === 'bare' || variant === 'sdk-standalone') {
      let nats = null;
      if (variant === 'sdk-standalone') {
        nats = await (await testingHelpers()).startNatsServer({ jetstream: true });
        applyNice(nats.pid);
      }
      stop = async () => nats?.stop();
      const client = await startDispatchClient(variant === 'bare' ? 'bare' : 'cluster', {
        gateway: await sim.gatewayBot(),
        natsUrl: nats?.url,
        bot: `mem${process.pid}r${rep}`,
        shards,
        intents: DEFAULT_INTENTS,
        identifyWindowMs: 500,
      });
      stop = async () => {
        await client.stop();
        await nats?.stop();
      };
      received = client.guildsReceived;
      pid = client.pid;
    } else {
      const system =
        variant === 'discluster'
          ? await startSystem(
              { system: 'discluster', shards, identifyWindowMs: 500, hosts: [{ id: 'alpha', cores: 2 }] },
              sim,
              probe,
            )
          : await startSystem(
              {
                system: 'peer',
                peer: {
                  ...PEERS.hybridTuned(shards, shards, 5000),
                  options: { totalShards: shards, shardsPerClusters: shards },
                },
              },
              sim,
              probe,
            );
      stop = () => system.stop();
      await waitForLiveShards(sim, shards, { timeoutMs: 300_000, onPoll: () => system.check() });
      const [bot] = await probe.waitUntil((bots) => bots.length >= 1 && bots, 120_000, 'the bot process');
      received = await until('every GUILD_CREATE', 300_000, async () => {
        const stats = await probe.request(bot, 'stats');
        return stats.guilds >= guilds && stats.guilds;
      });
      pid = bot.hello.pid;
      result.processes = system.pids().length;
    }
    result.guildsReceived = received;
    const loadedAt = Date.now();
    await sleep(cfg.settleMs);
    Object.assign(result, await sampleRss(pid, cfg.sampleSeconds));
    result.rssMiBPerShard = round(result.rssMiB / shards, 2);
    log(
      `  ${variant} r${rep}: ${result.rssMiB} MiB for ${shards} shards / ${received} guilds = ${result.rssMiBPerShard} MiB per shard (peak ${result.hwmMiB})`,
    );
    if (cfg.steadyAfterMs) {
      // Again once V8's memory reducer has given back the young generation grown while the guilds
      // loaded (it waits for the process to be idle): what a long-running process pays.
      await sleep(Math.max(0, loadedAt + cfg.steadyAfterMs - Date.now()));
      const steady = await sampleRss(pid, cfg.sampleSeconds);
      result.steady = {
        afterMs: cfg.steadyAfterMs,
        rssMiB: steady.rssMiB,
        rssMiBPerShard: round(steady.rssMiB / shards, 2),
      };
      log(
        `  ${variant} r${rep}: steady (${round(cfg.steadyAfterMs / 1000)} s after loading) ${steady.rssMiB} MiB = ${result.steady.rssMiBPerShard} MiB per shard`,
      );
    }
    result.ok = true;
  } catch (error) {
    result.ok = false;
    result.error = error?.message ?? String(error);
    log(`  ${variant} r${rep}: FAILED: ${result.error}`);
  } finally {
    await stop();
    await probe.close();
    await sim.stop();
  }
  return result;
}

runSection(
  'memory',
  { reps: { type: 'string' }, shards: { type: 'string' } },
  async ({ quick, flags, record }) => {
    const cfg = {
      shards: Number(flags.shards ?? (quick ? 4 : 16)),
      reps: Number(flags.reps ?? (quick ? 1 : 3)),
      // A second, smaller size (one round) separates what every process costs from what a shard costs.
      smallShards: quick ? null : 4,
      // A larger one (one round): clusters of 2 × max_concurrency (`discluster resplit`) share the
      // fixed cost of a process over twice the shards.
      largeShards: quick ? null : 32,
      settleMs: quick ? 2000 : 10_000,
      sampleSeconds: quick ? 3 : 10,
      // Only the main size: the small and large rounds keep the 10 s figure.
      steadyAfterMs: quick ? null : 60_000,
      guildsPerShard: GUILDS_PER_SHARD,
    };
    record.config = cfg;
    record.runs = [];
    const variants = ['bare', 'discluster', 'hybrid', 'sdk-standalone'];
    for (let rep = 1; rep <= cfg.reps; rep++)
      for (const variant of variants) {
        log(`memory: ${variant}, ${cfg.shards} shards, round ${rep}`);
        record.runs.push(await runOnce(variant, cfg, rep));
      }
    record.small = [];
    if (cfg.smallShards) {
      for (const variant of variants) {
        log(`memory: ${variant}, ${cfg.smallShards} shards`);
        record.small.push(
          await runOnce(variant, { ...cfg, shards: cfg.smallShards, steadyAfterMs: null }, 1),
        );
      }
      // Per-shard cost between the two sizes: (RSS at S − RSS at s) / (S − s), per variant.
      record.marginal = Object.fromEntries(
        variants.map((variant) => {
          const big = median(record.runs.filter((r) => r.variant === variant && r.ok).map((r) => r.rssMiB));
          const small = record.small.find((r) => r.variant === variant && r.ok)?.rssMiB;
          return [
            variant,
            big !== null && small !== undefined
              ? {
                  rssMiBAtSmall: small,
                  rssMiBAtLarge: big,
                  mibPerShard: round((big - small) / (cfg.shards - cfg.smallShards), 2),
                  fixedMiB: round(
                    small - ((big - small) / (cfg.shards - cfg.smallShards)) * cfg.smallShards,
                    1,
                  ),
                }
              : null,
          ];
        }),
      );
    }
    record.large = [];
    if (cfg.largeShards) {
      for (const variant of ['bare', 'discluster', 'hybrid']) {
        log(`memory: ${variant}, ${cfg.largeShards} shards`);
        record.large.push(
          await runOnce(variant, { ...cfg, shards: cfg.largeShards, steadyAfterMs: null }, 1),
        );
      }
    }
    const perShard = (variant) =>
      record.runs.filter((r) => r.variant === variant && r.ok).map((r) => r.rssMiBPerShard);
    const bare = median(perShard('bare'));
    record.summary = Object.fromEntries(
      variants.map((variant) => {
        const runs = perShard(variant);
        // Ratio per round (adjacent runs), then their median, as bench/sdk does.
        const ratios = record.runs
          .filter((r) => r.variant === variant && r.ok)
          .map((r) => {
            const b = record.runs.find((x) => x.variant === 'bare' && x.rep === r.rep && x.ok);
            return b ? round(r.rssMiBPerShard / b.rssMiBPerShard, 3) : null;
          });
        const steadyRuns = record.runs
          .filter((r) => r.variant === variant && r.ok && r.steady)
          .map((r) => r.steady.rssMiBPerShard);
        const steadyRatios = record.runs
          .filter((r) => r.variant === variant && r.ok && r.steady)
          .map((r) => {
            const b = record.runs.find((x) => x.variant === 'bare' && x.rep === r.rep && x.ok && x.steady);
            return b ? round(r.steady.rssMiBPerShard / b.steady.rssMiBPerShard, 3) : null;
          });
        return [
          variant,
          {
            steady:
              steadyRuns.length > 0
                ? {
                    rssMiBPerShard: { median: median(steadyRuns), runs: steadyRuns },
                    ratioToBare: { median: round(median(steadyRatios), 3), runs: steadyRatios },
                  }
                : null,
            rssMiBPerShard: { median: median(runs), runs },
            ratioToBare: {
              median: round(median(ratios), 3),
              runs: ratios,
              ofMedians: bare ? round(median(runs) / bare, 3) : null,
            },
          },
        ];
      }),
    );
  },
);
