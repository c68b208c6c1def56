/**
 * Gateway close codes as Discord documents them, plus which of them keep a session resumable.
 * The simulator closes with exactly these so clients see the outcomes they would see in production.
 */
export const GatewayCloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  UnknownError: 4000,
  UnknownOpcode: 4001,
  DecodeError: 4002,
  NotAuthenticated: 4003,
  AuthenticationFailed: 4004,
  AlreadyAuthenticated: 4005,
  InvalidSeq: 4007,
  RateLimited: 4008,
  SessionTimedOut: 4009,
  InvalidShard: 4010,
  ShardingRequired: 4011,
  InvalidAPIVersion: 4012,
  InvalidIntents: 4013,
  DisallowedIntents: 4014,
} as const;

export type GatewayCloseCode = (typeof GatewayCloseCode)[keyof typeof GatewayCloseCode];

/** Codes after which Discord tells clients not to reconnect. */
export const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([4004, 4010, 4011, 4012, 4013, 4014]);

/**
 * Closing a socket with one of these ends its session: normal closures, an invalid sequence,
 * a timed-out session, and every fatal code. Any other code leaves the session resumable.
 */
export function closeCodeEndsSession(code: number): boolean {
  return (
    code === GatewayCloseCode.Normal ||
    code === GatewayCloseCode.GoingAway ||
    code === GatewayCloseCode.InvalidSeq ||
    code === GatewayCloseCode.SessionTimedOut ||
    FATAL_CLOSE_CODES.has(code)
  );
}

/** Close codes an application may send (RFC 6455 §7.4 reserves 1004–1006 and 1015). */
export function isSendableCloseCode(code: number): boolean {
  return (
    Number.isInteger(code) &&
    (code === 1000 ||
      (code >= 1001 && code <= 1003) ||
      (code >= 1007 && code <= 1014) ||
      (code >= 3000 && code <= 4999))
  );
}
