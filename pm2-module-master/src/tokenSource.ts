import fs from 'node:fs';
import { DisclusterError, ErrorCode, type MasterConfig } from 'discluster-protocol';

/**
 * The bot token from `token` or `token_file` (configuration keys, docs/configuration.md). Errors name the key and
 * never the value.
 */
export function readBotToken(config: Pick<MasterConfig, 'token' | 'token_file'>): string {
  if (config.token !== undefined) return config.token.trim();
  if (config.token_file === undefined)
    throw new DisclusterError(
      ErrorCode.InvalidOption,
      'token: set `token` or `token_file` (the bot token MASTER hands, sealed, to each CONTROL)',
    );
  let text: string;
  try {
    text = fs.readFileSync(config.token_file, 'utf8');
  } catch (error) {
    throw new DisclusterError(
      ErrorCode.InvalidOption,
      `token_file: cannot read ${config.token_file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  const token = text.trim();
  if (!token) throw new DisclusterError(ErrorCode.InvalidOption, `token_file: ${config.token_file} is empty`);
  return token;
}
