import type { KV } from '@nats-io/kv';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { DisclusterError, ErrorCode, toWireError } from 'discluster-protocol/errors';
import {
  HandoverChunkSchema,
  HandoverCountSchema,
  HandoverRequestSchema,
  type HandoverReply,
  type HandoverRequest,
} from 'discluster-protocol/handover';
import { handoverBucket, handoverKey } from 'discluster-protocol/kv';
import { decodeRecord, encodeRecord } from 'discluster-protocol/schemas';
import { handoverSubjects } from 'discluster-protocol/subjects';
import { openBucket, respond } from 'discluster-runtime';
import type { HandoverGate } from './HandoverGate.js';

/** Keys per KV value: 20k keys of 22 characters stay far below NATS's 1 MiB payload. */
const CHUNK_KEYS = 20_000;
/** Handover records outlive any reshard; the bucket TTL cleans them up. */
const HANDOVER_TTL_MS = 3_600_000;

const decoder = new TextDecoder();

/**
 * Answers MASTER's handover steps for one cluster process (protocol/src/handover.ts): drives the
 * {@link HandoverGate} and moves the old generation's delivered keys through the handover bucket.
 * Every request is validated; a bad one is answered with an error and changes nothing.
 */
export class HandoverResponder {
  private subscription: Subscription | null = null;
  private bucket: Promise<KV> | null = null;
  /** Steps run one at a time, in arrival order. */
  private queue: Promise<unknown> = Promise.resolve();

  public constructor(
    private readonly nc: NatsConnection,
    private readonly bot: string,
    private readonly clusterId: number,
    private readonly gate: HandoverGate,
    private readonly onDebug: (message: string) => void,
    /** JetStream replicas of the handover bucket (the fleet's `kv_replicas`). */
    private readonly replicas = 1,
  ) {}

  public start(): void {
    this.subscription = this.nc.subscribe(handoverSubjects(this.bot).cluster(this.clusterId), {
      callback: (_error, msg) => {
        this.queue = this.queue.then(() => this.answer(msg)).catch(() => undefined);
      },
    });
  }

  public close(): void {
    this.subscription?.unsubscribe();
    this.subscription = null;
  }

  private async answer(msg: Msg): Promise<void> {
    let request: HandoverRequest;
    try {
      const parsed = HandoverRequestSchema.safeParse(JSON.parse(decoder.decode(msg.data)));
      if (!parsed.success) throw new Error(parsed.error.issues[0]?.message ?? 'invalid');
      request = parsed.data;
    } catch (error) {
      this.onDebug(`handover: dropped a malformed request (${String(error)})`);
      this.reply(msg, {
        v: 1,
        ok: false,
        error: { code: ErrorCode.InvalidMessage, message: 'malformed handover request' },
      });
      return;
    }
    try {
      const result = await this.run(request);
      this.onDebug(
        `handover ${request.reshardId}: ${request.step} done (mode ${this.gate.mode}, events ${result.events}, duplicates ${result.duplicates})`,
      );
      this.reply(msg, { v: 1, ok: true, clusterId: this.clusterId, step: request.step, ...result });
    } catch (error) {
      const wire = toWireError(error);
      this.onDebug(`handover ${request.reshardId}: ${request.step} failed: ${wire.message}`);
      this.reply(msg, { v: 1, ok: false, error: wire });
    }
  }

  private async run(request: HandoverRequest): Promise<{ events: number; duplicates: number }> {
    switch (request.step) {
      case 'record':
        this.gate.record();
        return { events: 0, duplicates: 0 };
      case 'buffer':
        this.gate.buffer();
        return { events: this.gate.heldCount, duplicates: 0 };
      case 'cutover': {
        const keys = this.gate.cutOver();
        await this.writeKeys(request.reshardId, keys);
        return { events: keys.length, duplicates: 0 };
      }
      case 'go-live': {
        if (this.gate.mode === 'serving') return { events: 0, duplicates: 0 };
        const delivered: string[] = [];
        for (const oldClusterId of request.oldClusterIds ?? [])
          for (const key of await this.readKeys(request.reshardId, oldClusterId)) delivered.push(key);
        return this.gate.goLive(delivered);
      }
      case 'abort':
        this.gate.abort();
        return { events: 0, duplicates: 0 };
    }
  }

  private kv(): Promise<KV> {
    this.bucket ??= openBucket(this.nc, {
      name: handoverBucket(this.bot),
      ttlMs: HANDOVER_TTL_MS,
      description: 'Discluster reshard handovers: event keys the old generation delivered',
      timeoutMs: 10_000,
      replicas: this.replicas,
    }).then((opened) => opened.kv);
    this.bucket.catch(() => (this.bucket = null));
    return this.bucket;
  }

  private async writeKeys(reshardId: string, keys: readonly string[]): Promise<void> {
    const kv = await this.kv();
    let chunks = 0;
    for (let start = 0; start < keys.length; start += CHUNK_KEYS, chunks++) {
      const chunk = { v: 1, keys: keys.slice(start, start + CHUNK_KEYS) };
      await kv.put(handoverKey(reshardId, this.clusterId, chunks), encodeRecord(chunk));
    }
    await kv.put(
      handoverKey(reshardId, this.clusterId, 'count'),
      encodeRecord({ v: 1, chunks, keys: keys.length }),
    );
  }

  private async readKeys(reshardId: string, oldClusterId: number): Promise<string[]> {
    const kv = await this.kv();
    const countEntry = await kv.get(handoverKey(reshardId, oldClusterId, 'count'));
    if (!countEntry || countEntry.operation !== 'PUT') {
      throw new DisclusterError(
        ErrorCode.InvalidRecord,
        `no delivered keys of old cluster ${oldClusterId} for reshard ${reshardId}: it has not cut over`,
      );
    }
    const count = decodeRecord(HandoverCountSchema, countEntry.value);
    if (!count.ok) throw new DisclusterError(ErrorCode.InvalidRecord, `handover count: ${count.error}`);
    const keys: string[] = [];
    for (let chunk = 0; chunk < count.value.chunks; chunk++) {
      const entry = await kv.get(handoverKey(reshardId, oldClusterId, chunk));
      const decoded = entry ? decodeRecord(HandoverChunkSchema, entry.value) : null;
      if (!decoded?.ok)
        throw new DisclusterError(
          ErrorCode.InvalidRecord,
          `handover chunk ${chunk} of old cluster ${oldClusterId} is missing or invalid`,
        );
      keys.push(...decoded.value.keys);
    }
    return keys;
  }

  private reply(msg: Msg, reply: HandoverReply): void {
    respond(msg, reply);
  }
}
