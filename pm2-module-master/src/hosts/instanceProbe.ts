import type { NatsConnection } from '@nats-io/transport-node';
import { HostHeartbeatSchema, fleetSubjects } from 'discluster-protocol';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Asks every CONTROL to report (the status poll `discluster status` uses) and returns the instance
 * ids that answered for `hostId` within `waitMs`, stopping early once `awaited` answered. A CONTROL
 * that restarted does not answer for its old instance: its previous process is gone.
 */
export async function liveInstances(
  nc: NatsConnection,
  bot: string,
  hostId: string,
  awaited: string,
  waitMs: number,
): Promise<Set<string>> {
  const live = new Set<string>();
  try {
    const replies = await nc.requestMany(fleetSubjects(bot).hostStatus, encoder.encode('{"v":1}'), {
      maxWait: waitMs,
    });
    for await (const msg of replies) {
      let parsed;
      try {
        parsed = HostHeartbeatSchema.safeParse(JSON.parse(decoder.decode(msg.data)));
      } catch {
        continue;
      }
      if (!parsed.success || parsed.data.hostId !== hostId) continue;
      live.add(parsed.data.instanceId);
      if (parsed.data.instanceId === awaited) break;
    }
  } catch {
    // Nobody answered: no instance is known to be live.
  }
  return live;
}
