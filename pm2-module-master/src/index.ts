export { MODULE_NAME, startMaster } from './startMaster.js';
export type { MasterHandle } from './startMaster.js';
export { Master } from './master.js';
export { buildFleetStatus } from './statusView.js';
export { fetchGatewayBot, resolveShardCount } from './gatewayBot.js';
export * from './plan/index.js';
