export { startNatsServer, findNatsServerBinary, NATS_INSTALL_HINT } from './natsServer.js';
export type { NatsServerHandle, NatsServerOptions } from './natsServer.js';
export { startNatsCluster } from './natsCluster.js';
export type { NatsClusterHandle, NatsClusterNode, NatsClusterOptions } from './natsCluster.js';
export { spawnNode, spawnProcess, stopAll, getFreePort } from './processes.js';
export type { ExitStatus, SpawnOptions, SpawnNodeOptions, SpawnedProcess } from './processes.js';
export { waitFor } from './waitFor.js';
export type { WaitForOptions } from './waitFor.js';
export { startTcpProxy } from './tcpProxy.js';
export type { TcpProxyHandle } from './tcpProxy.js';
export { startDiscordSimProcess } from './discordSimProcess.js';
export type { DiscordSimProcess, SimJson } from './discordSimProcess.js';
export {
  killMachine,
  killPm2,
  makePm2Home,
  pm2Cli,
  pm2Env,
  pm2List,
  pm2Trigger,
  processesMentioning,
  teardownPm2,
} from './pm2Home.js';
export type { Pm2Process } from './pm2Home.js';
// mulberry32, for property-style tests: every run checks the same cases and a failing seed can be
// replayed. Numbers in [0, 1). The simulator's own, which seeds its guild ids with it.
export { seededRandom } from 'discord-sim';
export { NetLab, NET_LAB_PREFIX, createNetLab, listNamespaces, removeStaleLabs } from './netLab.js';
export type { ExecResult, LabHost, LabHostOptions, NetLabOptions, Portal } from './netLab.js';
