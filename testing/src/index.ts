export { startNatsServer, findNatsServerBinary, NATS_INSTALL_HINT } from './natsServer.js';
export type { NatsServerHandle, NatsServerOptions } from './natsServer.js';
export { spawnNode, spawnProcess, stopAll, getFreePort } from './processes.js';
export type { ExitStatus, SpawnOptions, SpawnNodeOptions, SpawnedProcess } from './processes.js';
export { waitFor } from './waitFor.js';
export type { WaitForOptions } from './waitFor.js';
