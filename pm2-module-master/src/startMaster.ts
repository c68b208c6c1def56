import {
  MasterConfigSchema,
  formatConfigIssues,
  isDisclusterError,
  loadModuleConfig,
} from 'discluster-protocol';
import { createLogger } from './logger.js';
import { Master } from './master.js';
import { readBotToken } from './tokenSource.js';

/** The package name: pm2 hands the module its settings in `process.env[MODULE_NAME]`. */
export const MODULE_NAME = 'discluster-master';

/** A running MASTER. */
export interface MasterHandle {
  /** `invalid-config`: idle, reporting its configuration error; `running`: connected, leading or standing by. */
  readonly state: 'invalid-config' | 'running';
  readonly master: Master | null;
  /** Steps down (releasing the leadership at once) and closes NATS; clusters keep running. */
  close(): Promise<void>;
}

function idle(): MasterHandle {
  // Stay up, idle: exiting would make pm2 restart us in a loop with the same bad value, and
  // `pm2 set` restarts the module anyway once the operator fixes it.
  const timer = setInterval(() => undefined, 1 << 30);
  return { state: 'invalid-config', master: null, close: async () => clearInterval(timer) };
}

/**
 * The whole of MASTER, shared by the pm2 module entry and the foreground bin. Settings from `env`
 * (`process.env['discluster-master']` under pm2, `DISCLUSTER_*` in the foreground).
 */
export async function startMaster(env: NodeJS.ProcessEnv = process.env): Promise<MasterHandle> {
  const loaded = loadModuleConfig(MasterConfigSchema, { moduleName: MODULE_NAME, env });
  if (!loaded.ok) {
    createLogger('info', {}).error(
      { issues: loaded.issues, keys: loaded.issues.map((issue) => issue.key) },
      formatConfigIssues(MODULE_NAME, loaded.issues),
    );
    return idle();
  }
  const config = loaded.config;
  const logger = createLogger(config.log_level, { bot: config.bot });
  let token: string;
  try {
    token = readBotToken(config);
  } catch (error) {
    if (!isDisclusterError(error)) throw error;
    logger.error({ code: error.code }, `${MODULE_NAME}: invalid configuration — ${error.message}`);
    return idle();
  }
  const master = new Master(config, token, logger);
  await master.start();
  return { state: 'running', master, close: () => master.close() };
}
