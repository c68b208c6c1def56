import { Cluster, type ClusterAssignment, type ClusterOptions, type ShardStatus } from 'discluster-sdk';
import { GatewayDispatchEvents, GatewayIntentBits } from 'discord-api-types/v10';

/** What `stats` answers over IPC. */
export interface BotStats {
  readonly clusterId: number;
  /** MESSAGE_CREATE events seen per guild id since this process started. */
  readonly messagesByGuild: Record<string, number>;
  readonly shards: ShardStatus[];
}

export interface BotConfig {
  readonly assignment: ClusterAssignment;
  readonly natsUrl: string;
  /** Identify window; leave unset against Discord (5000 ms), match discord-sim's `--identify-window-ms` otherwise. */
  readonly identifyWindowMs?: number;
  /** One JSON line per event worth logging; `console.log` of a JSON string by default. */
  readonly log?: (line: Record<string, unknown>) => void;
}

/**
 * A small bot on one standalone cluster: counts messages per guild, answers the IPC request
 * `stats`, logs `ready`, `fatal` and `error`. Resolves once every shard is serving.
 */
export async function startBot(config: BotConfig): Promise<Cluster> {
  const log = config.log ?? ((line) => console.log(JSON.stringify(line)));
  const options: ClusterOptions = {
    intents: GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages,
    standalone: { assignment: config.assignment, nats: { servers: config.natsUrl } },
    handleSignals: true,
    ...(config.identifyWindowMs === undefined ? {} : { identifyWindowMs: config.identifyWindowMs }),
  };
  const cluster = new Cluster(options);
  const messagesByGuild = new Map<string, number>();

  cluster.on('dispatch', (packet) => {
    if (packet.t !== GatewayDispatchEvents.MessageCreate) return;
    const guildId = packet.d.guild_id;
    if (guildId !== undefined) messagesByGuild.set(guildId, (messagesByGuild.get(guildId) ?? 0) + 1);
  });
  cluster.on('ready', () => log({ event: 'ready', clusterId: cluster.id, shardIds: cluster.shardIds }));
  cluster.on('waiting', (shardId, reason) => log({ event: 'waiting', shardId, reason }));
  cluster.on('fatal', (close) => log({ event: 'fatal', ...close }));
  cluster.on('fenced', () => log({ event: 'fenced' }));
  cluster.on('unfenced', () => log({ event: 'unfenced' }));
  // Failures the cluster survived (without a listener they would go to stderr).
  cluster.on('error', (error) => log({ event: 'error', message: error.message }));

  // Registered before start(), so no request reaches this cluster before its handler.
  cluster.ipc.handle('stats', (): BotStats => ({
    clusterId: cluster.id,
    messagesByGuild: Object.fromEntries(messagesByGuild),
    shards: cluster.status(),
  }));

  await cluster.start();
  log({ event: 'started', clusterId: cluster.id });
  return cluster;
}
