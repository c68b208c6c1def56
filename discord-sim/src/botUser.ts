/** The simulated bot's user object, as READY and `GET /users/@me` show it. */
export function botUserObject(botUserId: string): Record<string, unknown> {
  return {
    id: botUserId,
    username: 'discord-sim',
    discriminator: '0',
    global_name: null,
    avatar: null,
    bot: true,
    flags: 0,
  };
}
