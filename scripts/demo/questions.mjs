// What the demo asks its bot once the fleet is up: a `!ping` message and a `/stats` slash command
// in a random guild, through discord-sim's admin API, and how many the bot answered as the
// simulator counted them (a reply in `GET /messages`, an interaction callback in
// `GET /interactions`). The bot's side is examples/demo-bot/bot.ts.

const DISCORD_EPOCH = 1_420_070_400_000n;
/** Questions younger than this are not counted yet: the bot has not had time to answer. */
export const ANSWER_GRACE_MS = 5_000;
/** The member who asks: a user, not a bot (the demo bot ignores bots). */
const ASKER = {
  id: '1250000000000000001',
  username: 'demo-user',
  discriminator: '0',
  global_name: 'Demo User',
  avatar: null,
};

let sequence = 0n;
/** A snowflake for now, unique within this process. */
function snowflake() {
  sequence = (sequence + 1n) & 0xfffn;
  return String(((BigInt(Date.now()) - DISCORD_EPOCH) << 22n) | (1n << 17n) | sequence);
}

function member() {
  return { roles: [], joined_at: new Date().toISOString(), deaf: false, mute: false, flags: 0 };
}

/** @param {typeof import('discord-sim').userMessage} userMessage */
function pingMessage(userMessage, channel, id) {
  return {
    t: 'MESSAGE_CREATE',
    d: userMessage({ id, channelId: channel.id, guildId: channel.guild_id, author: ASKER, content: '!ping' }),
  };
}

function statsCommand(channel) {
  return {
    t: 'INTERACTION_CREATE',
    d: {
      type: 2,
      version: 1,
      guild_id: channel.guild_id,
      channel_id: channel.id,
      channel: { id: channel.id, type: 0, guild_id: channel.guild_id },
      data: { id: snowflake(), name: 'stats', type: 1 },
      member: { ...member(), user: ASKER, permissions: '0' },
      locale: 'en-US',
      guild_locale: 'en-US',
      app_permissions: '0',
      entitlements: [],
      authorizing_integration_owners: { 0: channel.guild_id },
      context: 0,
    },
  };
}

/** Asks questions of the bot through the simulator at `admin`, and counts its answers there. */
export class DemoQuestions {
  /** @type {{ id: string, at: number }[]} */
  #pings = [];
  /** @type {{ id: string, at: number }[]} */
  #commands = [];
  /** @type {{ id: string, guild_id: string }[]} */
  #channels = [];

  /** @param {string} admin discord-sim's admin URL */
  constructor(admin) {
    this.admin = admin;
  }

  async #call(route, body) {
    const response = await fetch(
      `${this.admin}${route}`,
      body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) },
    );
    if (!response.ok)
      throw new Error(`discord-sim ${route} answered ${response.status}: ${await response.text()}`);
    return response.json();
  }

  /** One `!ping` and one `/stats`, each in a random guild's channel. */
  async ask() {
    if (this.#channels.length === 0) this.#channels = await this.#call('/channels?limit=500');
    const pick = () => this.#channels[Math.floor(Math.random() * this.#channels.length)];
    const id = snowflake();
    // Loaded here, not at the top: the demo imports this file before it has built discord-sim.
    const { userMessage } = await import('discord-sim');
    await this.#call('/dispatch', pingMessage(userMessage, pick(), id));
    this.#pings.push({ id, at: Date.now() });
    const { interaction } = await this.#call('/dispatch', statsCommand(pick()));
    this.#commands.push({ id: interaction.id, at: Date.now() });
  }

  /** Questions asked at least ANSWER_GRACE_MS ago, and how many of them the simulator saw answered. */
  async answers() {
    const due = Date.now() - ANSWER_GRACE_MS;
    const pings = this.#pings.filter((question) => question.at <= due);
    const commands = this.#commands.filter((question) => question.at <= due);
    const replied = new Set(
      (await this.#call('/messages')).map((message) => message.message_reference?.message_id).filter(Boolean),
    );
    const handled = new Map((await this.#call('/interactions')).map((one) => [one.id, one.callback_type]));
    return {
      ping: { asked: pings.length, answered: pings.filter((question) => replied.has(question.id)).length },
      stats: {
        asked: commands.length,
        answered: commands.filter((question) => (handled.get(question.id) ?? null) !== null).length,
      },
    };
  }
}
