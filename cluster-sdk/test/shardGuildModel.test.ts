/**
 * ShardGuildModel holds each written guild as its JSON text (issue 16: snapshots cost memory beside
 * the library's own cache): the payload it gives back is the same before and after, an event after
 * the write changes it, and an event during the write keeps the change for the next write.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { GuildStore } from '../../discord-sim/src/guilds';
import { ShardGuildModel } from '../src/cache/ShardGuildModel';

const BOT_USER = '1100000000000000001';

function loaded(guilds: number): { model: ShardGuildModel; payloads: Record<string, unknown>[] } {
  const sim = new GuildStore(guilds, 5);
  const payloads = Array.from({ length: guilds }, (_, i) =>
    sim.guildCreate(i, BOT_USER, new Date(0).toISOString()),
  );
  const model = new ShardGuildModel(false);
  model.apply('READY', {
    user: { id: BOT_USER, username: 'bot' },
    guilds: payloads.map((g) => ({ id: g['id'], unavailable: true })),
  });
  for (const payload of payloads) model.apply('GUILD_CREATE', payload);
  return { model, payloads };
}

/** Writes every dirty guild as the recorder does, and marks it written. */
function writeAll(model: ShardGuildModel): void {
  for (const id of [...model.dirty]) {
    model.dirty.delete(id);
    const guild = model.guildForWrite(id);
    if (guild) model.written(id, guild.token, guild.json);
  }
}

describe('ShardGuildModel as text after a write', () => {
  it('gives back the same payload before and after the write, and follows later events', () => {
    const { model, payloads } = loaded(20);
    const id = String(payloads[3]!['id']);
    const before = model.guildPayload(id);
    writeAll(model);
    expect(model.dirty.size).toBe(0);
    expect(model.guildPayload(id)).toEqual(before);
    // An event after the write: expanded, changed, dirty again.
    model.apply('CHANNEL_CREATE', { id: '1500000000000000001', guild_id: id, type: 0, name: 'new' });
    expect(model.dirty.has(id)).toBe(true);
    const channels = model.guildPayload(id)!['channels'] as Array<{ id: string }>;
    expect(channels.map((c) => c.id)).toContain('1500000000000000001');
    model.apply('GUILD_ROLE_DELETE', { guild_id: id, role_id: id });
    expect((model.guildPayload(id)!['roles'] as Array<{ id: string }>).map((r) => r.id)).not.toContain(id);
  });

  it('a guild changed while its write was in flight is not replaced by the older text', () => {
    const { model, payloads } = loaded(5);
    const id = String(payloads[0]!['id']);
    model.dirty.delete(id);
    const guild = model.guildForWrite(id)!;
    // The event lands between the payload and the write's answer.
    model.apply('CHANNEL_DELETE', {
      id: (payloads[0]!['channels'] as Array<{ id: string }>)[0]!.id,
      guild_id: id,
    });
    model.written(id, guild.token, guild.json);
    expect(model.dirty.has(id)).toBe(true);
    expect(JSON.stringify(model.guildPayload(id))).not.toBe(guild.json);
  });

  it('holds 2,000 written guilds in far less heap than as objects', () => {
    // A collection before each reading, so the figures are what is live.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    gc();
    const start = process.memoryUsage().heapUsed;
    const { model } = loaded(2000);
    gc();
    const asObjects = process.memoryUsage().heapUsed - start;
    writeAll(model);
    gc();
    const asText = process.memoryUsage().heapUsed - start;
    expect(asText).toBeLessThan(asObjects * 0.6);
  });
});
