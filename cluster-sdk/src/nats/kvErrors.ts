// KV error helpers live in discluster-protocol (shared with CONTROL and MASTER).
export { describeError, isCasConflict } from 'discluster-protocol';
