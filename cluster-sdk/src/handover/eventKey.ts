import { createHash } from 'node:crypto';

/**
 * What identifies one gateway event across the two generations of a reshard: Discord sends both
 * sessions the same payload, so its name and a hash of its data tell "the same event" apart from
 * another one. Computed only while a reshard's handover runs, never on the normal dispatch path.
 */
export function handoverEventKey(eventName: string, data: unknown): string {
  return createHash('sha1')
    .update(eventName)
    .update('\0')
    .update(JSON.stringify(data))
    .digest('base64url')
    .slice(0, 22);
}
