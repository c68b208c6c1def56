import { asError } from '../util/redact.js';

/** What {@link ShardFence} needs from its cluster. */
export interface ShardFenceHost {
  readonly fenceAfterMs: number;
  /** Pause before asking `confirm` again after it threw. */
  readonly retryMs: number;
  isStopping(): boolean;
  /** True while NATS is (still, or again) unreachable. */
  natsLost(): boolean;
  /** True once a shard closed with a fatal code: nothing reconnects after that. */
  hasFatalShard(): boolean;
  /** Marks every (non-fatal) shard `fenced`. */
  markFenced(): void;
  /** Closes every shard so its session stays resumable. */
  closeShards(reason: string): Promise<void>;
  reconnectShards(): Promise<void>;
  /**
   * May the shards reconnect? CONTROL in a fleet (it never rejects: it asks until answered), else
   * `confirmAssignment`, asked again after `retryMs` when it throws, else yes.
   */
  confirm(): Promise<boolean>;
  onFenced(): void;
  onUnfenced(): void;
  onRevoked(): void;
  debug(message: string): void;
  error(error: Error): void;
}

/**
 * Self-fencing (Promise 2): a process that cannot reach NATS for `fenceAfterMs` closes its shards
 * before their lease can expire elsewhere, and when NATS returns it reconnects them only once the
 * assignment is confirmed, because another owner may have taken them over meanwhile. A refusal is
 * final ("revoked"): the process waits to be stopped.
 */
export class ShardFence {
  private fencedValue = false;
  private revokedValue = false;
  private closing: Promise<void> = Promise.resolve();
  /** Bumped by every loss and every restore: a late answer for an earlier restore is dropped. */
  private attempt = 0;

  public constructor(private readonly host: ShardFenceHost) {}

  public get fenced(): boolean {
    return this.fencedValue;
  }

  public get revoked(): boolean {
    return this.revokedValue;
  }

  /** Resolves once shards closed by a fence are closed (stop waits for it). */
  public settled(): Promise<void> {
    return this.closing;
  }

  /** NATS unreachable for the fence time. */
  public async lost(): Promise<void> {
    this.attempt++;
    const host = this.host;
    if (this.fencedValue || host.isStopping()) return;
    this.fencedValue = true;
    host.debug(`NATS unreachable for ${host.fenceAfterMs} ms: fencing shards`);
    host.markFenced();
    this.closing = host.closeShards('fenced: NATS unreachable');
    await this.closing;
    host.onFenced();
  }

  /** NATS answers again. */
  public async restored(): Promise<void> {
    const host = this.host;
    if (!this.fencedValue || this.revokedValue || host.isStopping()) return;
    const attempt = ++this.attempt;
    await this.closing;
    const confirmed = await this.confirm(attempt);
    // Lost again, or stopping, while asking: the next restore asks again.
    if (confirmed === null || attempt !== this.attempt || host.isStopping() || host.natsLost()) return;
    if (!confirmed) {
      this.revokedValue = true;
      host.debug('assignment not confirmed after the fence: shards stay closed');
      host.onRevoked();
      return;
    }
    if (host.hasFatalShard()) {
      host.debug('not reconnecting after the fence: a shard closed with a fatal code');
      return;
    }
    this.fencedValue = false;
    host.debug('NATS reachable again and assignment confirmed: reconnecting shards');
    host.onUnfenced();
    await host.reconnectShards().catch((error: unknown) => host.error(asError(error)));
  }

  /** The answer, or null if this attempt was superseded while asking. */
  private async confirm(attempt: number): Promise<boolean | null> {
    const host = this.host;
    for (;;) {
      try {
        return await host.confirm();
      } catch (error) {
        host.error(new Error(`confirmAssignment failed (asking again): ${asError(error).message}`));
      }
      await new Promise((resolve) => setTimeout(resolve, host.retryMs).unref());
      if (attempt !== this.attempt || host.isStopping()) return null;
    }
  }
}
