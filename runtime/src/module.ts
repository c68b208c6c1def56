/**
 * `discluster-runtime/module`: what only the pm2 modules (MASTER, CONTROL) use, kept apart so a bot
 * process that loads the SDK never loads pino.
 */
export { createModuleLogger } from './logger.js';
export type { Logger } from './logger.js';
export { runModuleProcess } from './runProcess.js';
export type { Closable } from './runProcess.js';
