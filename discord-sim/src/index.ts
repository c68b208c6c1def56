export { DiscordSim, type DiscordSimUrls } from './DiscordSim';
export { DEFAULT_SIM_OPTIONS, resolveSimOptions, SimOptionsError, type DiscordSimOptions } from './options';
export { GatewayCloseCode, FATAL_CLOSE_CODES, closeCodeEndsSession } from './closeCodes';
export { Intent, ALL_INTENTS, PRIVILEGED_INTENTS } from './intents';
export { GatewayOpcode } from './opcodes';
export { shardForGuild, makeSnowflake, isSnowflake, DISCORD_EPOCH } from './snowflake';
export { zstdAvailable } from './compression';
export type { IdentifyRecord } from './identifyLimiter';
export type { DuplicateLiveSessionRecord, ShardSelector } from './simulator';
