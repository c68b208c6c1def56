/** Gateway opcodes the simulator speaks (Discord's numbering). */
export const GatewayOpcode = {
  Dispatch: 0,
  Heartbeat: 1,
  Identify: 2,
  PresenceUpdate: 3,
  VoiceStateUpdate: 4,
  Resume: 6,
  Reconnect: 7,
  RequestGuildMembers: 8,
  InvalidSession: 9,
  Hello: 10,
  HeartbeatAck: 11,
  RequestSoundboardSounds: 31,
  RequestChannelInfo: 43,
} as const;

/** Opcodes a client may send; anything else is closed with 4001. */
export const CLIENT_OPCODES: ReadonlySet<number> = new Set([1, 2, 3, 4, 6, 8, 31, 43]);
