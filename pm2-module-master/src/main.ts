#!/usr/bin/env node
/**
 * discluster-master's one entry point, for all of package.json: the pm2 module's script (`apps`),
 * the foreground bin `discluster-master` (`bin`) and the package's exports (`main`, `types`). Run as
 * a program (pm2 loads it as the main module; so does `node dist/main.js` or the bin) it starts
 * MASTER; imported, it only exports. The operator CLI `discluster` is its own bin (src/cli/).
 *
 * Settings come from `process.env['discluster-master']` under pm2 (what `pm2 set
 * discluster-master:<key>` writes) and from `DISCLUSTER_*` variables in the foreground. A crash
 * exits; SIGINT/SIGTERM stop cleanly, releasing the leadership so a standby MASTER takes over at once.
 */
import { runModuleProcess } from 'discluster-runtime/module';
import { startMaster } from './startMaster.js';

export { MODULE_NAME, startMaster } from './startMaster.js';
export type { MasterHandle } from './startMaster.js';
export { Master } from './master.js';
export type { MasterOptions } from './master.js';
export type { Clock } from './clock.js';
export { buildFleetStatus } from './statusView.js';
export { fetchGatewayBot, resolveShardCount } from './gatewayBot.js';
export * from './plan/index.js';

/** Starts MASTER as a long-lived process (module or foreground) with discluster-runtime's runner. */
export function runMasterProcess(env: NodeJS.ProcessEnv): void {
  runModuleProcess('discluster-master', () => startMaster(env));
}

// pm2's fork container loads the script as the main module, as `node` does.
if (require.main === module) runMasterProcess(process.env);
