'use strict';
/**
 * A whole Discluster fleet on one machine: `pm2 start ecosystem.config.js` (after `npm ci` and
 * `npx tsc -b`). Documented in docs/operations.md ("One machine").
 *
 *   DISCORD_TOKEN=… BOT_SCRIPT=/srv/bot/dist/index.js pm2 start ecosystem.config.js   real Discord
 *   pm2 start ecosystem.config.js                    discord-sim (another app) and the demo bot
 *
 * Apps: nats-server (JetStream), discluster-master and discluster-control (the modules' foreground
 * bins, configured by DISCLUSTER_<KEY> variables: docs/configuration.md), and without a token
 * discord-sim. CONTROL starts the bot's clusters as pm2 apps of namespace `discluster-<bot>`.
 *
 * Read when pm2 loads this file (the environment of the `pm2 start` command):
 * | variable              | default                          | meaning                                        |
 * | --------------------- | -------------------------------- | ---------------------------------------------- |
 * | `DISCORD_TOKEN`       | —                                | the bot token; written to `<data>/token` (0600) |
 * | `DISCORD_TOKEN_FILE`  | `<data>/token` if it exists      | a file holding the token (nothing is written)  |
 * | `BOT_SCRIPT`          | examples/dist/demo-bot/bot.js    | the bot's entry file; required with a token    |
 * | `DISCLUSTER_DATA_DIR` | `~/.discluster`                  | NATS JetStream store and the token file        |
 * | `NATS_PORT`           | `4222`                           | nats-server port (loopback only)               |
 * | `NATS_SERVER_BIN`     | PATH, /usr/sbin, /usr/bin        | the nats-server binary                         |
 * | `STATUS_PORT`         | `9464`                           | MASTER's status page and /metrics (loopback)   |
 * | `DISCORD_SIM_PORT`    | `4280`                           | discord-sim's port, without a token            |
 * | `DISCORD_API`         | Discord's                        | REST base with a token (another gateway)       |
 *
 * Once a token was given, its file stays in the data directory and later `pm2 start|restart
 * ecosystem.config.js` without DISCORD_TOKEN keep running against Discord; delete the file to go
 * back to the simulator.
 *
 * The token never enters a pm2 process environment (`pm2 env`, `pm2 jlist`, dump files): MASTER gets
 * the file's path, and `filter_env` keeps DISCORD_TOKEN (and any DISCLUSTER_* variable of your
 * shell, which MASTER or CONTROL would otherwise read as a setting) out of every app.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const env = process.env;
const dataDir = path.resolve(env.DISCLUSTER_DATA_DIR || path.join(os.homedir(), '.discluster'));
const natsPort = env.NATS_PORT || '4222';
const statusPort = env.STATUS_PORT || '9464';
const simPort = env.DISCORD_SIM_PORT || '4280';
const natsUrl = `nats://127.0.0.1:${natsPort}`;
const savedToken = path.join(dataDir, 'token');

/** The bot token's file: DISCORD_TOKEN_FILE, DISCORD_TOKEN saved to <data>/token, or a saved one. */
function tokenFile() {
  if (env.DISCORD_TOKEN_FILE) return path.resolve(env.DISCORD_TOKEN_FILE);
  if (env.DISCORD_TOKEN) {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(savedToken, `${env.DISCORD_TOKEN.trim()}\n`, { mode: 0o600 });
    fs.chmodSync(savedToken, 0o600);
    return savedToken;
  }
  return fs.existsSync(savedToken) ? savedToken : undefined;
}

/** Same search order as `npm test` and the demo: NATS_SERVER_BIN, PATH, Debian's /usr/sbin. */
function natsServer() {
  if (env.NATS_SERVER_BIN) return env.NATS_SERVER_BIN;
  const dirs = [...(env.PATH || '').split(path.delimiter).filter(Boolean), '/usr/sbin', '/usr/bin'];
  for (const dir of dirs) {
    const file = path.join(dir, 'nats-server');
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // Not there.
    }
  }
  return '/usr/sbin/nats-server';
}

const token = tokenFile();
const sim = token === undefined;
const botScript = env.BOT_SCRIPT
  ? path.resolve(env.BOT_SCRIPT)
  : sim
    ? path.join(__dirname, 'examples', 'dist', 'demo-bot', 'bot.js')
    : undefined;
if (!botScript)
  throw new Error(
    'ecosystem.config.js: set BOT_SCRIPT to your bot’s entry file (the demo bot is tuned for discord-sim’s 1 s identify window).',
  );

// Inherited variables no app may see: the token, and DISCLUSTER_* settings of the shell (only
// the ones written below apply). pm2 drops every inherited variable whose name contains one of these.
const filter_env = ['DISCORD_TOKEN', 'DISCLUSTER_'];
const node = { interpreter: process.execPath, cwd: __dirname, filter_env, merge_logs: true, vizion: false };

module.exports = {
  apps: [
    {
      name: 'nats-server',
      script: natsServer(),
      interpreter: 'none',
      args: [
        '-a',
        '127.0.0.1',
        '-p',
        natsPort,
        '-js',
        '-sd',
        path.join(dataDir, 'nats'),
        '-n',
        os.hostname(),
      ],
      cwd: __dirname,
      filter_env,
      // JetStream shuts down gracefully on SIGINT, but not instantly (pm2's default is 1.6 s).
      kill_timeout: 10_000,
      exp_backoff_restart_delay: 500,
      max_restarts: 10,
      min_uptime: '5s',
      pmx: false,
      vizion: false,
      merge_logs: true,
    },
    ...(sim
      ? [
          {
            ...node,
            name: 'discord-sim',
            script: path.join(__dirname, 'discord-sim', 'dist', 'cli.js'),
            // Its default token (not a secret), 5,000 guilds on 8 shards, the demo bot's identify window.
            args: [
              '--port',
              simPort,
              '--guilds',
              '5000',
              '--shards',
              '8',
              '--max-concurrency',
              '4',
              '--identify-window-ms',
              '1000',
            ],
            pmx: false,
          },
        ]
      : []),
    {
      ...node,
      name: 'discluster-master',
      script: path.join(__dirname, 'pm2-module-master', 'dist', 'main.js'),
      pmx: false,
      kill_timeout: 10_000,
      exp_backoff_restart_delay: 1000,
      max_memory_restart: '512M',
      env: {
        DISCLUSTER_NATS_URL: natsUrl,
        // discord-sim's default token is public; a real one only ever travels as a file path.
        ...(sim ? { DISCLUSTER_TOKEN: 'discord-sim-token' } : { DISCLUSTER_TOKEN_FILE: token }),
        ...(sim
          ? { DISCLUSTER_DISCORD_API: `http://127.0.0.1:${simPort}/api/v10` }
          : env.DISCORD_API
            ? { DISCLUSTER_DISCORD_API: env.DISCORD_API }
            : {}),
        // One machine: plan as soon as its CONTROL announced itself.
        DISCLUSTER_EXPECTED_HOSTS: '1',
        DISCLUSTER_HTTP_PORT: statusPort,
      },
    },
    {
      ...node,
      name: 'discluster-control',
      script: path.join(__dirname, 'pm2-module-control', 'dist', 'main.js'),
      pmx: false,
      kill_timeout: 10_000,
      exp_backoff_restart_delay: 1000,
      max_memory_restart: '300M',
      env: {
        DISCLUSTER_NATS_URL: natsUrl,
        DISCLUSTER_SCRIPT: botScript,
        DISCLUSTER_ROLE: 'active',
      },
    },
  ],
};
