export { MODULE_NAME, startMaster } from './startMaster.js';
export type { MasterHandle } from './startMaster.js';
export { Master } from './master.js';
export type { MasterOptions } from './master.js';
export type { Clock } from './clock.js';
export { buildFleetStatus } from './statusView.js';
export { fetchGatewayBot, resolveShardCount } from './gatewayBot.js';
export * from './plan/index.js';
