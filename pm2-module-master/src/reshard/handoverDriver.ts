import type { NatsConnection } from '@nats-io/transport-node';
import {
  DisclusterError,
  ErrorCode,
  HandoverReplySchema,
  handoverSubjects,
  type HandoverReply,
  type HandoverStep,
} from 'discluster-protocol';
import { NatsRequestError, requestReply } from 'discluster-runtime';
import type { Logger } from '../logger.js';

export interface HandoverOptions {
  readonly nc: NatsConnection;
  readonly bot: string;
  readonly reshardId: string;
  readonly oldClusterIds: readonly number[];
  readonly newClusterIds: readonly number[];
  readonly logger: Logger;
  /**
   * Pause between `record` and `buffer`, and between `buffer` and `cutover`: an event one generation
   * receives up to this much later than the other is still delivered once. Default
   * {@link DEFAULT_SKEW_MS}.
   */
  readonly skewMs?: number;
  /** Per request. Default 5 s. */
  readonly requestTimeoutMs?: number;
  /** Attempts per cluster and step before giving up on it. Default 4. */
  readonly attempts?: number;
  readonly signal?: AbortSignal;
}

export interface HandoverSummary {
  /** Old clusters that cut over (their delivered keys are in the handover bucket). */
  readonly cutOver: readonly number[];
  /** Old clusters that never answered `cutover` (dead): their events may be delivered twice. */
  readonly unanswered: readonly number[];
  /** Keys the old generation recorded, and events the new generation delivered from its buffers. */
  readonly recorded: number;
  readonly flushed: number;
  readonly duplicates: number;
}

/**
 * How much later one generation may receive an event than the other. Discord sends both sessions an
 * event at about the same time, but a cluster process gets no CPU for a while on a busy machine: a
 * CI run on 2 cores with another process eating one saw a new generation more than 1 s behind the
 * old (40 events delivered twice with the 1 s this was). The price of a longer pause is only a
 * longer handover and more events held meanwhile.
 */
export const DEFAULT_SKEW_MS = 3_000;

/**
 * Runs a reshard's handover (protocol/src/handover.ts): record → skew → buffer → cutover →
 * go-live. Each step goes to every cluster of its generation at once and is retried per cluster;
 * the steps are idempotent, so a MASTER that took over midway runs them all again. Resolves once
 * every new cluster serves; rejects if one of them cannot go live (the caller rolls back).
 */
export async function runHandover(options: HandoverOptions): Promise<HandoverSummary> {
  const skewMs = options.skewMs ?? DEFAULT_SKEW_MS;
  const step = (clusterIds: readonly number[], name: HandoverStep, extra: object = {}) =>
    Promise.all(clusterIds.map((clusterId) => requestStep(options, clusterId, name, extra)));

  const recorded = await step(options.oldClusterIds, 'record');
  const recording = options.oldClusterIds.filter((_id, index) => recorded[index] !== null);
  await sleep(skewMs, options.signal);
  const buffered = await step(options.newClusterIds, 'buffer');
  const notBuffering = options.newClusterIds.filter((_id, index) => buffered[index] === null);
  if (notBuffering.length > 0)
    throw new DisclusterError(
      ErrorCode.HostCommandFailed,
      `new cluster(s) ${notBuffering.join(', ')} did not answer the handover`,
    );
  // Events reach both generations at about the same time: let the buffers cover the cutover.
  await sleep(skewMs, options.signal);
  const cut = await step(recording, 'cutover');
  const cutOver = recording.filter((_id, index) => cut[index] !== null);
  const unanswered = options.oldClusterIds.filter((id) => !cutOver.includes(id));
  if (unanswered.length > 0)
    options.logger.warn(
      { clusters: unanswered },
      'old clusters did not cut over (down?): events they delivered may reach bot code twice',
    );
  const live = await step(options.newClusterIds, 'go-live', { oldClusterIds: cutOver });
  const notLive = options.newClusterIds.filter((_id, index) => live[index] === null);
  // Going back is worse: the old generation already stopped delivering. A new cluster that did not
  // answer (it restarted meanwhile) serves once its assignment no longer says standby.
  if (notLive.length > 0)
    options.logger.warn(
      { clusters: notLive },
      'new clusters did not confirm go-live; the new plan makes them serve',
    );
  const sum = (replies: readonly (OkReply | null)[], field: 'events' | 'duplicates') =>
    replies.reduce((total, reply) => total + (reply?.[field] ?? 0), 0);
  return {
    cutOver,
    unanswered,
    recorded: sum(cut, 'events'),
    flushed: sum(live, 'events'),
    duplicates: sum(live, 'duplicates'),
  };
}

/** Undoes `record`/`buffer` after a failed handover (best effort; a dead cluster is skipped). */
export async function abortHandover(options: HandoverOptions): Promise<void> {
  await Promise.all(
    [...options.oldClusterIds, ...options.newClusterIds].map((clusterId) =>
      requestStep({ ...options, attempts: 2 }, clusterId, 'abort', {}),
    ),
  );
}

type OkReply = Extract<HandoverReply, { ok: true }>;

async function requestStep(
  options: HandoverOptions,
  clusterId: number,
  step: HandoverStep,
  extra: object,
): Promise<OkReply | null> {
  const attempts = options.attempts ?? 4;
  const body = { v: 1, reshardId: options.reshardId, step, ...extra };
  const subject = handoverSubjects(options.bot).cluster(clusterId);
  let problem = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (options.signal?.aborted) return null;
    try {
      const reply = await requestReply(
        options.nc,
        subject,
        body,
        HandoverReplySchema,
        options.requestTimeoutMs ?? 5_000,
      );
      if (reply.ok) return reply;
      problem = `${reply.error.code}: ${reply.error.message}`;
    } catch (error) {
      problem =
        error instanceof NatsRequestError && error.kind === 'malformed'
          ? 'invalid reply'
          : error instanceof Error
            ? error.message
            : String(error);
    }
    await sleep(Math.min(2000, 200 * attempt), options.signal);
  }
  options.logger.warn({ clusterId, step, problem }, 'a cluster did not complete a handover step');
  return null;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
