'use strict';
// How every load client counts MESSAGE_CREATE nonces `<run>:<n>` (discord-sim's load client, the
// SDK's dispatch client, the peers' bots through probe-client.cjs): per run, arrivals, distinct
// nonces, duplicates, first and last arrival. CommonJS, as the peers' bots are.

/** A run's counters; `seen` is a bitmap by nonce number that grows as needed. */
function nonceRun(extra = {}) {
  return {
    count: 0,
    distinct: 0,
    duplicates: 0,
    firstAt: 0,
    lastAt: 0,
    seen: new Uint8Array(1 << 16),
    ...extra,
  };
}

/** Counts nonce number `n` arriving at `now`; true when it is the first of its number. */
function countNonce(run, n, now) {
  if (run.count === 0) run.firstAt = now;
  run.count++;
  run.lastAt = now;
  if (n >= run.seen.length) {
    let size = run.seen.length;
    while (size <= n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(run.seen);
    run.seen = grown;
  }
  if (run.seen[n]) {
    run.duplicates++;
    return false;
  }
  run.seen[n] = 1;
  run.distinct++;
  return true;
}

/** A run's figures for a stats message (the bitmap left out). */
function nonceFigures(run) {
  const { count, distinct, duplicates, firstAt, lastAt } = run;
  return { count, distinct, duplicates, firstAt, lastAt };
}

/** Splits a nonce `<run>:<n>`; null for a message that is not the bench's. */
function parseNonce(nonce) {
  const colon = typeof nonce === 'string' ? nonce.indexOf(':') : -1;
  if (colon <= 0) return null;
  return { runId: nonce.slice(0, colon), n: Number(nonce.slice(colon + 1)) };
}

module.exports = { countNonce, nonceFigures, nonceRun, parseNonce };
