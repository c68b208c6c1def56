import { Cluster } from 'discluster-sdk';
import { GatewayIntentBits } from 'discord-api-types/v10';

// Fleet mode: no assignment, token or NATS settings in code; CONTROL (discluster-control) starts this
// process under pm2 and sends them over pm2's IPC channel. Started any other way, start() rejects.
const cluster = new Cluster({ intents: GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages });
cluster.on('dispatch', (packet, shardId) => console.log(`shard ${shardId}: ${packet.t}`));
cluster.on('error', (error) => console.error(error));
void cluster.start();
