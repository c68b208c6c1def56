// discord-sim for the peer benchmarks: one simulator process per measured run (fresh identify
// windows, counters and sessions), started through discluster-testing's startDiscordSimProcess
// (raised priority, tracked, stopped by pid), plus the admin calls the benches make.
import os from 'node:os';
import { applyNice, NICE, onCleanup, testingHelpers } from '../sdk/common.mjs';

export const SIM_TOKEN = 'bench-peers-token-7c41d0';

/**
 * Starts a simulator. `flags` are its CLI flags (`{ shards, 'max-concurrency', … }`); a large
 * session-start budget is the default so repeated runs never reset the token.
 */
export async function startSim(flags) {
  const { startDiscordSimProcess } = await testingHelpers();
  const sim = await startDiscordSimProcess({
    token: SIM_TOKEN,
    'session-start-total': 1_000_000,
    ...flags,
  });
  applyNice(sim.process.pid);
  // The referee runs above the fleet it judges: at the fleet's own priority it stamped some
  // IDENTIFYs up to ~100 ms after they were written (bench/identify/README.md), which reads as a
  // rate violation Discord would not see.
  try {
    os.setPriority(sim.process.pid, NICE - 5);
  } catch {
    // Not permitted (not root): the bench's priority.
  }
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await sim.stop();
  };
  onCleanup(stop);
  return {
    ...sim,
    pid: sim.process.pid,
    stop,
    /** The REST base discord.js wants in `rest.api` (without the version). */
    api: sim.rest.replace(/\/v\d+$/, ''),
    /** An admin API call (`sim.admin` stays the admin URL). */
    call: (method, route, body) => admin(sim, method, route, body),
    gatewayBot: async () =>
      (await fetch(`${sim.rest}/gateway/bot`, { headers: { authorization: `Bot ${SIM_TOKEN}` } })).json(),
  };
}

export async function admin(sim, method, route, body) {
  const response = await fetch(`${sim.admin}${route}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!response.ok) throw new Error(`${method} ${route}: HTTP ${response.status} ${await response.text()}`);
  return response.json();
}

/** Distinct shards (of `shardCount`) with at least one live session, and how many have two or more. */
export function liveShards(state, shardCount) {
  const counts = new Map();
  for (const session of state.liveSessions)
    if (session.shard[1] === shardCount)
      counts.set(session.shard[0], (counts.get(session.shard[0]) ?? 0) + 1);
  let doubled = 0;
  for (const count of counts.values()) if (count > 1) doubled++;
  return { live: counts.size, doubled };
}

/**
 * The simulator's IDENTIFY log since `sinceMs` (epoch ms, same clock): per shard the first accepted
 * IDENTIFY, and the refused ones (inside a key's window).
 */
export async function identifyLog(sim, sinceMs) {
  const records = (await admin(sim, 'GET', '/identifies')).filter((record) => record.at >= sinceMs);
  const firstReady = new Map();
  const lastAcceptedOfKey = new Map();
  // Each refused IDENTIFY with the accepted one of its key it came too close to (the first 20).
  const refusals = [];
  let refused = 0;
  for (const record of records) {
    if (record.outcome !== 'ready') {
      refused++;
      const previous = lastAcceptedOfKey.get(record.rateLimitKey);
      if (refusals.length < 20)
        refusals.push({
          shard: record.shard[0],
          key: record.rateLimitKey,
          at: record.at - sinceMs,
          previousShard: previous?.shard[0] ?? null,
          gapMs: previous ? record.at - previous.at : null,
        });
      continue;
    }
    lastAcceptedOfKey.set(record.rateLimitKey, record);
    if (!firstReady.has(record.shard[0])) firstReady.set(record.shard[0], record.at);
  }
  const times = [...firstReady.values()].sort((a, b) => a - b);
  return {
    records: records.length,
    accepted: records.length - refused,
    refused,
    refusals,
    firstReady,
    times,
  };
}

/**
 * Polls the simulator until every shard of `shardCount` has a live session (and `also(state)`), or
 * `timeoutMs` passes. Resolves with { ok, at, state, polls }.
 */
export async function waitForLiveShards(sim, shardCount, { timeoutMs, intervalMs = 200, also, onPoll } = {}) {
  const deadline = Date.now() + timeoutMs;
  let state;
  let polls = 0;
  for (;;) {
    state = await admin(sim, 'GET', '/state');
    polls++;
    const { live } = liveShards(state, shardCount);
    // onPoll may throw (the system under test died): that ends the wait with its error.
    onPoll?.(live, state);
    if (live >= shardCount && (!also || (await also(state))))
      return { ok: true, at: Date.now(), state, polls };
    if (Date.now() > deadline) return { ok: false, at: Date.now(), state, polls, live };
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** What the simulator counted between two `GET /state`s. */
export function stateDelta(before, after) {
  return {
    identifies: after.identifies - before.identifies,
    resumes: after.resumes - before.resumes,
    identifyViolations: after.violations.identifyRate - before.violations.identifyRate,
    duplicateLiveSessions: after.violations.duplicateLiveSessions - before.violations.duplicateLiveSessions,
  };
}

/** Resolves true once traffic run `id` has been sent completely, false after `timeoutMs`. */
export async function waitTrafficDone(sim, id, timeoutMs) {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    if ((await admin(sim, 'GET', `/traffic/${id}`)).done) return true;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return false;
}

/** Nonces `<id>:<n>` (n < total) of a traffic run that are not in `received`. */
export function lostNonces(received, traffic) {
  let lost = 0;
  for (let n = 0; n < traffic.total; n++) if (!received.has(`${traffic.id}:${n}`)) lost++;
  return lost;
}
