/**
 * Modules a cluster loads on first use only. @discordjs/rest with its undici weighs about 10 MiB of
 * resident memory per process, and a cluster whose bot code never calls `cluster.rest` (an
 * event-only worker) or never binds a source address should not pay for it.
 */

// Plain requires on purpose: a top-level import would load them in every cluster process.
/* eslint-disable @typescript-eslint/no-require-imports */

/** `@discordjs/rest`, loaded when `cluster.rest` is first used. */
export function discordRest(): typeof import('@discordjs/rest') {
  return require('@discordjs/rest') as typeof import('@discordjs/rest');
}

/** `undici` (the npm package, for its Agent's `localAddress`), loaded when a source address is bound. */
export function undici(): typeof import('undici') {
  return require('undici') as typeof import('undici');
}
