/** A REST answer that is not a success: Discord's status and JSON error body. */
export class RestError extends Error {
  public constructor(
    public readonly status: number,
    public readonly body: { readonly message: string; readonly [field: string]: unknown },
    public readonly headers: Record<string, string> = {},
  ) {
    super(body.message);
  }
}

/** Discord's JSON error codes the simulator answers with (developers/topics/opcodes-and-status-codes). */
export const ErrorCode = {
  General: 0,
  UnknownApplication: 10002,
  UnknownChannel: 10003,
  UnknownGuild: 10004,
  UnknownMember: 10007,
  UnknownMessage: 10008,
  UnknownUser: 10013,
  UnknownWebhook: 10015,
  UnknownInteraction: 10062,
  RequestEntityTooLarge: 40005,
  InteractionAlreadyAcknowledged: 40060,
  MissingAccess: 50001,
  CannotEditOthersMessage: 50005,
  CannotSendEmptyMessage: 50006,
  MissingPermissions: 50013,
  InvalidWebhookToken: 50027,
  InvalidFormBody: 50035,
  InvalidJson: 50109,
} as const;

/** A factory of one fixed error: a fresh RestError per answer, as the routes throw it. */
const fixedError = (status: number, message: string, code: number) => (): RestError =>
  new RestError(status, { message, code });

export const unauthorized = fixedError(401, '401: Unauthorized', ErrorCode.General);
export const routeNotFound = fixedError(404, '404: Not Found', ErrorCode.General);
export const methodNotAllowed = (allowed: readonly string[]): RestError =>
  new RestError(
    405,
    { message: '405: Method Not Allowed', code: ErrorCode.General },
    { allow: allowed.join(', ') },
  );

const UNKNOWN = {
  application: ['Unknown Application', ErrorCode.UnknownApplication],
  channel: ['Unknown Channel', ErrorCode.UnknownChannel],
  guild: ['Unknown Guild', ErrorCode.UnknownGuild],
  member: ['Unknown Member', ErrorCode.UnknownMember],
  message: ['Unknown Message', ErrorCode.UnknownMessage],
  user: ['Unknown User', ErrorCode.UnknownUser],
  webhook: ['Unknown Webhook', ErrorCode.UnknownWebhook],
  interaction: ['Unknown interaction', ErrorCode.UnknownInteraction],
} as const;

export const unknown = (what: keyof typeof UNKNOWN): RestError =>
  new RestError(404, { message: UNKNOWN[what][0], code: UNKNOWN[what][1] });

export const missingAccess = fixedError(403, 'Missing Access', ErrorCode.MissingAccess);
export const missingPermissions = fixedError(403, 'Missing Permissions', ErrorCode.MissingPermissions);
export const cannotEditOthersMessage = fixedError(
  403,
  'Cannot edit a message authored by another user',
  ErrorCode.CannotEditOthersMessage,
);
export const invalidWebhookToken = fixedError(401, 'Invalid Webhook Token', ErrorCode.InvalidWebhookToken);
export const emptyMessage = fixedError(400, 'Cannot send an empty message', ErrorCode.CannotSendEmptyMessage);
export const alreadyAcknowledged = fixedError(
  400,
  'Interaction has already been acknowledged.',
  ErrorCode.InteractionAlreadyAcknowledged,
);
export const invalidJson = fixedError(400, 'The request body contains invalid JSON.', ErrorCode.InvalidJson);
export const entityTooLarge = fixedError(413, 'Request entity too large', ErrorCode.RequestEntityTooLarge);

/**
 * 50035 with Discord's nested `errors`: `{ field: { _errors: [{ code, message }] } }`; `path` is the
 * field's path (empty for the body itself).
 */
export function invalidFormBody(
  path: readonly (string | number)[],
  code: string,
  message: string,
): RestError {
  let errors: Record<string, unknown> = { _errors: [{ code, message }] };
  for (const key of [...path].reverse()) errors = { [String(key)]: errors };
  return new RestError(400, { message: 'Invalid Form Body', code: ErrorCode.InvalidFormBody, errors });
}

export const notSnowflake = (field: string, value: string): RestError =>
  invalidFormBody([field], 'NUMBER_TYPE_COERCE', `Value "${value.slice(0, 64)}" is not snowflake.`);

export const badRequest = (): RestError =>
  new RestError(400, { message: '400: Bad Request', code: ErrorCode.General });
export const unknownEmoji = (): RestError => new RestError(400, { message: 'Unknown Emoji', code: 10014 });
