import { asError } from '../util/redact.js';

/** What {@link ShardFence} needs from its cluster. */
export interface ShardFenceHost {
  /** The fence time in force (in a fleet, CONTROL's `fenceAfterMs` may lower it at any time). */
  fenceAfterMs(): number;
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
 *
 * In a fleet CONTROL can also order a fence (it could not renew the shards' leases although this
 * process still reaches NATS): the shards close the same way, and the confirmation is asked for as
 * soon as they are closed, since there is no NATS outage of this process to wait out. The same
 * happens when CONTROL falls silent (no `keepalive` for the fence time, see ControlKeepalive):
 * nobody renews the leases then either.
 */
export class ShardFence {
  private fencedValue = false;
  private revokedValue = false;
  private closing: Promise<void> = Promise.resolve();
  /**
   * Bumped by every loss, every restore and every ordered fence: a late answer to an earlier
   * question is dropped.
   */
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
    host.debug(`NATS unreachable for ${host.fenceAfterMs()} ms: fencing shards`);
    await this.close('fenced: NATS unreachable');
  }

  /**
   * CONTROL ordered a fence (it could not renew the shards' leases): closes the shards, then asks
   * at once whether they may reconnect. A no-op while fenced already, and ignored while stopping.
   */
  public async ordered(reason: string): Promise<void> {
    // CONTROL's reason stays in the debug stream: a close reason goes to Discord (and has 123 bytes).
    await this.closeAndConfirm(
      `fence ordered by CONTROL (${reason})`,
      'fenced: leases not renewed',
      'assignment confirmed after the ordered fence',
    );
  }

  /**
   * No `keepalive` from CONTROL for the fence time: CONTROL is down or hung, so nobody renews the
   * shards' leases and they may expire and move to another host. Fences exactly like
   * {@link ordered}: the confirmation comes from the CONTROL that comes back (it answers from its
   * leases). A no-op while fenced already, and ignored while stopping.
   */
  public async controlSilent(silentMs: number): Promise<void> {
    await this.closeAndConfirm(
      `no keepalive from CONTROL for ${silentMs} ms`,
      'fenced: CONTROL silent',
      'assignment confirmed after CONTROL fell silent',
    );
  }

  /** NATS answers again. */
  public async restored(): Promise<void> {
    const host = this.host;
    if (!this.fencedValue || this.revokedValue || host.isStopping()) return;
    const attempt = ++this.attempt;
    await this.closing;
    await this.confirmAndReconnect(attempt, 'NATS reachable again and assignment confirmed');
  }

  /** Closes the shards (unless stopping or fenced already), then asks at once whether they may reconnect. */
  private async closeAndConfirm(why: string, closeReason: string, confirmedWhy: string): Promise<void> {
    const host = this.host;
    if (host.isStopping()) {
      host.debug(`${why} while stopping: ignored`);
      return;
    }
    if (this.fencedValue) {
      host.debug(`${why} while fenced already: nothing to do`);
      return;
    }
    host.debug(`${why}: fencing shards`);
    await this.close(closeReason);
    // A loss of NATS, or a stop, while closing takes over from here (see restored()).
    if (host.isStopping() || host.natsLost()) return;
    await this.confirmAndReconnect(++this.attempt, confirmedWhy);
  }

  private async close(reason: string): Promise<void> {
    const host = this.host;
    this.fencedValue = true;
    host.markFenced();
    this.closing = host.closeShards(reason);
    await this.closing;
    host.onFenced();
  }

  /** Asks for the assignment and reconnects if it holds, unless `attempt` is superseded meanwhile. */
  private async confirmAndReconnect(attempt: number, why: string): Promise<void> {
    const host = this.host;
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
    host.debug(`${why}: reconnecting shards`);
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
