/**
 * Modules a cluster loads on first use only: @discordjs/rest with its undici is code a cluster
 * whose bot never calls `cluster.rest` (an event-only worker) or never binds a source address does
 * not need. (Loading them raises RSS by about 10 MiB at once; the memory bench, after 32,000 guilds,
 * showed no difference beyond its noise of a few MiB: most of that is not kept.)
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
