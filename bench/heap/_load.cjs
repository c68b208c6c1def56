const m = () => { global.gc(); global.gc(); const u = process.memoryUsage(); return [u.heapUsed/1048576, u.rss/1048576]; };
const steps = (process.env.STEPS||'discord.js,zod,@nats-io/transport-node,@nats-io/jetstream,@nats-io/kv,@discordjs/ws,discluster-protocol,discluster-sdk,discluster-sdk/discord.js').split(',');
let [h0, r0] = m(); console.log('base', h0.toFixed(2), r0.toFixed(1));
for (const s of steps) { require(s); const [h, r] = m(); console.log(s.padEnd(28), '+heap', (h-h0).toFixed(2), '+rss', (r-r0).toFixed(1)); h0=h; r0=r; }
