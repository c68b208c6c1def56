// The contract is everything its modules export: one star re-export per module, so this list
// cannot drift from them (each module's own exports are its reviewed surface).
export * from './errors.js';
export * from './kv.js';
export * from './schemas.js';
export * from './guildSnapshot.js';
export * from './restRecords.js';
export * from './subjects.js';
export * from './ipc.js';
export * from './clusterControl.js';
export * from './config.js';
export * from './sourceAddresses.js';
export * from './shardStates.js';
export * from './fleet.js';
export * from './sealedToken.js';
export * from './clusterPlan.js';
export * from './shardRanges.js';
export * from './operator.js';
export * from './natsSecurity.js';
export * from './handover.js';
export * from './reply.js';
