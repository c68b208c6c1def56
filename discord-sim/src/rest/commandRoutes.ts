import { isSnowflake, SnowflakeGenerator } from '../snowflake';
import type { BucketSpec } from './buckets';
import { invalidFormBody, missingAccess, notSnowflake } from './errors';
import { asObject } from './messageBody';
import { firstParam, type RouteDef } from './router';
import type { World } from './world';

export const COMMANDS_BUCKET: BucketSpec = { id: 'commands-overwrite', limit: 5, periodMs: 20_000 };

const MAX_COMMANDS = 200;
const NAME = /^[-_'\p{L}\p{N}]{1,32}$/u;
const CHAT_INPUT = 1;

/** `PUT /applications/{app}/commands`: bulk-overwrites the global commands; ids stay stable per name and type. */
export function commandRoutes(world: World): RouteDef[] {
  const ids = new Map<string, string>();
  const generator = new SnowflakeGenerator(7);
  let version = 0;
  let current: Record<string, unknown>[] = [];
  return [
    {
      method: 'PUT',
      path: /^\/applications\/([^/]+)\/commands$/,
      bucket: COMMANDS_BUCKET,
      major: firstParam,
      auth: true,
      interaction: false,
      body: true,
      handle: ({ params, body }) => {
        const appId = params[0]!;
        if (!isSnowflake(appId)) throw notSnowflake('application_id', appId);
        // Another application's commands: the bot's token does not reach them.
        if (appId !== world.botUserId) throw missingAccess();
        if (!Array.isArray(body)) throw invalidFormBody([], 'BASE_TYPE_ARRAY', 'Must be an array.');
        if (body.length > MAX_COMMANDS)
          throw invalidFormBody([], 'BASE_TYPE_MAX_LENGTH', `Must be ${MAX_COMMANDS} or fewer in length.`);
        const commands = body.map((raw, i) => parseCommand(raw, i));
        version++;
        current = commands.map((command) => {
          const key = `${command['type']}:${command['name']}`;
          let id = ids.get(key);
          if (id === undefined) ids.set(key, (id = generator.next()));
          return {
            ...command,
            id,
            application_id: appId,
            version: String(version),
            default_member_permissions: command['default_member_permissions'] ?? null,
            nsfw: command['nsfw'] ?? false,
          };
        });
        return { status: 200, body: current };
      },
    },
  ];
}

function parseCommand(raw: unknown, index: number): Record<string, unknown> {
  const command = asObject(raw, [index]);
  const type = command['type'] ?? CHAT_INPUT;
  if (typeof type !== 'number' || ![1, 2, 3, 4].includes(type))
    throw invalidFormBody([index, 'type'], 'BASE_TYPE_CHOICES', 'Value must be one of 1, 2, 3, 4.');
  const name = command['name'];
  if (typeof name !== 'string' || !NAME.test(name) || (type === CHAT_INPUT && name !== name.toLowerCase()))
    throw invalidFormBody([index, 'name'], 'APPLICATION_COMMAND_INVALID_NAME', 'Command name is invalid');
  const description = command['description'] ?? '';
  if (
    typeof description !== 'string' ||
    description.length > 100 ||
    (type === CHAT_INPUT && description.length < 1)
  )
    throw invalidFormBody(
      [index, 'description'],
      'BASE_TYPE_BAD_LENGTH',
      'Must be between 1 and 100 in length.',
    );
  return { ...command, type, name, description };
}
