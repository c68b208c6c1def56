// Everything the runtime's modules export is its surface (a private package): one star re-export
// per module, so this list cannot drift from them.
export * from './abortSignals.js';
export * from './natsConnect.js';
export * from './natsKv.js';
export * from './request.js';
export * from './pm2Io.js';
